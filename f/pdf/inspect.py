"""Ingest's check of a PDF: is it one we can read, how many pages, and which pages have a text layer.

Nothing is rendered. Each page is loaded and its text layer counted: measured at 400 (dense, on a
busy machine) to 6,000 (light) pages/s, so even a 2,000-page document takes seconds at most.

Plain images are not PDFs: `f.pdf.images.image_to_pdf` turns them into one first (ingest does
`sniff`, converts, then inspects), so the message for a PNG renamed to .pdf says just that.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from f.core.models import PageInfo
from f.pdf.errors import BadDocument
from f.pdf.images import MAX_IMAGE_PIXELS, PDF_HEADER_WINDOW, describe, sniff

MIN_TEXT_CHARS = 20  # non-space characters that make a page's text layer worth using
STAMP_CHARS = 200  # fewer characters over a page-sized image: a scan under a stamp (Bates number, legend)
SCAN_COVERAGE = 0.5  # share of the page one image must cover to count as a scan
MIN_PAGE_PT = 3.0  # the smallest page the PDF spec allows (ISO 32000-1, annex C)
MAX_PAGE_PT = 14_400.0  # the largest: 200 inches
MAX_PAGES = 2000  # the documented limit: longer documents are refused at ingest (split them first)
_JS_NAME = re.compile(rb"/JavaScript(?=[\s/<>\[\]()%]|$)")  # the action type (/S /JavaScript) or name tree key
_SCAN_BLOCK = 1 << 20

_LOAD_ERRORS = {
    pdfium_c.FPDF_ERR_FILE: "the file cannot be opened",
    pdfium_c.FPDF_ERR_FORMAT: "corrupt or truncated (PDFium cannot parse it)",
    pdfium_c.FPDF_ERR_PASSWORD: "password-protected (encrypted with a user password)",
    pdfium_c.FPDF_ERR_SECURITY: "uses an unsupported security handler",
    pdfium_c.FPDF_ERR_PAGE: "has a damaged page tree",
}


@dataclass(frozen=True)
class PdfInspection:
    pages: int
    page_info: list[PageInfo]

    @property
    def ocr_pages(self) -> set[int]:
        """The pages without a usable text layer: these need OCR."""
        return {info.page for info in self.page_info if not info.has_text_layer}


def _head_and_tail(data: bytes | Path) -> tuple[int, bytes, bytes]:
    if isinstance(data, Path):
        size = data.stat().st_size
        with data.open("rb") as f:
            head = f.read(PDF_HEADER_WINDOW)
            f.seek(max(0, size - PDF_HEADER_WINDOW))
            return size, head, f.read()
    return len(data), data[:PDF_HEADER_WINDOW], data[-PDF_HEADER_WINDOW:]


def _load_failure(data: bytes | Path, error: pdfium.PdfiumError, tail: bytes) -> str:
    """Why PDFium refused the document, in words."""
    if _has_zero_pages(data):  # first: PDFium reports no error of its own then, so err_code is stale
        return "has zero pages"
    reason = _LOAD_ERRORS.get(error.err_code or -1, f"cannot be opened ({error})")
    if error.err_code == pdfium_c.FPDF_ERR_FORMAT and b"%%EOF" not in tail:
        reason = "truncated or corrupt (no %%EOF marker at the end, and PDFium cannot parse it)"
    return reason


def _has_zero_pages(data: bytes | Path) -> bool:
    """pypdfium2 refuses a document with no pages; open it raw to tell that apart from corruption."""
    if isinstance(data, Path):
        handle = pdfium_c.FPDF_LoadDocument(str(data).encode() + b"\0", None)
    else:
        handle = pdfium_c.FPDF_LoadMemDocument64(data, len(data), None)
    if not handle:
        return False
    try:
        return pdfium_c.FPDF_GetPageCount(handle) == 0
    finally:
        pdfium_c.FPDF_CloseDocument(handle)


def _has_javascript(doc: pdfium.PdfDocument, data: bytes | Path) -> bool:
    """Document-level scripts (PDFium's name tree), or a /JavaScript action anywhere in the file's
    uncompressed objects (open actions, links, form fields). Scripts hidden inside compressed object streams
    are not seen here; nothing in the pipeline runs them either (PDFium's form and JS engine is never started)."""
    if pdfium_c.FPDFDoc_GetJavaScriptActionCount(doc) > 0:
        return True
    if isinstance(data, bytes):
        return _JS_NAME.search(data) is not None
    with data.open("rb") as f:
        carry = b""
        while block := f.read(_SCAN_BLOCK):
            if _JS_NAME.search(carry + block):
                return True
            carry = block[-16:]
    return False


def _check_content(doc: pdfium.PdfDocument, data: bytes | Path, doc_label: str) -> None:
    """Refuse active content and attachments: scripts are never run, and attached files would go unread."""
    attachments = doc.count_attachments()
    if attachments:
        raise BadDocument(doc_label, f"has {attachments} embedded file(s) (attachments), which would not be read; "
                                     "extract them and upload each as its own document")
    if _has_javascript(doc, data):
        raise BadDocument(doc_label, "contains JavaScript (active content), which is refused; "
                                     "print it to a new PDF and upload that")


def _check_images(page: pdfium.PdfPage, page_no: int, doc_label: str) -> None:
    """Refuse an image that would decode to more pixels than MAX_IMAGE_PIXELS (a decompression bomb): its
    declared size is read without decoding it."""
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
        try:
            width, height = obj.get_px_size()
        except pdfium.PdfiumError:
            continue
        if width * height > MAX_IMAGE_PIXELS:
            raise BadDocument(doc_label, f"page {page_no} has an image of {width} x {height} pixels, over the limit of "
                                         f"{MAX_IMAGE_PIXELS:,} pixels (a decompression bomb?)")


def _non_space_chars(page: pdfium.PdfPage) -> int:
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
    finally:
        textpage.close()
    return sum(not c.isspace() for c in text)


def _scan_coverage(page: pdfium.PdfPage) -> float:
    """The share of the page covered by its largest top-level image or form (where a scan sits)."""
    left, bottom, right, top = page.get_bbox()
    area = max((right - left) * (top - bottom), 1.0)
    largest = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM], max_depth=0):
        l, b, r, t = obj.get_bounds()
        overlap = max(0.0, min(r, right) - max(l, left)) * max(0.0, min(t, top) - max(b, bottom))
        largest = max(largest, overlap / area)
    return largest


