import io

import pypdfium2 as pdfium
import pytest
from PIL import Image
from pdf_factory import PARAGRAPH, png_bytes, render_pages, word_recall

from f.pdf.errors import BadDocument
from f.pdf.images import describe, image_to_pdf, sniff
from f.pdf.inspect import inspect_pdf
from f.pdf.ocr import ocr_page


@pytest.fixture(scope="module")
def scan(paragraph_pdf: bytes) -> Image.Image:
    return render_pages(paragraph_pdf, dpi=300)[0]


def test_sniff() -> None:
    assert sniff(b"%PDF-1.7\n") == "pdf"
    assert sniff(b"\xef\xbb\xbf  junk %PDF-1.4") == "pdf"  # a header after a little junk still counts
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff(b"II*\x00") == sniff(b"MM\x00*") == "tiff"
    assert sniff(b"PK\x03\x04") is None and describe(b"PK\x03\x04").startswith("a ZIP archive")


def test_png_becomes_a_scanned_page_that_ocr_reads(scan: Image.Image) -> None:
    pdf = image_to_pdf(png_bytes(scan, dpi=(300, 300)), doc_label="photo")
    inspection = inspect_pdf(pdf, doc_label="photo")
    assert inspection.pages == 1 and inspection.ocr_pages == {1}
    info = inspection.page_info[0]
    assert (info.width_pt, info.height_pt) == pytest.approx((612, 792), abs=1)
    doc = pdfium.PdfDocument(pdf)
    result = ocr_page(doc[0], 1)
    doc.close()
    assert result.avg_word_confidence >= 0.8
    assert word_recall(PARAGRAPH.split(), [w.text for w in result.words]) >= 0.95


def test_jpeg_is_embedded_without_re_encoding(scan: Image.Image) -> None:
    jpeg = png_bytes(scan, "JPEG", quality=70, dpi=(300, 300))
    doc = pdfium.PdfDocument(image_to_pdf(jpeg, doc_label="jpeg"))
    [image] = [obj for obj in doc[0].get_objects() if isinstance(obj, pdfium.PdfImage)]
    assert image.get_filters() == ["DCTDecode"]
    assert bytes(image.get_data()) == jpeg
    doc.close()


def test_multipage_tiff_gives_a_page_per_frame(scan: Image.Image) -> None:
    out = io.BytesIO()
    scan.save(out, "TIFF", save_all=True, append_images=[scan.rotate(180)], dpi=(300, 300))
    inspection = inspect_pdf(image_to_pdf(out.getvalue(), doc_label="fax"), doc_label="fax")
    assert inspection.pages == 2 and inspection.ocr_pages == {1, 2}


def test_image_without_a_stated_resolution_gets_a_page_sized_page() -> None:
    photo = Image.new("RGB", (3024, 4032), "white")  # a phone photo states 72 dpi or nothing
    info = inspect_pdf(image_to_pdf(png_bytes(photo), doc_label="photo"), doc_label="photo").page_info[0]
    assert info.height_pt == pytest.approx(11 * 72, abs=1) and info.width_pt == pytest.approx(8.25 * 72, abs=1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n", "not a PNG, JPEG or TIFF image: looks like a PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "unreadable PNG image"),
        (b"hello", "looks like plain text"),
    ],
)
def test_what_is_not_a_readable_image(data: bytes, expected: str) -> None:
    with pytest.raises(BadDocument, match=expected):
        image_to_pdf(data, doc_label="x")


def test_transparent_png_is_flattened_onto_white(scan: Image.Image) -> None:
    ink = scan.point(lambda v: 255 - v)  # dark text as opacity
    rgba = Image.new("RGBA", scan.size, (0, 0, 0, 0))
    rgba.putalpha(ink)
    doc = pdfium.PdfDocument(image_to_pdf(png_bytes(rgba, dpi=(300, 300)), doc_label="clear"))
    result = ocr_page(doc[0], 1)
    doc.close()
    assert word_recall(PARAGRAPH.split(), [w.text for w in result.words]) >= 0.95
