"""Scanned pages need OCR, and real tesseract reads a clean scan well enough to recover the core values."""

import os
import random
import shutil
from datetime import date

import pypdfium2 as pdfium
import pytest
from PIL import Image

from embedded.samples import SCAN_DPI, SampleDoc, degrade, long_date
from embedded.simmodel import answer
from f.core.models import Chunk
from f.extraction.prompt import build_messages
from f.extraction.schema import ChunkExtraction

pytesseract = pytest.importorskip("pytesseract")
pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")
os.environ["OMP_THREAD_LIMIT"] = "1"  # 6x faster on small machines


def norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def render(doc: SampleDoc, page: int) -> Image.Image:
    pdf = pdfium.PdfDocument(doc.pdf_path)
    try:
        return pdf[page - 1].render(scale=SCAN_DPI / 72, grayscale=True).to_pil()
    finally:
        pdf.close()


def mean_conf(img: Image.Image) -> float:
    data = pytesseract.image_to_data(img, output_type=pytesseract.Output.DICT)
    confs = [float(c) for c, w in zip(data["conf"], data["text"]) if w.strip() and float(c) >= 0]
    return sum(confs) / len(confs)


def test_clean_scan_ocr_recovers_the_core_values(matter: list[SampleDoc]) -> None:
    doc = next(d for d in matter if d.truth.scanned_pages == list(range(1, d.truth.pages + 1)))
    assert doc.truth.scan_level == "clean"
    t = doc.truth
    first = [name for name, page in t.field_pages.items() if page == 1 and name != "document_type"]
    assert {"matter_number", "client_name", "counterparty", "document_date"} <= set(first)
    ocr = pytesseract.image_to_string(render(doc, 1))
    for name in ("matter_number", "client_name", "counterparty"):
        assert norm(t.fields[name]) in norm(ocr), (name, ocr)
    assert norm(long_date(date.fromisoformat(t.fields["document_date"]))) in norm(ocr)
    # the simulated model reads the OCR text as it reads a text layer
    chunk = Chunk(chunk_id="ocr", pages=[1], text_by_page={1: ocr}, content_hash="h")
    out = answer(build_messages(chunk), ChunkExtraction.model_json_schema(), random.Random(0))
    ChunkExtraction.model_validate(out)
    for name in first:
        assert out[name]["value"] == t.fields[name], (name, out[name])


def test_noisy_scan_reads_worse_than_clean(matter: list[SampleDoc]) -> None:
    doc = next(d for d in matter if d.truth.document_type == "engagement_letter" and not d.truth.scanned_pages)
    page = render(doc, 1)
    clean, noisy = (mean_conf(degrade(page, level, random.Random(3))) for level in ("clean", "noisy"))
    assert clean > 85 and noisy < clean
