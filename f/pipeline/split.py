"""Split: per-page text with word boxes (OCR only where there is no text layer), then overlapping chunks."""

import asyncio
import tempfile
from pathlib import Path

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import ChunkPlan, ChunkRef, Manifest, PageText
from f.core.progress import Progress
from f.core.storage import BlobStore, NotFound
from f.extraction.chunking import plan_chunks
from f.extraction.score import word_confidence
from f.pdf.pages import read_pages


class SplitSummary(BaseModel):
    doc_id: str
    pages: int
    ocr_pages: int
    chunks: int
    batches: list[int]
    avg_word_confidence: float
    low_confidence_pages: list[int]
    skipped: bool


async def _missing_pages(store: BlobStore, doc: DocPaths, pages: int) -> list[int]:
    done = set(await store.list_names(f"{doc.prefix}pages/"))
    return [n for n in range(1, pages + 1) if doc.page(n) not in done]


async def write_pages(store: BlobStore, doc: DocPaths, manifest: Manifest) -> None:
    """Write every page record that is not there yet: a crashed split resumes where it stopped."""
    todo = await _missing_pages(store, doc, manifest.pages)
    if not todo:
        return
    ocr = {p.page for p in manifest.page_info if not p.has_text_layer}
    progress = Progress(f"split {doc.doc_id}", len(todo))
    with tempfile.NamedTemporaryFile(suffix=".pdf") as tmp:
        await store.download_to(manifest.pdf_path, tmp)
        tmp.flush()
        writes: set[asyncio.Task[bool]] = set()
        async for page in read_pages(Path(tmp.name), todo, ocr & set(todo)):
            writes.add(asyncio.create_task(store.create_model(doc.page(page.page), page)))
            if len(writes) >= 16:
                done, writes = await asyncio.wait(writes, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            progress.advance()
        await asyncio.gather(*writes)


async def read_all_pages(store: BlobStore, doc: DocPaths, pages: int, limit: int = 16) -> list[PageText]:
    gate = asyncio.Semaphore(limit)

    async def one(n: int) -> PageText:
        async with gate:
            return await store.read_model(doc.page(n), PageText)

    return list(await asyncio.gather(*(one(n) for n in range(1, pages + 1))))


async def split(store: BlobStore, doc: DocPaths, *, chunk_pages: int, overlap_chars: int,
                batch_size: int) -> SplitSummary:
    manifest = await store.read_model(doc.manifest, Manifest)
    try:
        plan = await store.read_model(doc.chunk_plan, ChunkPlan)
        skipped = True
    except NotFound:
        skipped = False
        await write_pages(store, doc, manifest)
    pages = await read_all_pages(store, doc, manifest.pages)
    if not skipped:
        chunks = plan_chunks({p.page: p.text for p in pages}, chunk_pages, overlap_chars)
        await asyncio.gather(*(store.create_model(doc.chunk(c.chunk_id), c) for c in chunks))
        plan = ChunkPlan(doc_id=doc.doc_id, chunk_pages=chunk_pages, overlap_chars=overlap_chars, batch_size=batch_size,
                         chunks=[ChunkRef(chunk_id=c.chunk_id, pages=c.pages, content_hash=c.content_hash)
                                 for c in chunks])
        if not await store.create_model(doc.chunk_plan, plan):
            plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    words = word_confidence(pages)
    return SplitSummary(
        doc_id=doc.doc_id, pages=manifest.pages, ocr_pages=sum(p.source == "ocr" for p in pages),
        chunks=len(plan.chunks), batches=list(range(plan.batch_count)),
        avg_word_confidence=words.document, low_confidence_pages=words.low_pages[:50], skipped=skipped,
    )
