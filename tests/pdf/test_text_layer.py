import ctypes
import io

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from fpdf import FPDF
from pdf_factory import PARAGRAPH, text_pdf

from f.core.models import PageText
from f.pdf.text_layer import read_text_layer


def first_page(data: bytes) -> tuple[pdfium.PdfDocument, pdfium.PdfPage]:
    doc = pdfium.PdfDocument(data)
    return doc, doc[0]


def read(data: bytes) -> PageText:
    doc, page = first_page(data)
    try:
        return read_text_layer(page, 1)
    finally:
        doc.close()


def saved(doc: pdfium.PdfDocument) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def test_words_are_the_text_in_reading_order(paragraph_pdf: bytes) -> None:
    result = read(paragraph_pdf)
    assert [w.text for w in result.words] == PARAGRAPH.split()
    assert result.source == "text_layer" and result.page == 1
    assert result.word_count == len(result.words) and result.avg_word_confidence == 1.0
    assert all(w.conf == 1.0 for w in result.words)
    assert result.text.split() == PARAGRAPH.split()


def test_text_keeps_line_breaks(paragraph_pdf: bytes) -> None:
    lines = read(paragraph_pdf).text.split("\n")
    assert len(lines) >= 3  # the paragraph wraps over several lines of the page
    assert all(line == line.strip() for line in lines)


def test_boxes_sit_where_the_words_are_printed(paragraph_pdf: bytes) -> None:
    words = read(paragraph_pdf).words
    for w in words:
        x0, y0, x1, y1 = w.bbox
        assert 0 <= x0 < x1 <= 612 and 0 <= y0 < y1 <= 792
        assert 8 <= y1 - y0 <= 20  # a 12 pt font
    x0, y0, _, _ = words[0].bbox
    assert 28.35 <= x0 <= 33  # the left margin plus fpdf2's cell padding (1 mm)
    assert 28 <= y0 <= 45  # the first line, near the top: the origin is top-left
    first_line = [w for w in words if w.bbox[1] == words[0].bbox[1]]
    assert len(first_line) > 5
    assert [w.bbox[0] for w in first_line] == sorted(w.bbox[0] for w in first_line)
    assert words[-1].bbox[1] > words[0].bbox[1] + 20  # the last word is lines further down


def test_hyphenated_line_break_is_two_words_on_two_lines() -> None:
    pdf = FPDF(format="letter", unit="pt")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 16, "The indemni-\nfication clause survives.")
    result = read(bytes(pdf.output()))
    assert [w.text for w in result.words] == ["The", "indemni-", "fication", "clause", "survives."]
    assert "indemni-\nfication" in result.text
    assert result.words[2].bbox[1] > result.words[1].bbox[3] - 1  # next line down


def test_empty_page_has_no_words() -> None:
    result = read(text_pdf([""]))
    assert (result.words, result.text, result.word_count, result.avg_word_confidence) == ([], "", 0, 0.0)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("crop", [None, (40.0, 300.0, 560.0, 780.0)])
def test_boxes_follow_rotation_and_crop_box(
    paragraph_pdf: bytes, rotation: int, crop: tuple[float, float, float, float] | None
) -> None:
    """Each word's box on the turned or cropped page is PDFium's own mapping of its box on the plain page."""
    upright = read(paragraph_pdf).words
    doc, page = first_page(paragraph_pdf)
    page.set_rotation(rotation)
    if crop:
        page.set_cropbox(*crop)
    doc, page = first_page(saved(doc))
    width, height = page.get_size()
    turned = read_text_layer(page, 1).words
    assert sorted(w.text for w in turned) == sorted(w.text for w in upright)  # PDFium may order lines differently
    grid = 100  # PDFium maps to whole device pixels: map onto a fine grid
    x, y = ctypes.c_int(), ctypes.c_int()
    expected = []
    for before in upright:
        corners = []
        for px, py in [(before.bbox[0], 792 - before.bbox[1]), (before.bbox[2], 792 - before.bbox[3])]:
            pdfium_c.FPDF_PageToDevice(page, 0, 0, round(width * grid), round(height * grid), 0, px, py, x, y)
            corners.append((x.value / grid, y.value / grid))
        xs, ys = sorted(c[0] for c in corners), sorted(c[1] for c in corners)
        expected.append((before.text, (xs[0], ys[0], xs[1], ys[1])))
    for word in turned:
        assert any(
            text == word.text and word.bbox == pytest.approx(box, abs=0.03) for text, box in expected
        ), f"{word} is not where the upright page puts it"
    if crop is None:
        assert all(0 <= w.bbox[0] < w.bbox[2] <= width and 0 <= w.bbox[1] < w.bbox[3] <= height for w in turned)
    doc.close()
