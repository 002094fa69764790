"""A page's text layer as words with boxes, read with PDFium (no rendering, no OCR).

Boxes are in PDF points with the origin at the top-left of the page as displayed, so after the
page's crop box and /Rotate, the same frame OCR boxes use.
"""

import re
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from f.core.models import PageText, Word

HYPHEN_AT_BREAK = 0x02  # PDFium's code for a hyphen that ends a line ("para-" / "graph")
BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageFrame:
    """Maps PDF user space onto the displayed page: crop box, rotation, origin top-left."""

    left: float
    bottom: float
    right: float
    top: float
    rotation: int

    @classmethod
    def of(cls, page: pdfium.PdfPage) -> "PageFrame":
        return cls(*page.get_bbox(), rotation=page.get_rotation() % 360)

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.rotation == 90:
            return y - self.bottom, x - self.left
        if self.rotation == 180:
            return self.right - x, y - self.bottom
        if self.rotation == 270:
            return self.top - y, self.right - x
        return x - self.left, self.top - y

    def box(self, left: float, bottom: float, right: float, top: float) -> BBox:
        (x0, y0), (x1, y1) = self.point(left, bottom), self.point(right, top)
        return (round(min(x0, x1), 2), round(min(y0, y1), 2), round(max(x0, x1), 2), round(max(y0, y1), 2))


def clean_text(raw: str) -> str:
    """PDFium's page text with plain line breaks; a hyphen it joined across a line break is restored."""
    text = raw.replace("\ufffe", "-\n").replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


_SURROGATE = re.compile("[\ud800-\udfff]")
_WORD = re.compile(r"[^\s\x00-\x1f\ufffe]+\ufffe?")  # a hyphen joined across a line break ends its word


def _char_texts(textpage: pdfium.PdfTextPage, count: int) -> str:
    """One character of text per PDFium char index (the page text itself, unless PDFium reshaped it)."""
    text = textpage.get_text_range()
    if len(text) == count:
        return text
    codes = (pdfium_c.FPDFText_GetUnicode(textpage, i) for i in range(count))
    return "".join("\ufffe" if c == HYPHEN_AT_BREAK else chr(c) if c < 0x110000 else "\ufffd" for c in codes)


def words(textpage: pdfium.PdfTextPage, frame: PageFrame) -> list[Word]:
    """The text layer's words: runs of non-space characters, boxed from their first and last glyphs.

    Loose glyph boxes (the font's ascent to descent) give every word on a line the same height, and
    two PDFium calls per word instead of one per character keep dense pages fast.
    """
    text = _char_texts(textpage, textpage.count_chars())
    surrogates = _SURROGATE.search(text) is not None  # characters outside the BMP arrive as UTF-16 pairs
    out: list[Word] = []
    for match in _WORD.finditer(text):
        first, last = match.start(), match.end() - 1
        l0, b0, r0, t0 = textpage.get_charbox(first, loose=True)
        l1, b1, r1, t1 = textpage.get_charbox(last, loose=True) if last != first else (l0, b0, r0, t0)
        box = frame.box(min(l0, l1), min(b0, b1), max(r0, r1), max(t0, t1))
        word = match.group().replace("\ufffe", "-")
        if surrogates:
            word = word.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        out.append(Word(text=word, conf=1.0, bbox=box))
    return out


def read_text_layer(page: pdfium.PdfPage, page_no: int) -> PageText:
    """One page's text and words from its text layer; every word has confidence 1.0."""
    textpage = page.get_textpage()
    try:
        found = words(textpage, PageFrame.of(page))
        text = clean_text(textpage.get_text_range())
    finally:
        textpage.close()
    return PageText(
        page=page_no,
        source="text_layer",
        text=text,
        words=found,
        word_count=len(found),
        avg_word_confidence=1.0 if found else 0.0,
    )
