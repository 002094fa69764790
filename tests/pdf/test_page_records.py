"""The page records split stores, made in the workers as JSON: the same records the PageText path makes."""

import json

import pypdfium2 as pdfium
import pytest
from pdf_factory import PARAGRAPH, mixed_pdf, text_pdf

from f.core.models import PageText
from f.pdf.inspect import inspect_pdf
from f.pdf.pages import make_pool, read_all_pages, read_page_records
from f.pdf.text_layer import read_text_layer, text_layer_json


@pytest.fixture(scope="module")
def pool():
    executor = make_pool(2)
    yield executor
    executor.shutdown()


def test_text_layer_json_is_the_page_text_record() -> None:
    awkward = 'Quoted "terms", a back\\slash, and 3/4 of €1,000 — plus naïve ünïcödé.'
    data = text_pdf([PARAGRAPH, ""])  # a second page with no text at all
    with pdfium.PdfDocument(data) as doc:
        record, text, count = text_layer_json(doc[0], 1)
        page = PageText.model_validate_json(record)
        assert page.text == text and page.word_count == count == len(page.words) > 20
        assert [w.text for w in page.words] == PARAGRAPH.split()
        assert all(w.conf == 1.0 for w in page.words) and page.avg_word_confidence == 1.0
        assert page == read_text_layer(doc[0], 1)
        empty = PageText.model_validate_json(text_layer_json(doc[1], 2)[0])
        assert (empty.words, empty.word_count, empty.avg_word_confidence) == ([], 0, 0.0)
    with pdfium.PdfDocument(_unicode_pdf(awkward)) as doc:
        record, _, _ = text_layer_json(doc[0], 1)
        page = PageText.model_validate_json(record)  # quotes and backslashes escaped, the rest kept
        assert json.loads(record)["words"][0]["text"] == page.words[0].text
        assert [w.text for w in page.words] == awkward.split()


def _unicode_pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="letter", unit="pt")
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        try:
            pdf.add_font("DejaVu", fname=path)
            pdf.set_font("DejaVu", size=12)
            break
        except (FileNotFoundError, RuntimeError):
            continue
    else:
        pytest.skip("no Unicode TrueType font installed")
    pdf.add_page()
    pdf.multi_cell(0, 16, text)
    return bytes(pdf.output())


async def test_records_match_the_page_texts_in_any_order(pool) -> None:
    data = mixed_pdf("tstttst")
    ocr = inspect_pdf(data, doc_label="mixed").ocr_pages
    texts = {p.page: p for p in await read_all_pages(data, range(1, 8), ocr, pool=pool)}
    records = [r async for r in read_page_records(data, range(1, 8), ocr, pool=pool, ordered=False)]
    assert sorted(r.page for r in records) == list(range(1, 8))
    for record in records:
        stored = PageText.model_validate_json(record.json)
        assert stored == texts[record.page]
        header = record.header()
        assert (header.page, header.source, header.text, header.word_count, header.avg_word_confidence) == (
            stored.page, stored.source, stored.text, stored.word_count, stored.avg_word_confidence)


async def test_ordered_records_come_in_page_order(pool) -> None:
    data = mixed_pdf("tst")
    ocr = inspect_pdf(data, doc_label="mixed").ocr_pages
    assert [r.page async for r in read_page_records(data, [3, 1, 2], ocr, pool=pool)] == [1, 2, 3]
