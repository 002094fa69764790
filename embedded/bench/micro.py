"""Side-by-side measurements that need no services: the page reader against bare loops, and job start-up."""

import asyncio
import json
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium

from embedded.azurite import ROOT
from f.pdf.ocr import DPI, single_threaded_tesseract
from f.pdf.pages import cpu_count, read_page_records

_WORD = re.compile(r"\S+")


# ------------------------------------------------------------------ text layer


def bare_text(path: Path, pages: list[int]) -> int:
    """pypdfium2's text of each page, nothing else: the least any text extraction can do."""
    chars = 0
    with pdfium.PdfDocument(str(path)) as doc:
        for n in pages:
            page = doc[n - 1]
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
    return chars


def bare_words(path: Path, pages: list[int]) -> int:
    """The same records as split's, written the plain way in one process: the page's text, a box per word from
    its first and last glyph (pypdfium2's helpers, loose boxes, top-left origin, two decimals), and the record as
    JSON, which is what split stores. Returns the bytes made."""
    made = 0
    with pdfium.PdfDocument(str(path)) as doc:
        for n in pages:
            page = doc[n - 1]
            left, _, _, top = page.get_bbox()
            textpage = page.get_textpage()
            text = textpage.get_text_range()
            words = []
            for m in _WORD.finditer(text):
                l0, b0, r0, t0 = textpage.get_charbox(m.start(), loose=True)
                l1, b1, r1, t1 = textpage.get_charbox(m.end() - 1, loose=True)
                box = [round(min(l0, l1) - left, 2), round(top - max(t0, t1), 2), round(max(r0, r1) - left, 2),
                       round(top - min(b0, b1), 2)]
                words.append({"text": m.group(), "conf": 1.0, "bbox": box})
            made += len(json.dumps({"page": n, "source": "text_layer", "text": text, "words": words,
                                    "word_count": len(words), "avg_word_confidence": 1.0 if words else 0.0},
                                   ensure_ascii=False))
            textpage.close()
            page.close()
    return made


async def _ours(path: Path, pages: list[int], ocr: set[int]) -> int:
    count = 0
    async for _ in read_page_records(path, pages, ocr, ordered=False):  # as split reads: its own pool, made here
        count += 1
    return count


def ours(path: Path, pages: list[int], ocr: set[int] | None = None) -> int:
    return asyncio.run(_ours(path, pages, ocr or set()))


@dataclass
class Rate:
    pages: int
    seconds: float
    cpu_s: float  # of this process and the child processes it waited for (a pool's workers, tesseract)

    @property
    def per_s(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn: Callable[[], object], pages: int) -> Rate:
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    return Rate(pages, time.perf_counter() - t0, _cpu() - c0)


def _best(runs: dict[str, Callable[[], object]], pages: int, rounds: int) -> dict[str, Rate]:
    """Best of `rounds` for each, interleaved and in alternating order, so that a burst of load from elsewhere
    hits all alike."""
    found: dict[str, list[Rate]] = {k: [] for k in runs}
    for i in range(rounds):
        for name in (list(runs) if i % 2 == 0 else list(reversed(runs))):
            found[name].append(_timed(runs[name], pages))
    return {k: max(v, key=lambda r: r.per_s) for k, v in found.items()}


def text_rates(path: Path, pages: list[int], rounds: int = 3) -> dict[str, Rate]:
    return _best({"bare_text": lambda: bare_text(path, pages), "bare_words": lambda: bare_words(path, pages),
                  "ours": lambda: ours(path, pages)}, len(pages), rounds)


# ------------------------------------------------------------------ OCR


def _bare_ocr_page(path: str, page_no: int) -> int:
    """Render the page as split does (grayscale, 300 dpi) and hand it to the tesseract binary on stdin as an
    uncompressed PGM, TSV out: the engine and nothing around it."""
    with pdfium.PdfDocument(path) as doc:
        page = doc[page_no - 1]
        image = page.render(scale=DPI / 72, grayscale=True).to_pil()
        page.close()
    header = f"P5 {image.width} {image.height} 255\n".encode()
    out = subprocess.run(["tesseract", "stdin", "stdout", "--dpi", str(DPI), "-l", "eng", "tsv"],
                         input=header + image.tobytes(), capture_output=True, check=True,
                         env={**os.environ, "OMP_THREAD_LIMIT": "1"})
    return len(out.stdout)


def bare_ocr(path: Path, pages: list[int], workers: int) -> None:
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=single_threaded_tesseract) as pool:
        list(pool.map(_bare_ocr_page, [str(path)] * len(pages), pages))


def ocr_rates(path: Path, pages: list[int], rounds: int = 2) -> dict[str, Rate]:
    return _best({"bare": lambda: bare_ocr(path, pages, cpu_count()), "ours": lambda: ours(path, pages, set(pages))},
                 len(pages), rounds)


# ------------------------------------------------------------------ process start and imports


def spawn_seconds(code: str, repeat: int = 5) -> float:
    """Median wall time of `python -c code` in a fresh process, with the workspace on the path as in a job."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def import_seconds(modules: list[str], repeat: int = 3) -> dict[str, float]:
    """Median time to start Python and import each module, interleaved with a bare start (key "")."""
    out: dict[str, list[float]] = {m: [] for m in ["", *modules]}
    for _ in range(repeat):
        for m in out:
            out[m].append(spawn_seconds(f"import {m}" if m else "pass", repeat=1))
    return {m: statistics.median(v) for m, v in out.items()}
