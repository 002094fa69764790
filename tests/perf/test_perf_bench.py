"""scripts/bench in --quick mode on tiny inputs: every measure runs and reports, the re-run pays for no LLM call,
and no step result reaches 16 KB. The numbers themselves are not checked here (a busy machine moves them)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"measure", "value", "baseline", "ratio", "target", "met"}


def test_quick_bench_reports_every_measure(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "embedded.bench", "--quick", "--json", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = json.loads(run.stdout)
    assert printed == json.loads(out.read_text())
    rows = printed["rows"]
    assert rows and all(set(r) == KEYS for r in rows)
    by = {r["measure"].split(",")[0].split(":")[0]: r for r in rows}
    for measure in ("page split + text extraction", "OCR pages/s on scanned pages", "end-to-end process_document",
                    "LLM calls per page", "LLM tokens per page", "process_matter", "re-run of a finished matter",
                    "largest step result", "per-job fixed cost"):
        assert measure in by, measure
        assert by[measure]["value"] is not None and by[measure]["value"] > 0, measure
    stages = {r["measure"].split()[3].rstrip(",") for r in rows if r["measure"].startswith("peak RSS of ")}
    assert stages == {"list_documents", "ingest", "split", "extract", "merge", "score", "rollup"}

    assert by["largest step result"]["value"] < 16 * 1024 and by["largest step result"]["met"] is True
    details = printed["details"]
    assert details["rerun"]["llm_requests"] == 0 and "(LLM calls made: 0)" in by["re-run of a finished matter"]["measure"]
    assert not any("process_document" in j for j in details["rerun"]["jobs"]), "a finished document starts no job"
    assert details["usage"]["default"]["calls"] == 3 * details["usage"]["no_overlap_k1"]["calls"]  # k=3 against k=1
