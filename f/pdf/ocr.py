"""OCR of one page: render it with PDFium in memory, read it with tesseract, box words in PDF points.

Measured on this 2-core machine (tesseract 5.3, one thread): read at 300 dpi rather than 200, 7-pt
print from degraded scans came out 1.5-5 points more accurate, for 20-30% more CPU (a dense
520-word page: 2.1 against 1.7 CPU s). Clean 9-12 pt print reads perfectly at both. So 300 dpi. A page rendered upside down or sideways reads at low confidence; then
tesseract's orientation detection decides, and the page is read again turned upright.
"""

import math
import os
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium
from PIL import Image

from f.core.models import PageText, Word

DPI = 300
MAX_PIXELS = 40_000_000  # caps the render of an oversized page (an A3 page at 300 dpi is 17 MP)
RETRY_BELOW = 0.5  # mean word confidence under which the page's orientation is checked
_UPRIGHT = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


def _pytesseract() -> Any:
    """pytesseract, imported on first use: it imports numpy (0.1-0.2 s), which a split job of a document with
    a text layer on every page never needs."""
    import pytesseract

    return pytesseract


def __getattr__(name: str) -> Any:  # `ocr.pytesseract` still names the module
    if name == "pytesseract":
        return _pytesseract()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def single_threaded_tesseract() -> None:
    """Tesseract's OpenMP threads make one page 6x slower on a busy machine; parallelism comes from processes."""
    os.environ["OMP_THREAD_LIMIT"] = "1"


def render(page: pdfium.PdfPage, dpi: int = DPI) -> tuple[Image.Image, float]:
    """The page as a grayscale image in memory, and its scale in pixels per point."""
    width, height = page.get_size()
    scale = min(dpi / 72, 0.99 * math.sqrt(MAX_PIXELS / max(width * height, 1.0)))  # 0.99: PDFium rounds up
    return page.render(scale=scale, grayscale=True).to_pil(), scale


@dataclass
class _Read:
    words: list[Word]
    text: str

    @property
    def confidence(self) -> float:
        return sum(w.conf for w in self.words) / len(self.words) if self.words else 0.0


def _uncompressed(image: Image.Image) -> Image.Image:
    """pytesseract hands tesseract a temporary file in image.format (PNG by default). An uncompressed
    PGM costs nothing to write, where PNG costs up to 140 ms of encoding a page."""
    image.format = "PPM"
    return image


def _tesseract(image: Image.Image, dpi: int, lang: str, config: str) -> dict[str, list]:
    single_threaded_tesseract()
    image = _uncompressed(image)
    tesseract = _pytesseract()
    return tesseract.image_to_data(
        image, lang=lang, config=f"--dpi {dpi} {config}".strip(), output_type=tesseract.Output.DICT
    )


def _read(image: Image.Image, scale: float, turned: int, lang: str, config: str) -> _Read:
    """Words and text of an image turned `turned` degrees clockwise from the rendered page."""
    data = _tesseract(image, round(scale * 72), lang, config)
    width, height = image.size  # of the turned image
    words: list[Word] = []
    lines: dict[tuple[int, int, int], list[str]] = {}
    for i, raw_text in enumerate(data["text"]):
        conf, text = float(data["conf"][i]), (raw_text or "").strip()
        if conf < 0 or not text:
            continue
        x0, y0 = data["left"][i], data["top"][i]
        x1, y1 = x0 + data["width"][i], y0 + data["height"][i]
        if turned == 90:  # undo a clockwise quarter turn: (x, y) came from (y', W' - x')
            x0, y0, x1, y1 = y0, width - x1, y1, width - x0
        elif turned == 180:
            x0, y0, x1, y1 = width - x1, height - y1, width - x0, height - y0
        elif turned == 270:
            x0, y0, x1, y1 = height - y1, x0, height - y0, x1
        bbox = (round(x0 / scale, 2), round(y0 / scale, 2), round(x1 / scale, 2), round(y1 / scale, 2))
        words.append(Word(text=text, conf=min(max(conf / 100, 0.0), 1.0), bbox=bbox))
        lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(text)
    text, previous = "", None
    for (block, par, _), line in lines.items():
        if previous is not None:
            text += "\n\n" if (block, par) != previous else "\n"
        text += " ".join(line)
        previous = (block, par)
    return _Read(words, text)


def _orientation(image: Image.Image, dpi: int) -> int:
    """Clockwise degrees that make the page upright, by tesseract's OSD; 0 when it cannot tell."""
    tesseract = _pytesseract()
    try:
        osd = tesseract.image_to_osd(_uncompressed(image), config=f"--dpi {dpi}", output_type=tesseract.Output.DICT)
    except tesseract.TesseractError:  # too few characters to decide
        return 0
    return int(osd["rotate"]) if osd.get("orientation_conf", 0) >= 1.0 and osd["rotate"] in _UPRIGHT else 0


def ocr_image(image: Image.Image, scale: float, page_no: int, *, lang: str = "eng", config: str = "") -> PageText:
    """OCR a rendered page (scale = pixels per point); word boxes in PDF points, origin top-left."""
    best = _read(image, scale, 0, lang, config)
    if best.words and best.confidence < RETRY_BELOW:
        turn = _orientation(image, round(scale * 72))
        if turn:
            upright = _read(image.transpose(_UPRIGHT[turn]), scale, turn, lang, config)
            best = upright if upright.confidence > best.confidence else best
    return PageText(
        page=page_no,
        source="ocr",
        text=best.text,
        words=best.words,
        word_count=len(best.words),
        avg_word_confidence=round(best.confidence, 4),
    )


def ocr_page(page: pdfium.PdfPage, page_no: int, *, dpi: int = DPI, lang: str = "eng") -> PageText:
    """Render one page in memory and OCR it."""
    image, scale = render(page, dpi)
    return ocr_image(image, scale, page_no, lang=lang)
