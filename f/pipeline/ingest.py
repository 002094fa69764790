"""Ingest: register a source blob. Validate it, hash it, count pages, find the text layer, write the manifest."""

import asyncio
import hashlib
import tempfile
from pathlib import Path

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import Manifest
from f.core.links import Linked, link_fields
from f.core.storage import BlobStore, NotFound
from f.pdf.errors import BadDocument
from f.pdf.images import IMAGE_KINDS, image_to_pdf, sniff
from f.pdf.inspect import inspect_pdf
from f.pipeline.sources import source_name

STAGE_VERSION = "ingest-v1"
MAX_SOURCE_BYTES = 2 * 1024**3


class IngestSummary(Linked):
    doc_id: str
    source_name: str
    pages: int
    text_pages: int
    scanned_pages: list[int]
    sha256: str
    manifest: str
    skipped: bool


def summarize(store: BlobStore, manifest: Manifest, doc: DocPaths, skipped: bool) -> IngestSummary:
    return IngestSummary(
        **link_fields(store, doc.source),
        doc_id=manifest.doc_id, source_name=manifest.source_name, pages=manifest.pages,
        text_pages=sum(p.has_text_layer for p in manifest.page_info),
        scanned_pages=[p.page for p in manifest.page_info if not p.has_text_layer][:200],
        sha256=manifest.sha256, manifest=doc.manifest, skipped=skipped,
    )


def _hash_file(path: Path) -> tuple[str, int, bytes]:
    """sha256, size and the first KiB (to tell the file type)."""
    digest, size, head = hashlib.sha256(), 0, b""
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            head = head or block[:1024]
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size, head


async def ingest(store: BlobStore, doc: DocPaths) -> IngestSummary:
    try:
        return summarize(store, await store.read_model(doc.manifest, Manifest), doc, skipped=True)
    except NotFound:
        pass
    if not await store.exists(doc.source):
        raise BadDocument(doc.doc_id, f"no source blob at {doc.source}")
    name = await source_name(store, doc)
    with tempfile.NamedTemporaryFile(suffix=".pdf") as tmp:
        await store.download_to(doc.source, tmp)
        tmp.flush()
        sha256, size, head = await asyncio.to_thread(_hash_file, Path(tmp.name))
        if size > MAX_SOURCE_BYTES:
            raise BadDocument(name, f"{size} bytes is over the {MAX_SOURCE_BYTES} byte limit")
        kind = sniff(head) or "pdf"
        pdf_path = doc.source
        if kind in IMAGE_KINDS:
            converted = await asyncio.to_thread(image_to_pdf, Path(tmp.name).read_bytes(), doc_label=name)
            await store.create(doc.converted, converted)
            info = await asyncio.to_thread(inspect_pdf, converted, doc_label=name)
            pdf_path = doc.converted
        else:
            info = await asyncio.to_thread(inspect_pdf, Path(tmp.name), doc_label=name)
    manifest = Manifest(
        matter_id=doc.matter_id, doc_id=doc.doc_id, source_name=name, source_path=doc.source, pdf_path=pdf_path,
        source_kind=kind, sha256=sha256, size_bytes=size, pages=info.pages, page_info=info.page_info,
        stage_version=STAGE_VERSION,
    )
    if not await store.create_model(doc.manifest, manifest):
        manifest = await store.read_model(doc.manifest, Manifest)
    return summarize(store, manifest, doc, skipped=False)
