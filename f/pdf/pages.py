"""Split's page reader: text layer or OCR for each page, in a process pool, never on the event loop.

Workers open the document from a file path (a temporary file when the caller has bytes), so a task
carries a path and page numbers, never the PDF. Text-layer pages go in batches (they take
milliseconds); each OCR page is its own task. At most `window` tasks are in flight and results are
yielded in page order, so memory holds a few pages' results and, per worker, one page's render.

The pool forks. Windmill starts a job as `python -m wrapper`, and wrapper.py calls the script's
main() at its top level; a spawn or forkserver worker re-imports `__main__`, so it would run the job
again. Fork copies only the calling thread: make the pool before starting threads of your own.
Pass a process pool; PDFium is not thread-safe, so a thread pool must have a single thread.
"""

import asyncio
import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import aclosing, asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pypdfium2 as pdfium

from f.core.models import PageText
from f.pdf.ocr import DPI, ocr_page, single_threaded_tesseract
from f.pdf.text_layer import read_text_layer, text_layer_json

T = TypeVar("T")

TEXT_BATCH = 16  # text-layer pages per task: enough to make the pool's per-task cost negligible


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_pool(workers: int | None = None) -> ProcessPoolExecutor:
    """One process per core, each with single-threaded tesseract."""
    return ProcessPoolExecutor(
        max_workers=workers or cpu_count(),
        mp_context=multiprocessing.get_context("fork"),
        initializer=single_threaded_tesseract,
    )


class PageRecord(NamedTuple):
    """A page as split stores it: the PageText JSON, made in the worker, with the few fields the caller
    keeps. Passing this rather than a PageText saves a pydantic model per word on both sides of the pool
    and leaves the caller nothing to serialize: on a text-layer page those cost more than reading it."""

    page: int
    source: str
    text: str
    word_count: int
    avg_word_confidence: float
    json: str

    def header(self) -> PageText:
        """The page without its words (word_count and confidence kept), for what needs only those."""
        return PageText.model_construct(page=self.page, source=self.source, text=self.text, words=[],
                                        word_count=self.word_count, avg_word_confidence=self.avg_word_confidence)


def _page_record(page: pdfium.PdfPage, page_no: int, ocr: bool, dpi: int) -> PageRecord:
    if ocr:
        found = ocr_page(page, page_no, dpi=dpi)
        return PageRecord(page_no, found.source, found.text, found.word_count, found.avg_word_confidence,
                          found.model_dump_json())
    record, text, count = text_layer_json(page, page_no)
    return PageRecord(page_no, "text_layer", text, count, 1.0 if count else 0.0, record)


def _page_text(page: pdfium.PdfPage, page_no: int, ocr: bool, dpi: int) -> PageText:
    return ocr_page(page, page_no, dpi=dpi) if ocr else read_text_layer(page, page_no)


def _read_batch(path: str, pages: list[int], ocr: bool, dpi: int,
                read: Callable[[pdfium.PdfPage, int, bool, int], T]) -> list[T]:
    with pdfium.PdfDocument(path) as doc:
        results = []
        for page_no in pages:
            if not 1 <= page_no <= len(doc):
                raise ValueError(f"page {page_no} is out of range 1..{len(doc)}")
            page = doc[page_no - 1]
            try:
                results.append(read(page, page_no, ocr, dpi))
            finally:
                page.close()
        return results


def read_page_batch(path: str, pages: list[int], ocr: bool, dpi: int = DPI) -> list[PageText]:
    """Worker task: read the given pages of the PDF at path, by OCR or from the text layer."""
    return _read_batch(path, pages, ocr, dpi, _page_text)


def read_record_batch(path: str, pages: list[int], ocr: bool, dpi: int = DPI) -> list[PageRecord]:
    """Worker task: the given pages as PageRecords (their stored JSON made here, in the worker)."""
    return _read_batch(path, pages, ocr, dpi, _page_record)


