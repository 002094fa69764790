from pathlib import Path

import pytest

from embedded.samples import SampleDoc, generate_matter, page_texts


@pytest.fixture(scope="session")
def matter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("matter")


@pytest.fixture(scope="session")
def matter(matter_dir: Path) -> list[SampleDoc]:
    """The demo's default matter."""
    return generate_matter(matter_dir)


@pytest.fixture(scope="session")
def texts(matter: list[SampleDoc]) -> dict[str, list[str]]:
    """Each document's text layer, page by page."""
    return {d.truth.source_name: page_texts(d.pdf_path) for d in matter}
