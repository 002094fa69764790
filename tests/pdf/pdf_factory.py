"""Real PDFs for the pdf tests: text pages from fpdf2, scans made by rendering them with PDFium."""

import io
from collections import Counter
from collections.abc import Sequence

import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image

LETTER = (612.0, 792.0)

PARAGRAPH = (
    "This Engagement Letter is made between Harbor Point Logistics LLC and Whitfield and Marsh LLP "
    "on 14 March 2024. The total fee for the matter is 48,500.00 US dollars, payable within thirty days. "
    "This letter is governed by the laws of the State of New York. Either party may terminate on notice."
)


def text_pdf(pages: Sequence[str], *, font_size: float = 12, font: str = "Helvetica") -> bytes:
    """One letter page per string, the text flowed from the top-left margin (10 mm)."""
    pdf = FPDF(format="letter", unit="pt")
    pdf.set_margins(28.35, 28.35)
    pdf.set_auto_page_break(False)
    pdf.set_font(font, size=font_size)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, font_size * 1.4, text)
    return bytes(pdf.output())


def render_pages(data: bytes, dpi: int = 300) -> list[Image.Image]:
    doc = pdfium.PdfDocument(data)
    try:
        return [doc[i].render(scale=dpi / 72, grayscale=True).to_pil().copy() for i in range(len(doc))]
    finally:
        doc.close()


def image_pdf(images: Sequence[Image.Image], *, page: tuple[float, float] = LETTER) -> bytes:
    """Image-only pages, as a scanner makes them; a landscape image gets a landscape page."""
    pdf = FPDF(unit="pt", format=page)
    pdf.set_auto_page_break(False)
    for image in images:
        w, h = (page[1], page[0]) if image.width > image.height else page
        pdf.add_page(format=(w, h))
        pdf.image(image, x=0, y=0, w=w, h=h)
    return bytes(pdf.output())


def scanned_pdf(data: bytes, *, dpi: int = 300, rotate: int = 0) -> bytes:
    """The pages of data as a scanner would give them: images only, optionally turned counter-clockwise."""
    images = render_pages(data, dpi)
    if rotate:
        images = [im.rotate(rotate, expand=True, fillcolor=255) for im in images]
    return image_pdf(images)


def mixed_pdf(kinds: str) -> bytes:
    """A document whose pages are 't' (text layer) or 's' (scanned), e.g. 'tst'."""
    pdf = FPDF(format="letter", unit="pt")
    pdf.set_margins(28.35, 28.35)
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=12)
    scan = render_pages(text_pdf([PARAGRAPH]))[0]
    for n, kind in enumerate(kinds, start=1):
        pdf.add_page()
        if kind == "t":
            pdf.multi_cell(0, 16.8, f"Page {n}. {PARAGRAPH}")
        else:
            pdf.image(scan, x=0, y=0, w=LETTER[0], h=LETTER[1])
    return bytes(pdf.output())


def tokens(text: str) -> list[str]:
    return text.split()


def word_recall(truth: Sequence[str], found: Sequence[str]) -> float:
    """Share of the truth's words found (as a multiset)."""
    return sum((Counter(truth) & Counter(found)).values()) / len(truth)


def png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kwargs)
    return out.getvalue()