def plan(pages: Iterable[int], ocr_pages: Collection[int], text_batch: int = TEXT_BATCH) -> list[tuple[list[int], bool]]:
    """Tasks in page order: each OCR page alone, runs of text-layer pages in batches."""
    tasks: list[tuple[list[int], bool]] = []
    for page_no in sorted(set(pages)):
        ocr = page_no in ocr_pages
        if not ocr and tasks and not tasks[-1][1] and len(tasks[-1][0]) < text_batch:
            tasks[-1][0].append(page_no)
        else:
            tasks.append(([page_no], ocr))
    return tasks


@asynccontextmanager
async def _as_path(source: Path | bytes) -> AsyncIterator[str]:
    if isinstance(source, Path):
        yield str(source.resolve())
        return

    def write() -> str:
        with tempfile.NamedTemporaryFile(prefix="pages-", suffix=".pdf", delete=False) as f:
            f.write(source)
            return f.name

    path = await asyncio.to_thread(write)
    try:
        yield path
    finally:
        os.unlink(path)  # workers still reading keep their open handle


async def read_pages(
    source: Path | bytes,
    pages: Iterable[int],
    ocr_pages: Collection[int],
    *,
    pool: Executor | None = None,
    dpi: int = DPI,
    window: int | None = None,
) -> AsyncIterator[PageText]:
    """Yield PageText for each page in ascending order: OCR for ocr_pages, the text layer otherwise.

    Pass a long-lived pool to share it between documents; without one, a pool is made and shut down.
    Close the generator early with contextlib.aclosing to cancel the work not yet started.
    """
    async with aclosing(_stream(read_page_batch, source, pages, ocr_pages, pool=pool, dpi=dpi, window=window)) as stream:
        async for page in stream:
            yield page


async def read_page_records(
    source: Path | bytes,
    pages: Iterable[int],
    ocr_pages: Collection[int],
    *,
    pool: Executor | None = None,
    dpi: int = DPI,
    window: int | None = None,
    ordered: bool = True,
) -> AsyncIterator[PageRecord]:
    """read_pages, yielding each page as its stored JSON (PageRecord): what split writes.

    `ordered=False` yields batches as they finish, and starts the OCR pages first: in page order, one slow
    OCR page at the head of the window holds back the finished pages behind it until every worker but one
    is idle, and an OCR page started last leaves the other workers idle at the end."""
    async with aclosing(_stream(read_record_batch, source, pages, ocr_pages, pool=pool, dpi=dpi,
                                window=window, ordered=ordered)) as stream:
        async for record in stream:
            yield record


async def _stream(
    work: Callable[..., list[Any]],
    source: Path | bytes,
    pages: Iterable[int],
    ocr_pages: Collection[int],
    *,
    pool: Executor | None,
    dpi: int,
    window: int | None,
    ordered: bool = True,
) -> AsyncIterator[Any]:
    own_pool = pool is None
    executor = make_pool() if pool is None else pool
    limit = window or 2 * cpu_count()
    loop = asyncio.get_running_loop()
    inflight: deque[asyncio.Future[list[Any]]] = deque()
    try:
        async with _as_path(source) as path:
            planned = plan(pages, ocr_pages)
            if not ordered:
                planned.sort(key=lambda task: not task[1])  # OCR first (stable: page order within each kind)
            tasks = iter(planned)

            def submit() -> None:
                task = next(tasks, None)
                if task is not None:
                    inflight.append(loop.run_in_executor(executor, work, path, *task, dpi))

            for _ in range(limit):
                submit()
            while inflight:
                if ordered:
                    batch = await inflight.popleft()
                else:
                    await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                    done = next(f for f in inflight if f.done())
                    inflight.remove(done)
                    batch = done.result()
                submit()
                for page_text in batch:
                    yield page_text
    finally:
        for future in inflight:
            future.cancel()
        if own_pool:
            executor.shutdown(wait=True, cancel_futures=True)


async def read_all_pages(
    source: Path | bytes, pages: Iterable[int], ocr_pages: Collection[int], **kwargs
) -> list[PageText]:
    """read_pages, collected."""
    return [page async for page in read_pages(source, pages, ocr_pages, **kwargs)]
