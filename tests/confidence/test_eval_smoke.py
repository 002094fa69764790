"""scripts/eval end to end on the simulated pool, on a tiny corpus (digital sets only: no OCR): the JSON keys
the issue asks for, measured on the held-out half, and a calibration module that imports."""

import importlib.util
import json

from embedded.eval.run import main

KEYS = ("ece", "auroc", "accepted_precision", "coverage_clean", "coverage_noisy", "split_recall",
        "overlap_token_overhead", "wordconf_spearman", "injection_effects")


def test_eval_on_the_sim_pool_prints_the_keys_and_writes_a_calibration(tmp_path, capsys):
    target = tmp_path / "calibration_t.py"
    code = main(["--pool", "sim", "--matters", "2", "--sets", "clean,conflict,twin", "--cache", str(tmp_path),
                 "--json", "--write-calibration", "--calibration-file", str(target)])
    assert code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert set(KEYS) <= set(report)
    assert report["documents"] == {"calibration": 9, "heldout": 9, "failed": 0}, captured.err[-3000:]
    assert report["fields"]["heldout"] == 90
    assert 0 <= report["ece"] <= 1 and (report["auroc"] is None or 0 <= report["auroc"] <= 1)  # None: no wrong field
    detail = report["injection_detail"]
    assert detail["invoices_with_injection"] == 2 and detail["payload_values_in_results"] == 0
    assert detail["schema_changes"] == 0  # (routing against the twin varies with the sampled misreads)
    assert 0 < report["overlap_token_overhead"] <= 0.2
    assert report["split_found"] >= 1 and report["coverage_noisy"] is None  # no noisy set in this corpus
    assert report["conflict_docs_routed_to_review"] in ("1/2", "2/2")  # a tiny corpus: routing varies a little
    spec = importlib.util.spec_from_file_location("calibration_t", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = {p["name"] for p in module.CALIBRATION["profiles"]}
    assert {"sim", "default"} <= names and module.CALIBRATION["default"] == "default"
