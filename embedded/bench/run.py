"""The benchmark: every measure of issue 8 against its physical limit, side by side in one run."""

import asyncio
import contextlib
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedded.bench import docs, micro
from embedded.bench.flows import FAST_POOL, LOGS, Bench, FlowRun, PoolPlan, SimPool, services
from embedded.bench.procs import RssSampler
from f.pdf.pages import cpu_count

MB = 1024 * 1024
RESULT_LIMIT = 16 * 1024
STAGES = ("list_documents", "ingest", "split", "extract", "merge", "score", "rollup")
NON_LLM = ("f/matter/ingest", "f/matter/split", "f/matter/merge", "f/matter/score")


@dataclass(frozen=True)
class Sizes:
    """What each measure runs on; `quick` is for the test, which checks that the bench works, not the numbers."""

    text_doc: tuple[int, float] = (1000, 0.002)  # pages, share scanned: its text pages are read
    text_rounds: int = 3
    ocr_doc: tuple[int, float] = (12, 0.5)
    ocr_pages: int = 4
    ocr_rounds: int = 3
    e2e_doc: tuple[int, float] = (200, 0.02)
    matter_docs: int = 20
    matter_pages: int = 32
    small_doc: tuple[int, float] = (10, 0.2)  # 2 scanned pages: both pool workers OCR at once, as in the large one
    large_doc: tuple[int, float] = (1000, 0.002)
    large_batch_size: int = 64
    k: int = 3
    chunk_pages: int = 2
    overlap_chars: int = 400
    parallelism: int = 4  # the extract loop's and the documents loop's, in the flows
    import_repeat: int = 3


FULL = Sizes()
QUICK = Sizes(text_doc=(10, 0.1), text_rounds=1, ocr_doc=(10, 0.1), ocr_pages=1, ocr_rounds=1, e2e_doc=(16, 0.0), matter_docs=3,
              matter_pages=4, small_doc=(4, 0.0), large_doc=(16, 0.0), large_batch_size=4, import_repeat=1)


@dataclass
class Row:
    measure: str
    value: float | None
    baseline: float | None
    ratio: float | None
    target: str
    met: bool | None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, measure: str, value: float | None, baseline: float | None, ratio: float | None, target: str,
            met: bool | None) -> None:
        r = lambda x: None if x is None else round(float(x), 3)
        self.rows.append(Row(measure, r(value), r(baseline), r(ratio), target, met))


