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
from collections.abc import AsyncIterator, Collection, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pypdfium2 as pdfium

from f.core.models import PageText
from f.pdf.ocr import DPI, ocr_page, single_threaded_tesseract
from f.pdf.text_layer import read_text_layer

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


def read_page_batch(path: str, pages: list[int], ocr: bool, dpi: int = DPI) -> list[PageText]:
    """Worker task: read the given pages of the PDF at path, by OCR or from the text layer."""
    with pdfium.PdfDocument(path) as doc:
        results = []
        for page_no in pages:
            if not 1 <= page_no <= len(doc):
                raise ValueError(f"page {page_no} is out of range 1..{len(doc)}")
            page = doc[page_no - 1]
            try:
                results.append(ocr_page(page, page_no, dpi=dpi) if ocr else read_text_layer(page, page_no))
            finally:
                page.close()
        return results


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
    own_pool = pool is None
    executor = make_pool() if pool is None else pool
    limit = window or 2 * cpu_count()
    loop = asyncio.get_running_loop()
    inflight: deque[asyncio.Future[list[PageText]]] = deque()
    try:
        async with _as_path(source) as path:
            tasks = iter(plan(pages, ocr_pages))

            def submit() -> None:
                task = next(tasks, None)
                if task is not None:
                    inflight.append(loop.run_in_executor(executor, read_page_batch, path, *task, dpi))

            for _ in range(limit):
                submit()
            while inflight:
                batch = await inflight.popleft()
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
