import pytest
from pdf_factory import PARAGRAPH, scanned_pdf, text_pdf


@pytest.fixture(scope="session")
def paragraph_pdf() -> bytes:
    return text_pdf([PARAGRAPH])


@pytest.fixture(scope="session")
def paragraph_scan(paragraph_pdf: bytes) -> bytes:
    return scanned_pdf(paragraph_pdf)
