import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from pathlib import Path

import pytest
from pdf_factory import PARAGRAPH, mixed_pdf, text_pdf, word_recall

from f.pdf import pages as pages_mod
from f.pdf.inspect import inspect_pdf
from f.pdf.pages import make_pool, plan, read_all_pages, read_pages


@pytest.fixture(scope="module")
def pool():
    executor = make_pool(2)
    yield executor
    executor.shutdown()


def test_plan_batches_text_pages_and_isolates_ocr_pages() -> None:
    tasks = plan([5, 1, 2, 3, 4, 6, 7, 3], {3, 6}, text_batch=2)
    assert tasks == [([1, 2], False), ([3], True), ([4, 5], False), ([6], True), ([7], False)]


async def test_mixed_document_in_page_order(pool) -> None:
    data = mixed_pdf("tstst")
    inspection = inspect_pdf(data, doc_label="mixed")
    result = await read_all_pages(data, range(1, 6), inspection.ocr_pages, pool=pool)
    assert [p.page for p in result] == [1, 2, 3, 4, 5]
    assert [p.source for p in result] == ["text_layer", "ocr", "text_layer", "ocr", "text_layer"]
    for page in result:
        assert page.word_count == len(page.words) > 40
        assert word_recall(PARAGRAPH.split(), page.text.split()) >= 0.95
        if page.source == "text_layer":
            assert page.avg_word_confidence == 1.0 and page.text.startswith(f"Page {page.page}.")
        else:
            assert 0.8 <= page.avg_word_confidence < 1.0


async def test_reads_a_subset_from_a_path(pool, tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(mixed_pdf("ttst"))
    result = await read_all_pages(path, [4, 2], set(), pool=pool)
    assert [(p.page, p.source) for p in result] == [(2, "text_layer"), (4, "text_layer")]
    assert path.exists()


async def test_scanned_page_read_from_its_text_layer_has_no_words(pool) -> None:
    [page] = await read_all_pages(mixed_pdf("s"), [1], set(), pool=pool)
    assert (page.source, page.word_count, page.avg_word_confidence) == ("text_layer", 0, 0.0)


async def test_bad_page_number_raises(pool) -> None:
    with pytest.raises(ValueError, match="page 9 is out of range 1..2"):
        await read_all_pages(text_pdf(["a", "b"]), [1, 9], set(), pool=pool)


async def test_ocr_does_not_block_the_event_loop(pool) -> None:
    """Four scanned pages OCR'd in the pool while a 10 ms ticker keeps running on the loop."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    result = await read_all_pages(mixed_pdf("ssss"), range(1, 5), {1, 2, 3, 4}, pool=pool)
    elapsed = time.perf_counter() - started
    stop.set()
    await ticking
    print(f"\n4 OCR pages on 2 workers: {elapsed:.2f} s ({elapsed / 4:.2f} s/page), max loop gap {max(gaps) * 1000:.0f} ms")
    assert [p.source for p in result] == ["ocr"] * 4
    assert len(gaps) >= elapsed / 0.01 * 0.5  # the loop ran the ticker throughout
    # OCR on the loop would stall it for a whole page's OCR; scheduling noise on a busy machine stays far below.
    assert max(gaps) < elapsed / 4 / 2


async def test_work_runs_in_other_processes(pool) -> None:
    seen = await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(pool, os.getpid) for _ in range(8)))
    assert os.getpid() not in seen
    assert await asyncio.get_running_loop().run_in_executor(pool, os.getenv, "OMP_THREAD_LIMIT") == "1"


async def test_bytes_source_goes_to_a_temporary_file_that_is_removed(monkeypatch) -> None:
    paths: list[str] = []
    real = pages_mod.read_page_batch

    def spy(path, *args):
        paths.append(path)
        return real(path, *args)

    monkeypatch.setattr(pages_mod, "read_page_batch", spy)  # a thread pool runs the spy; a process pool cannot pickle it
    with ThreadPoolExecutor(1) as threads:
        await read_all_pages(text_pdf([PARAGRAPH]), [1], set(), pool=threads)
    assert paths and paths[0].startswith(tempfile.gettempdir()) and not Path(paths[0]).exists()


async def test_closing_early_cancels_the_rest(pool) -> None:
    data = text_pdf([PARAGRAPH] * 64)
    async with aclosing(read_pages(data, range(1, 65), set(), pool=pool, window=2)) as stream:
        async for page in stream:
            assert page.page == 1
            break
    assert [p.page for p in await read_all_pages(data, [64], set(), pool=pool)] == [64]


async def test_own_pool_is_made_and_shut_down() -> None:
    result = await read_all_pages(text_pdf([PARAGRAPH, PARAGRAPH]), [1, 2], set())
    assert [p.page for p in result] == [1, 2]


async def test_two_hundred_text_pages_are_fast(pool) -> None:
    data = text_pdf([f"Page {n}. " + PARAGRAPH * 8 for n in range(1, 201)], font_size=9)
    started = time.perf_counter()
    inspection = inspect_pdf(data, doc_label="long")
    inspected = time.perf_counter()
    result = await read_all_pages(data, range(1, 201), inspection.ocr_pages, pool=pool)
    done = time.perf_counter()
    words = sum(p.word_count for p in result)
    print(
        f"\n200 text pages ({words // 200} words/page): inspect {200 / (inspected - started):.0f} pages/s, "
        f"text + words {200 / (done - inspected):.0f} pages/s on 2 workers"
    )
    assert [p.page for p in result] == list(range(1, 201)) and inspection.ocr_pages == set()
    assert all(p.source == "text_layer" and p.text.startswith(f"Page {p.page}.") for p in result)
    assert done - started < 15.0  # ~1 s on an idle 2-core machine; OCR of every page would take ~50 s