def note(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet(label: str):
    """The runner's progress lines go to a log file, not the terminal."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{label}.log", "w") as log, contextlib.redirect_stderr(log):
        yield


# ------------------------------------------------------------------ the measures


def measure_text(report: Report, s: Sizes) -> None:
    path = docs.long_contract(*s.text_doc)
    scanned = set(docs.scanned_pages(path))
    pages = [n for n in range(1, s.text_doc[0] + 1) if n not in scanned]
    note(f"text layer: {len(pages)} pages, our page reader against bare pypdfium2 loops")
    rates = micro.text_rates(path, pages, s.text_rounds)
    ours, words, text = rates["ours"].per_s, rates["bare_words"].per_s, rates["bare_text"].per_s
    report.add("page split + text extraction, pages/s: page reader vs bare pypdfium2 loop making the same records "
               "(text, word boxes, JSON), one process", ours, words, ours / words, ">= 0.9", ours / words >= 0.9)
    report.add("page split + text extraction, pages/s: page reader vs bare pypdfium2 text-only loop "
               "(get_text_range, no word boxes)", ours, text, ours / text, ">= 0.9", ours / text >= 0.9)
    cpu = {k: 1000 * v.cpu_s / v.pages for k, v in rates.items()}
    report.add("page split + text extraction, CPU ms per page: page reader (parent and workers) vs the bare loop "
               "making the same records", cpu["ours"], cpu["bare_words"], cpu["ours"] / cpu["bare_words"], "stated",
               None)
    report.details["text"] = {"pages": len(pages), "pool": cpu_count(), **{k: asdict(v) for k, v in rates.items()}}


def measure_ocr(report: Report, s: Sizes) -> None:
    path = docs.long_contract(*s.ocr_doc)
    pages = docs.scanned_pages(path)[:s.ocr_pages]
    note(f"OCR: {len(pages)} scanned pages, page reader against tesseract called bare, pool of {cpu_count()}")
    rates = micro.ocr_rates(path, pages, s.ocr_rounds)
    ours, bare = rates["ours"].per_s, rates["bare"].per_s
    report.add(f"OCR pages/s on scanned pages: page reader vs tesseract called bare, same pool ({cpu_count()})",
               ours, bare, ours / bare, ">= 0.9", ours / bare >= 0.9)
    cpu = {k: v.cpu_s / v.pages for k, v in rates.items()}
    report.add("OCR CPU s per page: page reader (parent, workers, tesseract) vs tesseract called bare",
               cpu["ours"], cpu["bare"], cpu["ours"] / cpu["bare"], "stated", None)
    report.details["ocr"] = {"pages": pages, **{k: asdict(v) for k, v in rates.items()}}


async def measure_e2e(report: Report, bench: Bench, s: Sizes) -> dict[str, Any]:
    """process_document on the e2e document; then the same without overlap and with k=1; then a cached re-run."""
    pages, share = s.e2e_doc
    path = docs.long_contract(pages, share)
    chunks = math.ceil(pages / s.chunk_pages)
    batch_size = min(64, math.ceil(chunks / s.parallelism))  # one extract job per parallel slot: the pool is the limit
    settings = {"k": s.k, "chunk_pages": s.chunk_pages, "overlap_chars": s.overlap_chars, "batch_size": batch_size}
    await bench.upload("M-BENCH-E2E", {"doc": path})
    note(f"process_document, {pages} pages ({len(docs.scanned_pages(path))} scanned), k={s.k}, "
         f"{chunks} chunks in batches of {batch_size}, pool capacity {bench.pool.plan.capacity:g} calls/s")
    with quiet("e2e"):
        run = await bench.document("M-BENCH-E2E", "doc", **settings)
    calls = run.llm.get("ok", 0)
    llm_s = calls / bench.pool.plan.capacity
    critical = sum(run.step_seconds(m) for m in NON_LLM)
    ideal = llm_s + critical
    report.add(f"end-to-end process_document, {pages} pages, s: measured vs ideal (LLM calls ÷ pool capacity "
               f"+ non-LLM critical path)", run.seconds, ideal, run.seconds / ideal, "<= 1.15", run.seconds / ideal <= 1.15)
    steps = {m.rsplit("/", 1)[-1]: round(run.step_seconds(m), 2) for m in (*NON_LLM[:2], "f/matter/extract", *NON_LLM[2:])}
    report.details["e2e"] = {"pages": pages, "settings": settings, "seconds": round(run.seconds, 2),
                             "ideal": round(ideal, 2), "llm_calls": calls, "llm_ideal_s": round(llm_s, 2),
                             "non_llm_critical_path_s": round(critical, 2), "steps_s": steps, "pool": run.llm,
                             "extract_jobs": len(run.steps("f/matter/extract"))}
    default_usage = await bench.usage("M-BENCH-E2E", "doc")

    note("the same document without overlap and with k=1 (pages reused, new chunks and calls)")
    with quiet("e2e-k1"):
        await bench.document("M-BENCH-E2E", "doc", k=1, chunk_pages=s.chunk_pages, overlap_chars=0,
                             batch_size=batch_size)
    base_usage = await bench.usage("M-BENCH-E2E", "doc")
    (c3, p3, o3), (c1, p1, o1) = default_usage, base_usage
    report.add(f"LLM calls per page: k={s.k}, overlap {s.overlap_chars} chars vs no overlap, k=1",
               c3 / pages, c1 / pages, c3 / c1 if c1 else None, "stated", None)
    report.add(f"LLM tokens per page: k={s.k}, overlap {s.overlap_chars} chars vs no overlap, k=1",
               (p3 + o3) / pages, (p1 + o1) / pages, (p3 + o3) / (p1 + o1) if p1 + o1 else None, "stated", None)
    per_call_overlap = (p3 / c3) / (p1 / c1) if c3 and c1 and p1 else None
    report.details["usage"] = {"default": {"calls": c3, "prompt_tokens": p3, "completion_tokens": o3},
                               "no_overlap_k1": {"calls": c1, "prompt_tokens": p1, "completion_tokens": o1},
                               "overlap_prompt_overhead_per_call": per_call_overlap and round(per_call_overlap, 3),
                               "k_overhead": round(c3 / c1, 3) if c1 else None}

    note("the same document again, twice, default settings, everything cached: each job's fixed cost")
    cached = []
    with quiet("e2e-cached"):
        for _ in range(2):
            cached.append(await bench.document("M-BENCH-E2E", "doc", **settings))
    return {"runs": [run, *cached], "cached": cached}


def _bound(seq: float, calls: int, capacity: float, cpu_s: float, longest: float,
           cores: float) -> tuple[float, dict[str, float]]:
    """The most a parallel run can gain over `seq`: it takes at least as long as the LLM calls at the pool's
    capacity, as its CPU work spread over `cores`, and as its longest document alone."""
    limits = {"llm_calls / capacity": calls / capacity, "cpu / cores": cpu_s / cores, "longest document": longest}
    return seq / max(limits.values()), limits


async def measure_matter(report: Report, bench: Bench, s: Sizes) -> list[FlowRun]:
    files = {f"d{i:02d}": docs.long_contract(s.matter_pages, 0.0, seed=100 + i) for i in range(s.matter_docs)}
    # One extract job per document: the documents already run in parallel, and each job costs a process start.
    batch_size = min(64, math.ceil(s.matter_pages / s.chunk_pages))
    settings = {"k": s.k, "chunk_pages": s.chunk_pages, "overlap_chars": s.overlap_chars, "batch_size": batch_size}
    await bench.upload("M-BENCH-PAR", files)
    await bench.upload("M-BENCH-SEQ", files)
    note(f"process_matter: {len(files)} documents of {s.matter_pages} pages, in parallel")
    with quiet("matter-parallel"):
        par = await bench.matter("M-BENCH-PAR", **settings)
    note("the same documents, process_document one after another")
    seq_runs = []
    with quiet("matter-sequential"):
        for doc_id in files:
            seq_runs.append(await bench.document("M-BENCH-SEQ", doc_id, **settings))
    seq = sum(r.seconds for r in seq_runs)
    calls = par.llm.get("ok", 0)
    longest = max(r.seconds for r in seq_runs)
    bound, limits = _bound(seq, calls, bench.pool.plan.capacity, par.cpu_s, longest, cpu_count())
    others = max(0.0, par.machine_cpu_s - par.cpu_s)  # CPU other processes on this machine took meanwhile
    left = max(0.1, cpu_count() - others / par.seconds)
    bound_left, _ = _bound(seq, calls, bench.pool.plan.capacity, par.cpu_s, longest, left)
    speedup = seq / par.seconds
    report.add(f"process_matter, {len(files)} documents, speed-up vs one after another (value: parallel s, "
               f"baseline: sequential s, ratio: speed-up)", par.seconds, seq, speedup,
               f"close to the bound {bound:.1f}x", speedup >= 0.8 * bound)
    report.details["matter"] = {"documents": len(files), "pages_each": s.matter_pages, "settings": settings,
                                "parallel_s": round(par.seconds, 2),
                                "sequential_s": round(seq, 2), "speedup": round(speedup, 2), "bound": round(bound, 2),
                                "limits_s": {k: round(v, 2) for k, v in limits.items()}, "llm_calls": calls,
                                "cpu_s_parallel": {k: round(v, 1) for k, v in par.cpu.items()},
                                "cpu_s_sequential": {k: round(sum(r.cpu[k] for r in seq_runs), 1) for k in par.cpu},
                                "jobs_parallel": sum(j.kind == "script" for j in par.jobs), "cores": cpu_count(),
                                "machine_cpu_s_parallel": round(par.machine_cpu_s, 1),
                                "cores_left_by_other_processes": round(left, 2),
                                "bound_with_cores_left": round(bound_left, 2)}

    note("process_matter again on the finished matter")
    stored = await bench.calls_stored("M-BENCH-PAR")
    with quiet("matter-rerun"):
        again = await bench.matter("M-BENCH-PAR", **settings)
    made = again.llm.get("requests", 0) + (await bench.calls_stored("M-BENCH-PAR") - stored)
    share = again.seconds / par.seconds
    report.add("re-run of a finished matter, s: vs the first run (LLM calls made: "
               f"{made})", again.seconds, par.seconds, share, "0 LLM calls, <= 0.05", made == 0 and share <= 0.05)
    report.details["rerun"] = {"seconds": round(again.seconds, 2), "llm_requests": again.llm.get("requests", 0),
                               "jobs": [j.label for j in again.jobs if j.kind == "script"]}
    return [par, *seq_runs, again]


async def measure_memory(report: Report, bench: Bench, s: Sizes) -> list[FlowRun]:
    small, large = docs.long_contract(*s.small_doc), docs.long_contract(*s.large_doc)
    settings = {"k": s.k, "chunk_pages": s.chunk_pages, "overlap_chars": s.overlap_chars,
                "batch_size": s.large_batch_size}
    runs, peaks = [], {}
    for label, path in (("small", small), ("large", large)):
        matter = f"M-BENCH-RSS-{label.upper()}"
        await bench.upload(matter, {"doc": path})
        note(f"memory: process_matter with one {path.name.split('-')[1]} document")
        with RssSampler() as sampler, quiet(f"rss-{label}"):
            runs.append(await bench.matter(matter, **settings))
        peaks[label] = {m.rsplit(".", 1)[-1]: b for m, b in sampler.by_module().items()}
    pages = (s.small_doc[0], s.large_doc[0])
    for stage in STAGES:
        lo, hi = peaks["small"].get(stage), peaks["large"].get(stage)
        if lo is None or hi is None:
            continue
        report.add(f"peak RSS of {stage}, MB (job and its pool): {pages[1]}-page vs {pages[0]}-page document",
                   hi / MB, lo / MB, hi / lo, "grows <= 100 MB", (hi - lo) <= 100 * MB)
    report.details["rss_mb"] = {k: {m: round(b / MB, 1) for m, b in v.items()} for k, v in peaks.items()}
    return runs


def measure_results(report: Report, runs: list[FlowRun]) -> None:
    sizes = [(label, size) for r in runs for label, size in r.result_sizes()]
    label, biggest = max(sizes, key=lambda x: x[1])
    report.add(f"largest step result, bytes, any job of any run ({label})", biggest, None, None, "< 16384",
               biggest < RESULT_LIMIT)
    loops = [(label, size) for r in runs for label, size in r.loop_sizes()]
    if loops:
        label, size = max(loops, key=lambda x: x[1])
        report.add(f"largest for-loop result, bytes: the list of its iterations' results ({label})", size, None,
                   None, "< 16384", size < RESULT_LIMIT)


def measure_fixed_cost(report: Report, cached: list[FlowRun], s: Sizes) -> None:
    note("per-job fixed cost: python -c pass, the stage scripts' imports")
    imports = micro.import_seconds([f"f.matter.{m}" for m in ("ingest", "split", "extract", "merge", "score")],
                                   repeat=s.import_repeat)
    bare = imports.pop("")
    seconds: dict[str, float] = {}
    for run in cached:  # each job's best of the cached runs: the least a job costs here
        for j in run.jobs:
            if j.kind == "script" and j.finished_at and j.started_at:
                took = (j.finished_at - j.started_at).total_seconds()
                seconds[j.label] = min(seconds.get(j.label, took), took)
    alone = [v for k, v in seconds.items() if k in ("ingest", "split")]  # all done: they only check their outputs
    median = statistics.median(alone)
    report.add("per-job fixed cost, s: a job whose work is all done (process start, imports, store client set-up, "
               "a few reads; ingest and split of a finished document) vs bare `python -c pass`", median, bare,
               median / bare, "stated", None)
    heaviest = max(imports, key=imports.get)
    report.add(f"  of which imports, s: `import {heaviest}` (the heaviest stage) vs `python -c pass`",
               imports[heaviest], bare, imports[heaviest] / bare, "stated", None)
    report.details["fixed_cost"] = {"python_pass_s": round(bare, 3),
                                    "imports_s": {k: round(v, 3) for k, v in imports.items()},
                                    "cached_jobs_s": {k: round(v, 2) for k, v in seconds.items()}}


# ------------------------------------------------------------------ the run


def run_all(s: Sizes, workers: int) -> Report:
    report = Report()
    t0 = time.perf_counter()
    measure_text(report, s)  # these make their own event loops and process pools
    measure_ocr(report, s)
    asyncio.run(run_flows(report, s, workers))
    report.details["seconds"] = round(time.perf_counter() - t0, 1)
    return report


async def run_flows(report: Report, s: Sizes, workers: int) -> None:
    runs: list[FlowRun] = []
    plan = PoolPlan()
    async with services(plan, workers) as bench:
        e2e = await measure_e2e(report, bench, s)
        runs += e2e["runs"]
        runs += await measure_matter(report, bench, s)
        with SimPool(FAST_POOL) as fast:
            runs += await measure_memory(report, Bench(bench.azurite, fast, workers), s)
    measure_results(report, runs)
    measure_fixed_cost(report, e2e["cached"], s)
    report.details["pool"] = {**asdict(plan), "capacity_calls_per_s": plan.capacity}
    report.details["workers"] = workers


def format_table(report: Report) -> str:
    def cell(x: Any) -> str:
        if x is None:
            return "—"
        if isinstance(x, bool):
            return "yes" if x else "NO"
        if isinstance(x, float):
            return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.1f}"
        return str(x)

    head = ("measure", "value", "baseline", "ratio", "target", "met")
    rows = [[r.measure, cell(r.value), cell(r.baseline), cell(r.ratio), r.target, cell(r.met)] for r in report.rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * 3 + ["---", "---"]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, Any]:
    return {"rows": [asdict(r) for r in report.rows], "details": report.details}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print {\"rows\": [...], \"details\": {...}} as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny inputs: checks that the bench works (a minute)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent job processes, like worker replicas")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    report = run_all(QUICK if args.quick else FULL, args.workers)
    data = as_json(report)
    if args.out:
        args.out.write_text(json.dumps(data, indent=2) + "\n")
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(report))
        print(f"\npool: {report.details['pool']['backends']} backends x {report.details['pool']['rpm']} rpm "
              f"= {report.details['pool']['capacity_calls_per_s']:g} calls/s; {cpu_count()} cores; "
              f"bench took {report.details['seconds']:.0f} s; details: --json")
    return 0
