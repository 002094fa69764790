"""Tesseract (the pipeline's f/pdf/ocr.py) against RapidOCR on the evaluation corpus's scanned pages.

    .venv/bin/python -m embedded.eval.ocr_compare [--pages 12] [--json]

RapidOCR is a measurement-only dependency: `pip install rapidocr-onnxruntime==1.4.4` into .venv (that version
ships its ONNX models inside the wheel: nothing is downloaded at run time). Each engine runs in its own
process, one thread, so its time and peak memory are its own. Accuracy is the character error rate against
the page's text layer in the corpus's digital twin (same layout, no scan); the Spearman correlation is the
engine's page word confidence against (1 - CER).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAGES_FILE = ROOT / ".cache" / "eval" / "ocr_pages.json"


def pages(count: int) -> list[dict[str, Any]]:
    """Scanned pages of the corpus (noisy and clean scans, alternately): pdf, page number, true text."""
    from embedded.eval.corpus import build_corpus
    from embedded.samples import page_texts

    docs = build_corpus(ROOT / ".cache" / "eval" / "corpus", 2, sets=("clean", "scanned", "noisy"))
    clean = {(d.matter_seed, d.doc_id.removesuffix("-clean")): d for d in docs if d.set == "clean"}
    noisy, scanned = [], []
    for d in docs:
        if d.set not in ("scanned", "noisy"):
            continue
        twin = clean.get((d.matter_seed, d.doc_id.removesuffix(f"-{d.set}")))
        if twin is None:
            continue
        texts = page_texts(twin.sample.pdf_path)
        for n in d.truth.scanned_pages:
            row = {"pdf": str(d.sample.pdf_path), "page": n, "level": d.truth.scan_level, "truth": texts[n - 1]}
            (noisy if d.truth.scan_level == "noisy" else scanned).append(row)
    out = []
    while len(out) < count and (noisy or scanned):
        for bucket in (noisy, scanned):
            if bucket and len(out) < count:
                out.append(bucket.pop(0))
    return out


def _read(engine: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """In the engine's own process: text, mean word confidence and seconds per page."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    import pypdfium2 as pdfium

    from f.pdf.ocr import DPI, ocr_image, render

    rapid = None
    if engine == "rapidocr":
        from rapidocr_onnxruntime import RapidOCR

        rapid = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    results = []
    started = time.perf_counter()
    for row in rows:
        with pdfium.PdfDocument(row["pdf"]) as doc:
            page = doc[row["page"] - 1]
            image, scale = render(page, DPI)
            page.close()
        t0 = time.perf_counter()
        if rapid is None:
            read = ocr_image(image, scale, row["page"])
            text, conf, words = read.text, read.avg_word_confidence, read.word_count
        else:
            import numpy as np

            found, _ = rapid(np.asarray(image.convert("RGB")))
            found = found or []
            lines = sorted(found, key=lambda r: (min(p[1] for p in r[0]), min(p[0] for p in r[0])))
            text = "\n".join(r[1] for r in lines)
            confs = [float(r[2]) for r in lines for _ in r[1].split()]
            conf, words = (sum(confs) / len(confs) if confs else 0.0), len(confs)
        results.append({"text": text, "conf": conf, "words": words, "seconds": time.perf_counter() - t0})
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"pages": results, "seconds": time.perf_counter() - started, "peak_rss_mib": peak_kib / 1024}


def measure(engine: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    tmp = PAGES_FILE.with_suffix(f".{engine}.json")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(rows))
    done = subprocess.run([sys.executable, "-m", "embedded.eval.ocr_compare", "--engine", engine, "--rows", str(tmp)],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600,
                          env=os.environ | {"PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"{engine}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def summarize(engine: str, rows: list[dict[str, Any]], out: dict[str, Any]) -> dict[str, Any]:
    from rapidfuzz.distance import Levenshtein

    from embedded.eval.metrics import spearman

    cers, confs, by_level = [], [], {}
    for row, got in zip(rows, out["pages"]):
        want = " ".join(row["truth"].split())
        cer = min(1.0, Levenshtein.distance(" ".join(got["text"].split()), want) / max(1, len(want)))
        cers.append(cer)
        confs.append(got["conf"])
        by_level.setdefault(row["level"], []).append(cer)
    return {
        "engine": engine, "pages": len(rows),
        "cer_mean": sum(cers) / len(cers),
        "cer_by_level": {k: sum(v) / len(v) for k, v in by_level.items()},
        "seconds_per_page": sum(p["seconds"] for p in out["pages"]) / len(rows),
        "peak_rss_mib": round(out["peak_rss_mib"], 1),
        "conf_vs_accuracy_spearman": spearman(confs, [1 - c for c in cers]),
        "mean_confidence": sum(confs) / len(confs),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ocr_compare", description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--engines", default="tesseract,rapidocr")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--rows", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.engine:  # the child process
        print(json.dumps(_read(args.engine, json.loads(Path(args.rows).read_text()))))
        return 0
    rows = pages(args.pages)
    report = [summarize(e, rows, measure(e, rows)) for e in args.engines.split(",")]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"| engine | pages | CER | CER clean scans | CER noisy scans | s/page | peak RSS MiB | Spearman(conf, 1-CER) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in report:
            lv = r["cer_by_level"]
            print(f"| {r['engine']} | {r['pages']} | {r['cer_mean']:.3f} | {lv.get('clean', float('nan')):.3f} | "
                  f"{lv.get('noisy', float('nan')):.3f} | {r['seconds_per_page']:.2f} | {r['peak_rss_mib']} | "
                  f"{r['conf_vs_accuracy_spearman']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