def _has_text_layer(page: pdfium.PdfPage, chars: int, min_chars: int) -> bool:
    """Enough text, and not just a stamp over a scanned page (productions carry digital Bates numbers)."""
    if chars < min_chars:
        return False
    return chars >= STAMP_CHARS or _scan_coverage(page) < SCAN_COVERAGE


def inspect_pdf(
    data: bytes | Path,
    *,
    doc_label: str,
    max_pages: int = MAX_PAGES,
    max_page_pt: float = MAX_PAGE_PT,
    min_page_pt: float = MIN_PAGE_PT,
    min_text_chars: int = MIN_TEXT_CHARS,
) -> PdfInspection:
    """Check that data is a readable PDF within bounds and describe its pages; BadDocument otherwise.

    Refused (BadDocument naming the reason): empty, not a PDF, unparsable, password-protected, zero pages,
    over max_pages, a page outside the size bounds, an image over MAX_IMAGE_PIXELS, JavaScript, attachments.

    A page has a text layer when it holds at least min_text_chars non-space characters (PageInfo.chars
    counts those), unless those are fewer than STAMP_CHARS over an image covering most of the page:
    a scan with a digital stamp needs OCR. A scan with an OCR text layer (many characters) keeps its
    text layer. Page sizes are as displayed, so after the page's /Rotate.
    """
    size, head, tail = _head_and_tail(data)
    if size == 0:
        raise BadDocument(doc_label, "is empty (0 bytes)")
    if sniff(head) != "pdf":
        raise BadDocument(doc_label, f"is not a PDF: no %PDF- header; it looks like {describe(head)}")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise BadDocument(doc_label, _load_failure(data, exc, tail)) from exc
    with doc:
        pages = len(doc)
        if pages > max_pages:
            raise BadDocument(doc_label, f"has {pages} pages, more than the limit of {max_pages}")
        _check_content(doc, data, doc_label)
        info: list[PageInfo] = []
        for index in range(pages):
            try:
                page = doc[index]
            except pdfium.PdfiumError as exc:
                raise BadDocument(doc_label, f"page {index + 1} cannot be loaded (damaged or truncated)") from exc
            try:
                width, height = page.get_size()
                if not (min_page_pt <= min(width, height) and max(width, height) <= max_page_pt):
                    raise BadDocument(
                        doc_label,
                        f"page {index + 1} is {width:.0f} x {height:.0f} pt, outside {min_page_pt:g}-{max_page_pt:g} pt",
                    )
                _check_images(page, index + 1, doc_label)
                chars = _non_space_chars(page)
                has_text_layer = _has_text_layer(page, chars, min_text_chars)
            finally:
                page.close()
            info.append(
                PageInfo(
                    page=index + 1,
                    has_text_layer=has_text_layer,
                    chars=chars,
                    width_pt=round(width, 2),
                    height_pt=round(height, 2),
                )
            )
    return PdfInspection(pages=pages, page_info=info)
