"""A page's text layer as words with boxes, read with PDFium (no rendering, no OCR).

Boxes are in PDF points with the origin at the top-left of the page as displayed, so after the
page's crop box and /Rotate, the same frame OCR boxes use.
"""

import ctypes
import json
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


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


_WORD_JSON = '{"text":%s,"conf":1.0,"bbox":[%.2f,%.2f,%.2f,%.2f]}'
_PLAIN_WORD_JSON = '{"text":"%s","conf":1.0,"bbox":[%.2f,%.2f,%.2f,%.2f]}'


def _words_json(textpage: pdfium.PdfTextPage, frame: PageFrame) -> tuple[str, int]:
    """The text layer's words as the JSON of a list of Word records (without the brackets), and their count:
    runs of non-space characters, boxed from their first and last glyphs.

    Loose glyph boxes (the font's ascent to descent) give every word on a line the same height, and
    two PDFium calls per word instead of one per character keep dense pages fast. This loop runs for every
    word of every page, so it does only what it must: the calls go straight to PDFium with one reused
    rectangle, each word adds its five values to one list, and one format call writes the page's words
    (a tuple and a round() per number, a pydantic model or a format call per word cost more than PDFium's
    own work). Numbers are written with two decimals, as round(x, 2) would make them.
    """
    raw = textpage.raw
    text = _char_texts(textpage, pdfium_c.FPDFText_CountChars(raw))
    surrogates = _SURROGATE.search(text) is not None  # characters outside the BMP arrive as UTF-16 pairs
    hyphens = "\ufffe" in text
    quoted = surrogates or '"' in text or "\\" in text  # else no word needs escaping in JSON
    rect = pdfium_c.FS_RECTF()
    ref, charbox = ctypes.byref(rect), pdfium_c.FPDFText_GetLooseCharBox
    upright = frame.rotation == 0
    left_edge, top_edge = frame.left, frame.top
    values: list[str | float] = []
    extend = values.extend
    for match in _WORD.finditer(text):
        first, end = match.span()
        charbox(raw, first, ref)
        left, bottom, right, top = rect.left, rect.bottom, rect.right, rect.top
        if end - first > 1:
            charbox(raw, end - 1, ref)
            if rect.left < left:
                left = rect.left
            if rect.bottom < bottom:
                bottom = rect.bottom
            if rect.right > right:
                right = rect.right
            if rect.top > top:
                top = rect.top
        total = left + right + bottom + top
        if total - total != 0.0:  # inf or NaN from a broken font: keep the word, with a box JSON can hold
            left = right = bottom = top = 0.0
        word = match.group()
        if hyphens:
            word = word.replace("\ufffe", "-")
        if quoted:
            if surrogates:
                word = word.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
            word = _json_string(word)
        if upright and left <= right and bottom <= top:  # frame.box, inlined for the common case
            extend((word, left - left_edge, top_edge - top, right - left_edge, top_edge - bottom))
        else:
            extend((word, *frame.box(left, bottom, right, top)))
    count = len(values) // 5
    if not count:
        return "", 0
    return ",".join([_WORD_JSON if quoted else _PLAIN_WORD_JSON] * count) % tuple(values), count


def words(textpage: pdfium.PdfTextPage, frame: PageFrame) -> list[Word]:
    """The text layer's words with their boxes, confidence 1.0."""
    found, _ = _words_json(textpage, frame)
    return [Word.model_validate(w) for w in json.loads(f"[{found}]")]


def text_layer_json(page: pdfium.PdfPage, page_no: int) -> tuple[str, str, int]:
    """One page's record from its text layer as the JSON of a PageText (what split stores), with its text
    and word count. Built as a string: a pydantic model per word cost more than reading the page."""
    textpage = page.get_textpage()
    try:
        found, count = _words_json(textpage, PageFrame.of(page))
        text = clean_text(textpage.get_text_range())
    finally:
        textpage.close()
    record = (f'{{"page":{page_no},"source":"text_layer","text":{_json_string(text)},'
              f'"words":[{found}],"word_count":{count},"avg_word_confidence":{1.0 if count else 0.0}}}')
    return record, text, count


def read_text_layer(page: pdfium.PdfPage, page_no: int) -> PageText:
    """One page's text and words from its text layer; every word has confidence 1.0."""
    return PageText.model_validate_json(text_layer_json(page, page_no)[0])
