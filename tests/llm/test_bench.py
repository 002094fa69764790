"""scripts/bench-llm: its scoring, and one short side-by-side run of the clients that need no install."""

import json
import os
import subprocess
import sys
from pathlib import Path

from embedded.bench_llm.__main__ import Scenario, score, tier1_could

ROOT = Path(__file__).resolve().parents[2]


def test_capacity_counts_the_down_window_and_fresh_windows():
    sc = Scenario(duration_s=50, down=(15, 35))
    ptu = sc.specs()[0]
    assert sc.up_intervals(ptu, 50) == [(0, 15), (35, 50)]
    assert sc.capacity(ptu, 50) == 2 * 50 + 2 * 50  # 50 per 10 s window begun in each 15 s stretch up
    assert sc.rate() == (5 * 30 / 50) + 2.5 + 2.5
    records = [[t / 10, 0.3, True] for t in range(500)]  # 10/s offered for 50 s
    assert tier1_could(sc, ptu, records, 50) == 100 + 100


def test_score_columns():
    sc = Scenario(duration_s=10, down=(100, 120))
    out = {"records": [[0.0, 0.2, True], [1.0, 0.4, True], [2.0, 20.0, False]], "errors": {"TimeoutError": 1}}
    stats = {"ptu": {"requests": 3, "ok": 2}, "paygo-a": {"requests": 1, "ok": 0}, "paygo-b": {"requests": 0, "ok": 0}}
    row = score(sc, "x", 1.0, 3, out, stats)
    assert (row.errors_surfaced, row.wasted_calls, row.goodput_ratio, row.tier1_share) == (1, 2, 0.667, 0.667)
    assert row.p50_s == 0.2 and row.p99_s == 0.4


def test_short_run_side_by_side_as_json():
    proc = subprocess.run(
        [sys.executable, "-m", "embedded.bench_llm", "--json", "--duration", "4", "--loads", "0.5",
         "--clients", "ours,single", "--pairs", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert [(r["client"], r["load"]) for r in result["runs"]] == [("ours", 0.5), ("single", 0.5)]
    assert set(result["runs"][0]) == {"client", "load", "goodput_ratio", "errors_surfaced", "wasted_calls", "p50_s",
                                      "p99_s", "tier1_share"}
    assert set(result["overhead_ms_median"]) == {"ours", "single"}
    assert result["runs"][0]["errors_surfaced"] == 0
