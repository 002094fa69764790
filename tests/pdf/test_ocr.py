import os
import time

import pypdfium2 as pdfium
import pytest
from fpdf import FPDF
from pdf_factory import PARAGRAPH, image_pdf, render_pages, scanned_pdf, text_pdf, word_recall

from f.core.models import PageText, Word
from f.pdf import ocr
from f.pdf.text_layer import read_text_layer


def ocr_first_page(data: bytes, **kwargs) -> PageText:
    doc = pdfium.PdfDocument(data)
    try:
        return ocr.ocr_page(doc[0], 1, **kwargs)
    finally:
        doc.close()


def text_layer_words(data: bytes) -> list[Word]:
    doc = pdfium.PdfDocument(data)
    try:
        return read_text_layer(doc[0], 1).words
    finally:
        doc.close()


def centre(word: Word) -> tuple[float, float]:
    return (word.bbox[0] + word.bbox[2]) / 2, (word.bbox[1] + word.bbox[3]) / 2


def assert_boxes_match(found: list[Word], truth: list[Word], tolerance: float = 4.0) -> None:
    """Every OCR word that is a word of the text layer lies where the text layer puts it."""
    matched = 0
    for word in found:
        candidates = [t for t in truth if t.text == word.text]
        if not candidates:
            continue
        cx, cy = centre(word)
        distance = min(abs(cx - centre(t)[0]) + abs(cy - centre(t)[1]) for t in candidates)
        assert distance < tolerance, f"{word} is {distance:.1f} pt from where the text layer has it"
        matched += 1
    assert matched >= 0.9 * len(truth)


def test_clean_scan_is_read_with_high_confidence(paragraph_pdf: bytes, paragraph_scan: bytes) -> None:
    started = time.perf_counter()
    result = ocr_first_page(paragraph_scan)
    print(f"\nOCR at {ocr.DPI} dpi: {time.perf_counter() - started:.2f} s for one page")
    assert result.source == "ocr" and result.page == 1
    assert result.avg_word_confidence >= 0.8
    assert result.word_count == len(result.words)
    assert result.avg_word_confidence == pytest.approx(sum(w.conf for w in result.words) / len(result.words), abs=1e-4)
    assert word_recall(PARAGRAPH.split(), [w.text for w in result.words]) >= 0.95
    assert word_recall(PARAGRAPH.split(), result.text.split()) >= 0.95
    assert all(0 < w.conf <= 1 and 0 <= w.bbox[0] < w.bbox[2] <= 612 and 0 <= w.bbox[1] < w.bbox[3] <= 792 for w in result.words)
    assert_boxes_match(result.words, text_layer_words(paragraph_pdf))


def test_text_is_rebuilt_by_line(paragraph_pdf: bytes, paragraph_scan: bytes) -> None:
    expected = read_lines(paragraph_pdf)
    lines = ocr_first_page(paragraph_scan).text.split("\n")
    assert len(lines) == len(expected)
    assert word_recall(expected[0].split(), lines[0].split()) >= 0.9
    assert expected[-1].split()[-1] == lines[-1].split()[-1]


def read_lines(data: bytes) -> list[str]:
    doc = pdfium.PdfDocument(data)
    try:
        return read_text_layer(doc[0], 1).text.split("\n")
    finally:
        doc.close()


def test_upside_down_scan_is_turned_and_boxed_on_the_page_as_shown(paragraph_pdf: bytes) -> None:
    result = ocr_first_page(scanned_pdf(paragraph_pdf, rotate=180))
    assert result.avg_word_confidence >= 0.8
    assert word_recall(PARAGRAPH.split(), [w.text for w in result.words]) >= 0.9
    # on the page as displayed, the first words are at the bottom right, turned half a circle
    turned = [Word(text=w.text, conf=1.0, bbox=(612 - w.bbox[2], 792 - w.bbox[3], 612 - w.bbox[0], 792 - w.bbox[1]))
              for w in text_layer_words(paragraph_pdf)]
    assert_boxes_match(result.words, turned)


def test_sideways_scan_is_turned(paragraph_pdf: bytes) -> None:
    result = ocr_first_page(scanned_pdf(paragraph_pdf, rotate=90))  # a landscape page, text running upwards
    assert result.avg_word_confidence >= 0.8
    assert word_recall(PARAGRAPH.split(), [w.text for w in result.words]) >= 0.9
    # turned 90 degrees counter-clockwise: (x, y) on the upright page is (y, 612 - x) on the landscape page
    turned = [Word(text=w.text, conf=1.0, bbox=(w.bbox[1], 612 - w.bbox[2], w.bbox[3], 612 - w.bbox[0]))
              for w in text_layer_words(paragraph_pdf)]
    assert_boxes_match(result.words, turned)


