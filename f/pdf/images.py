"""File-type sniffing, and plain images (PNG, JPEG, TIFF) turned into PDFs of image-only pages.

Converting at ingest means every later stage reads one format: the pages of an image document are
scanned pages, OCR'd like any other. A JPEG is embedded as it is (no re-encoding); other images are
embedded losslessly. A multi-page TIFF becomes one PDF page per frame.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import pypdfium2 as pdfium

from f.pdf.errors import BadDocument

if TYPE_CHECKING:
    from PIL import Image

Kind = Literal["pdf", "png", "jpeg", "tiff"]
IMAGE_KINDS: frozenset[str] = frozenset({"png", "jpeg", "tiff"})
MAX_IMAGE_PIXELS = 120_000_000  # a 600-dpi A3 page is 70 MP
PDF_HEADER_WINDOW = 1024  # readers accept "%PDF-" anywhere in the first KiB

_MAGIC: dict[bytes, Kind] = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
}
_OTHER: dict[bytes, str] = {
    b"PK\x03\x04": "a ZIP archive (or an Office document such as DOCX)",
    b"\xd0\xcf\x11\xe0": "a legacy Office document (DOC/XLS/MSG)",
    b"GIF8": "a GIF image",
    b"{\\rtf": "an RTF document",
    b"<": "an HTML or XML document",
}


def sniff(head: bytes) -> Kind | None:
    """The kind of document the first bytes announce, or None when it is none we read."""
    if b"%PDF-" in head[:PDF_HEADER_WINDOW]:
        return "pdf"
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def describe(head: bytes) -> str:
    """What the first bytes look like, for an error message."""
    kind = sniff(head)
    if kind == "pdf":
        return "a PDF"
    if kind in IMAGE_KINDS:
        return f"a {kind.upper()} image"
    stripped = head.lstrip()
    other = next((what for magic, what in _OTHER.items() if stripped.startswith(magic)), None)
    if other:
        return other
    try:
        head[:512].decode("utf-8")
        return "plain text"
    except UnicodeDecodeError:
        return "unrecognised binary data"


def _page_dpi(frame: Image.Image) -> float:
    """The scan resolution the image states, or the one that makes its long side 11 inches."""
    stated = frame.info.get("dpi", (0, 0))[0] or 0
    if 100 <= stated <= 1200:
        return float(stated)
    return max(max(frame.size) / 11.0, 72.0)


def _for_pdfium(frame: Image.Image) -> Image.Image:
    """Gray or RGB, transparency flattened onto white paper."""
    if frame.mode in ("L", "RGB"):
        return frame
    gray = frame.mode in ("1", "L", "LA", "I", "I;16", "F")
    if "A" in frame.getbands() or "transparency" in frame.info:
        from PIL import Image

        frame = Image.alpha_composite(Image.new("RGBA", frame.size, "white"), frame.convert("RGBA"))
    return frame.convert("L" if gray else "RGB")


def image_to_pdf(data: bytes, *, doc_label: str, max_pages: int = 2000) -> bytes:
    """A PDF with one image-only page per frame of a PNG, JPEG or TIFF; BadDocument if unreadable."""
    from PIL import Image, ImageOps, ImageSequence  # here: ingest of a PDF (nearly every upload) never needs Pillow

    kind = sniff(data[:16])
    if kind not in IMAGE_KINDS:
        raise BadDocument(doc_label, f"not a PNG, JPEG or TIFF image: looks like {describe(data[:PDF_HEADER_WINDOW])}")
    pdf = pdfium.PdfDocument.new()
    try:
        with Image.open(io.BytesIO(data)) as image:
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index >= max_pages:
                    raise BadDocument(doc_label, f"image has more than {max_pages} frames")
                if frame.width * frame.height > MAX_IMAGE_PIXELS:
                    raise BadDocument(doc_label, f"image frame {index + 1} is {frame.width}x{frame.height} pixels, too large")
                dpi = _page_dpi(frame)
                width, height = frame.width * 72 / dpi, frame.height * 72 / dpi
                if kind == "jpeg" and frame.getexif().get(0x0112, 1) in (1, None):
                    obj = pdfium.PdfImage.new(pdf)
                    obj.load_jpeg(io.BytesIO(data), inline=True)  # the original JPEG stream, not re-encoded
                else:
                    upright = ImageOps.exif_transpose(frame) if kind == "jpeg" else frame
                    width, height = (height, width) if upright.size != frame.size else (width, height)
                    obj = pdfium.PdfImage.new(pdf)
                    obj.set_bitmap(pdfium.PdfBitmap.from_pil(_for_pdfium(upright)))
                page = pdf.new_page(width, height)
                obj.set_matrix(pdfium.PdfMatrix().scale(width, height))
                page.insert_obj(obj)
                page.gen_content()
                page.close()
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()
    except BadDocument:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, pdfium.PdfiumError) as exc:
        raise BadDocument(doc_label, f"unreadable {kind.upper()} image ({exc})") from exc
    finally:
        pdf.close()
