"""Split: per-page text with word boxes (OCR only where there is no text layer), then overlapping chunks.

Pages are streamed: each is written as soon as it is read, and only its text and word statistics stay in
memory. A crashed split resumes at the first page not yet written. A chunk's id carries the hash of its
content, so re-chunking with other settings never collides with earlier chunks or their cached calls.
"""

import asyncio
import tempfile
from collections.abc import Awaitable
from pathlib import Path

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import ChunkPlan, ChunkRef, Manifest, PageConfidence, PageIndex, PageText
from f.core.progress import Progress
from f.core.storage import BlobStore, NotFound
from f.extraction.doctype import DOCTYPE_VERSION, guess_document_type
from f.extraction.chunking import plan_chunks
from f.extraction.score import page_confidence, word_confidence
from f.pdf.pages import read_page_records

IO_LIMIT = 16


class SplitSummary(BaseModel):
    doc_id: str
    pages: int
    ocr_pages: int
    chunks: int
    batches: list[int]
    avg_word_confidence: float
    low_confidence_pages: list[int]
    skipped: bool


class PageTexts:
    """Text and word statistics of every page, gathered while the page records are written or read."""

    def __init__(self) -> None:
        self.text: dict[int, str] = {}
        self.stats: dict[int, PageConfidence] = {}

    def add(self, page: PageText) -> None:
        self.text[page.page] = page.text
        self.stats[page.page] = page_confidence(page)


class WriteWindow:
    """At most `limit` writes in flight; a failed write fails the stage."""

    def __init__(self, limit: int = IO_LIMIT) -> None:
        self.limit = limit
        self.pending: set[asyncio.Future[object]] = set()

    async def add(self, write: Awaitable[object]) -> None:
        self.pending.add(asyncio.ensure_future(write))
        if len(self.pending) >= self.limit:
            done, self.pending = await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()

    async def drain(self) -> None:
        await asyncio.gather(*self.pending)
        self.pending = set()


async def _read_written(store: BlobStore, doc: DocPaths, numbers: list[int], into: PageTexts) -> None:
    gate = asyncio.Semaphore(IO_LIMIT)

    async def one(n: int) -> None:
        async with gate:
            into.add(await store.read_model(doc.page(n), PageText))

    await asyncio.gather(*(one(n) for n in numbers))


async def gather_pages(store: BlobStore, doc: DocPaths, manifest: Manifest) -> PageTexts:
    """Write every page record that is not there yet, read back the others, and write the page index."""
    written = set(await store.list_names(f"{doc.prefix}pages/"))
    numbers = range(1, manifest.pages + 1)
    todo = [n for n in numbers if doc.page(n) not in written]
    pages = PageTexts()
    await _read_written(store, doc, [n for n in numbers if doc.page(n) in written], pages)
    if todo:
        ocr = {p.page for p in manifest.page_info if not p.has_text_layer}
        progress = Progress(f"split {doc.doc_id}", len(todo))
        window = WriteWindow()
        with tempfile.NamedTemporaryFile(suffix=".pdf") as tmp:
            await store.download_to(manifest.pdf_path, tmp)
            tmp.flush()
            async for record in read_page_records(Path(tmp.name), todo, ocr & set(todo), ordered=False):
                pages.add(record.header())
                progress.advance()
                await window.add(store.create(doc.page(record.page), record.json))
        await window.drain()
    index = PageIndex(doc_id=doc.doc_id, pages=[pages.stats[n] for n in numbers])
    await store.put_model(doc.page_index, index)
    return pages


MAX_BATCHES = 32  # extract jobs per document: bounds the for-loop's list of results and the job start-ups


def batch_size_for(chunks: int, requested: int) -> int:
    """The requested chunks per job, raised when a long document would otherwise need over MAX_BATCHES jobs."""
    return max(requested, -(-chunks // MAX_BATCHES))


def _same_settings(plan: ChunkPlan, chunk_pages: int, overlap_chars: int, batch_size: int) -> bool:
    return ((plan.chunk_pages, plan.overlap_chars, plan.batch_size)
            == (chunk_pages, overlap_chars, batch_size_for(len(plan.chunks), batch_size)))


async def split(store: BlobStore, doc: DocPaths, *, chunk_pages: int, overlap_chars: int,
                batch_size: int) -> SplitSummary:
    manifest = await store.read_model(doc.manifest, Manifest)
    try:
        plan = await store.read_model(doc.chunk_plan, ChunkPlan)
        index = await store.read_model(doc.page_index, PageIndex)
        skipped = _same_settings(plan, chunk_pages, overlap_chars, batch_size)
        if skipped and plan.type_hint_version != DOCTYPE_VERSION and manifest.pages:  # older rules, or none
            first = await store.read_model(doc.page(1), PageText)
            plan = plan.model_copy(update={"type_hint": guess_document_type(first.text),
                                           "type_hint_version": DOCTYPE_VERSION})
            await store.put_model(doc.chunk_plan, plan)
    except NotFound:
        skipped = False
    if not skipped:
        pages = await gather_pages(store, doc, manifest)
        chunks = plan_chunks(pages.text, chunk_pages, overlap_chars)
        window = WriteWindow()
        for chunk in chunks:
            await window.add(store.create_model(doc.chunk(chunk.chunk_id), chunk))
        await window.drain()
        plan = ChunkPlan(doc_id=doc.doc_id, chunk_pages=chunk_pages, overlap_chars=overlap_chars,
                         batch_size=batch_size_for(len(chunks), batch_size),
                         type_hint=guess_document_type(pages.text.get(1, "")), type_hint_version=DOCTYPE_VERSION,
                         chunks=[ChunkRef(chunk_id=c.chunk_id, pages=c.pages, content_hash=c.content_hash)
                                 for c in chunks])
        await store.put_model(doc.chunk_plan, plan)
        index = PageIndex(doc_id=doc.doc_id, pages=[pages.stats[n] for n in sorted(pages.stats)])
    words = word_confidence(sorted(index.pages, key=lambda p: p.page))
    return SplitSummary(
        doc_id=doc.doc_id, pages=manifest.pages, ocr_pages=sum(p.source == "ocr" for p in index.pages),
        chunks=len(plan.chunks), batches=list(range(plan.batch_count)),
        avg_word_confidence=words.document, low_confidence_pages=words.low_pages[:50], skipped=skipped,
    )
