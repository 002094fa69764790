import io
import pickle
import time
import zipfile
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF
from PIL import Image
from pdf_factory import PARAGRAPH, mixed_pdf, png_bytes, text_pdf

from f.pdf.errors import BadDocument
from f.pdf.inspect import inspect_pdf


def reason_of(data: bytes | Path, **kwargs) -> str:
    with pytest.raises(BadDocument) as caught:
        inspect_pdf(data, doc_label="doc-1", **kwargs)
    assert str(caught.value) == f"document doc-1: {caught.value.reason}"
    return caught.value.reason


def test_text_pages_have_a_text_layer(paragraph_pdf: bytes) -> None:
    result = inspect_pdf(paragraph_pdf, doc_label="letter")
    assert result.pages == 1
    info = result.page_info[0]
    assert info.has_text_layer and info.page == 1
    assert info.chars == sum(not c.isspace() for c in PARAGRAPH)
    assert (info.width_pt, info.height_pt) == (612.0, 792.0)
    assert result.ocr_pages == set()


def test_scanned_pages_are_found_among_text_pages() -> None:
    result = inspect_pdf(mixed_pdf("tsts"), doc_label="mixed")
    assert [p.has_text_layer for p in result.page_info] == [True, False, True, False]
    assert result.ocr_pages == {2, 4}
    assert result.page_info[1].chars == 0


def test_a_page_with_a_few_characters_counts_as_scanned() -> None:
    result = inspect_pdf(text_pdf(["Page 3", PARAGRAPH, ""]), doc_label="short")
    assert [p.has_text_layer for p in result.page_info] == [False, True, False]
    assert result.page_info[0].chars == 5


def test_reads_from_a_path(tmp_path: Path, paragraph_pdf: bytes) -> None:
    path = tmp_path / "letter.pdf"
    path.write_bytes(paragraph_pdf)
    assert inspect_pdf(path, doc_label="letter").page_info[0].has_text_layer


def test_rotated_page_reports_its_displayed_size(paragraph_pdf: bytes) -> None:
    doc = pdfium.PdfDocument(paragraph_pdf)
    doc[0].set_rotation(90)
    out = io.BytesIO()
    doc.save(out)
    info = inspect_pdf(out.getvalue(), doc_label="landscape").page_info[0]
    assert (info.width_pt, info.height_pt) == (792.0, 612.0)


def test_empty_input() -> None:
    assert "empty" in reason_of(b"")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"")
    assert "empty" in reason_of(tmp_path / "x.pdf")


def test_renamed_png() -> None:
    data = png_bytes(Image.new("L", (50, 50), 255))
    assert reason_of(data) == "is not a PDF: no %PDF- header; it looks like a PNG image"


def test_renamed_zip() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<xml/>")
    assert "ZIP archive" in reason_of(out.getvalue())


def test_renamed_text() -> None:
    assert "plain text" in reason_of(b"Dear Sir,\nplease find attached the contract.\n")


def test_truncated(paragraph_pdf: bytes) -> None:
    reason = reason_of(paragraph_pdf[: len(paragraph_pdf) // 2])
    assert reason.startswith("truncated or corrupt")


def test_corrupt_body_with_a_pdf_header() -> None:
    assert "corrupt" in reason_of(b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n")


def test_password_protected() -> None:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="user")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Privileged and confidential")
    assert "password-protected" in reason_of(bytes(pdf.output()))


def test_owner_password_only_is_readable() -> None:
    """Permissions-only encryption (no user password) opens in any reader, so it is accepted."""
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Privileged and confidential: settlement terms")
    assert inspect_pdf(bytes(pdf.output()), doc_label="perm").page_info[0].has_text_layer


def test_zero_pages() -> None:
    doc = pdfium.PdfDocument.new()
    out = io.BytesIO()
    doc.save(out)
    assert reason_of(out.getvalue()) == "has zero pages"


def test_too_many_pages() -> None:
    assert reason_of(text_pdf(["a", "b", "c"]), max_pages=2) == "has 3 pages, more than the limit of 2"


@pytest.mark.parametrize("size", [(20_000.0, 700.0), (1.0, 1.0)])
def test_absurd_page_size(size: tuple[float, float]) -> None:
    pdf = FPDF(unit="pt", format=size)
    pdf.add_page()
    assert "outside 3-14400 pt" in reason_of(bytes(pdf.output()))


def test_bad_document_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(BadDocument("doc-1", "has zero pages")))
    assert str(error) == "document doc-1: has zero pages" and error.reason == "has zero pages"


def test_thousand_pages_inspected_quickly() -> None:
    data = text_pdf([f"Page {n}. {PARAGRAPH}" for n in range(1, 1001)])
    started = time.perf_counter()
    result = inspect_pdf(data, doc_label="big")
    elapsed = time.perf_counter() - started
    print(f"\ninspect: 1000 pages in {elapsed:.2f} s = {1000 / elapsed:.0f} pages/s")
    assert result.pages == 1000 and result.ocr_pages == set()
    assert elapsed < 5.0


def scan_with_text(text: str, *, invisible: bool = False, image_size: tuple[float, float] = (612, 792)) -> bytes:
    """A scanned page (a full-page image) with text on top: a stamp, or a scanner's invisible OCR layer."""
    from fpdf.enums import TextMode
    from pdf_factory import render_pages

    scan = render_pages(text_pdf([PARAGRAPH]), dpi=100)[0]
    pdf = FPDF(format="letter", unit="pt")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.image(scan, x=0, y=0, w=image_size[0], h=image_size[1])
    pdf.set_font("Helvetica", size=9)
    if invisible:
        pdf.text_mode = TextMode.INVISIBLE
    pdf.set_xy(30, 740)
    pdf.multi_cell(0, 11, text)
    return bytes(pdf.output())


def test_stamped_scan_needs_ocr() -> None:
    """A production page: a scan with a digital confidentiality legend and Bates number."""
    info = inspect_pdf(scan_with_text("CONFIDENTIAL - SUBJECT TO PROTECTIVE ORDER    HPL-0001234"), doc_label="p").page_info[0]
    assert info.chars >= 20 and not info.has_text_layer


def test_scan_with_an_ocr_layer_keeps_it() -> None:
    info = inspect_pdf(scan_with_text(PARAGRAPH, invisible=True), doc_label="p").page_info[0]
    assert info.has_text_layer


def test_text_page_with_a_small_logo_keeps_its_text_layer() -> None:
    info = inspect_pdf(scan_with_text("Harbor Point Logistics LLC, 14 March 2024", image_size=(120, 60)), doc_label="p").page_info[0]
    assert info.has_text_layer