def test_blank_scan_has_no_words() -> None:
    from PIL import Image

    result = ocr_first_page(image_pdf([Image.new("L", (2550, 3300), 255)]))
    assert (result.words, result.text, result.word_count, result.avg_word_confidence) == ([], "", 0, 0.0)


def test_smudged_scan_reports_lower_confidence(paragraph_pdf: bytes, paragraph_scan: bytes) -> None:
    from PIL import ImageFilter

    blurred = render_pages(paragraph_pdf, dpi=100)[0].filter(ImageFilter.GaussianBlur(1.6))
    smudged = ocr_first_page(image_pdf([blurred]))
    clean = ocr_first_page(paragraph_scan)
    assert smudged.avg_word_confidence < clean.avg_word_confidence - 0.05


def test_render_is_in_memory_at_the_chosen_dpi(paragraph_scan: bytes) -> None:
    doc = pdfium.PdfDocument(paragraph_scan)
    image, scale = ocr.render(doc[0], 300)
    assert image.size[0] == 2550 and image.size[1] in (3300, 3301) and image.mode == "L" and scale == pytest.approx(300 / 72)
    doc.close()


def test_oversized_page_render_is_capped() -> None:
    pdf = FPDF(unit="pt", format=(14_000, 14_000))
    pdf.add_page()
    doc = pdfium.PdfDocument(bytes(pdf.output()))
    image, scale = ocr.render(doc[0], 300)
    assert image.width * image.height <= ocr.MAX_PIXELS and scale < 300 / 72
    doc.close()


def test_tesseract_runs_single_threaded(paragraph_scan: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    seen: list[str | None] = []
    real = ocr.pytesseract.image_to_data

    def spy(*args, **kwargs):
        seen.append(os.environ.get("OMP_THREAD_LIMIT"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ocr.pytesseract, "image_to_data", spy)
    ocr_first_page(paragraph_scan)
    assert seen == ["1"]


@pytest.mark.parametrize("dpi", [200, 300])
def test_dpi_speed_and_accuracy(paragraph_pdf: bytes, dpi: int) -> None:
    """The measurement behind ocr.DPI: small print scanned at 200 dpi, read at 200 vs 300 dpi."""
    small = text_pdf([PARAGRAPH * 3], font_size=7, font="Times")
    scan = scanned_pdf(small, dpi=200)
    started = time.perf_counter()
    result = ocr_first_page(scan, dpi=dpi)
    elapsed = time.perf_counter() - started
    recall = word_recall((PARAGRAPH * 3).split(), [w.text for w in result.words])
    print(f"\n{dpi} dpi: {elapsed:.2f} s/page, recall {recall:.3f}, confidence {result.avg_word_confidence:.3f}")
    assert recall >= 0.85


def test_tesseract_rows_become_words_and_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Structure rows (conf -1) are skipped; lines join with newlines, paragraphs with a blank line."""
    rows = [  # (block, par, line, text, conf, left, top, width, height) in pixels at scale 2 (144 dpi)
        (1, 1, 1, "", -1, 0, 0, 400, 100),
        (1, 1, 1, "Total", 96.5, 20, 40, 60, 20),
        (1, 1, 1, "due", 91, 90, 40, 40, 20),
        (1, 1, 2, "ghost", -1, 20, 70, 50, 20),
        (1, 1, 2, "USD", 88, 20, 70, 40, 20),
        (1, 2, 1, " ", 95, 20, 100, 10, 20),
        (2, 1, 1, "Signed", 40, 20, 140, 70, 20),
    ]
    keys = ["block_num", "par_num", "line_num", "text", "conf", "left", "top", "width", "height"]
    data = {key: [row[i] for row in rows] for i, key in enumerate(keys)}
    monkeypatch.setattr(ocr, "_tesseract", lambda *args: data)
    monkeypatch.setattr(ocr, "_orientation", lambda *args: 0)
    from PIL import Image

    result = ocr.ocr_image(Image.new("L", (400, 200), 255), 2.0, 7)
    assert [w.text for w in result.words] == ["Total", "due", "USD", "Signed"]
    assert result.text == "Total due\nUSD\n\nSigned"
    assert result.words[0].bbox == (10.0, 20.0, 40.0, 30.0) and result.words[0].conf == 0.965
    assert result.avg_word_confidence == pytest.approx((0.965 + 0.91 + 0.88 + 0.40) / 4, abs=1e-4)
    assert result.page == 7 and result.word_count == 4
