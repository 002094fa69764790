"""The demo: put a matter's PDFs into the store, run process_matter through the local runner, show the result."""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from embedded.azurite import ROOT
from embedded.runner import FlowFailed, Workspace, run_flow
from embedded.services import CONTAINER, STATE, local_services
from f.core.ids import check_id, id_from_filename
from f.core.layout import MatterPaths
from f.core.models import DocumentResult
from f.core.storage import BlobStore, open_store
from f.pipeline.rollup import latest_outcome
from f.pipeline.sources import add_source

DEFAULT_MATTER = "M-2024-0137"
POOL_RESOURCES = {"sim": "$res:f/llm/pool", "local-models": "$res:f/llm/pool_local_models"}


def sample_matter(matter_id: str) -> Path:
    from embedded.samples import generate_matter

    out = ROOT / ".cache" / "samples" / matter_id
    if not any(out.glob("*.pdf")):
        generate_matter(out, matter_id=matter_id)
    return out


def document_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"})
    if not files:
        raise SystemExit(f"no PDF or image files in {folder}")
    return files


async def upload(store: BlobStore, matter: MatterPaths, files: list[Path]) -> dict[str, str]:
    """doc_id -> file name; ids come from the file names, made unique."""
    ids: dict[str, str] = {}
    for path in files:
        base = id_from_filename(path.name)
        doc_id, n = base, 2
        while doc_id in ids:
            doc_id, n = f"{base[:60]}-{n}", n + 1
        ids[doc_id] = path.name
        await add_source(store, matter.doc(doc_id), path.read_bytes(), path.name)
    return ids


async def count_calls(store: BlobStore, matter: MatterPaths) -> int:
    return sum("/extractions/" in name for name in await store.list_names(matter.prefix))


async def collect(store: BlobStore, matter: MatterPaths, ids: dict[str, str]) -> dict[str, Any]:
    documents: dict[str, Any] = {}
    for doc_id, name in ids.items():
        doc = matter.doc(doc_id)
        outcome = await latest_outcome(store, doc)
        if isinstance(outcome, DocumentResult):
            documents[name] = {
                "doc_id": doc_id, "status": "ok", "document_type": outcome.document_type,
                "confidence": outcome.confidence, "needs_review": outcome.needs_review, "reasons": outcome.reasons,
                "fields": {k: v.model_dump(mode="json") for k, v in outcome.fields.items()},
                "word_confidence": outcome.word_confidence.model_dump(mode="json") if outcome.word_confidence else None,
                "result": doc.result,
            }
        else:
            error = f"{outcome.step}: {outcome.error}" if outcome else "not processed"
            documents[name] = {"doc_id": doc_id, "status": "failed", "error": error, "needs_review": True,
                               "fields": {}, "reasons": [], "word_confidence": None}
    return documents


def show(value: Any) -> str:
    """A field's value on one line of the table (a model's answer may hold line breaks)."""
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']:,.2f} {value.get('currency', '')}"
    if isinstance(value, list):
        return " ".join(", ".join(map(str, value)).split()) or "—"
    return "—" if value is None else " ".join(str(value).split())


def print_report(report: dict[str, Any]) -> None:
    out = sys.stdout.write
    docs = report["documents"]
    review = sum(d["needs_review"] for d in docs.values())
    failed = sum(d["status"] == "failed" for d in docs.values())
    out(f"\nMatter {report['matter_id']}: {len(docs)} documents, {failed} failed, {review} need review\n")
    out(f"LLM calls paid this run: {report['llm_calls']}   time: {report['seconds']:.1f} s   "
        f"store: container '{CONTAINER}', prefix {report['prefix']}\n")
    for name, d in docs.items():
        out(f"\n{name}")
        if d["status"] == "failed":
            out(f"  FAILED  {d['error']}\n")
            continue
        wc = d["word_confidence"]
        ocr = sum(p["source"] == "ocr" for p in wc["pages"])
        flag = "yes: " + "; ".join(d["reasons"]) if d["needs_review"] else "no"
        out(f"  [{d['document_type']}]  confidence {d['confidence']:.2f}  needs review: {flag}\n")
        out(f"  word confidence {wc['document']:.2f} over {len(wc['pages'])} pages ({ocr} OCR)"
            + (f", low pages {wc['low_pages']}" if wc["low_pages"] else "") + "\n")
        out(f"  {'field':<15} {'value':<44} {'conf':>5} {'page':>4}\n")
        for field, f in d["fields"].items():
            out(f"  {field:<15} {show(f['value'])[:44]:<44} {f['confidence']:>5.2f} {f['page'] or '':>4}\n")
        out(f"  result: {d['result']}\n")
    out(f"\nMatter rollup: {report['rollup']}\n")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    matter = MatterPaths(check_id(args.matter_id, "matter id"))
    folder = Path(args.input) if args.input else sample_matter(matter.matter_id)
    files = document_files(folder)
    # The local models keep their own store: a matter finished on one pool is not "finished" for the other.
    # The simulated pool's store is the one that scripts/serve and scripts/wm open.
    state = STATE / "local-models" if args.pool == "local-models" else STATE
    async with local_services(pool=args.pool, state_dir=state) as variables:
        config = {"container": CONTAINER, "connection_string": variables["f/matter/blob_connection_string"]}
        async with open_store(config, matter.prefix) as store:
            ids = await upload(store, matter, files)
            before = await count_calls(store, matter)
            started = time.monotonic()
            workspace = Workspace(ROOT, env="local", variables=variables)
            flow_args = {"matter_id": matter.matter_id, "pool": POOL_RESOURCES[args.pool], "k": args.k,
                         "review": False}  # unattended: needs_review is recorded, nothing waits for a person
            try:
                await run_flow(workspace, "f/matter/process_matter", flow_args, max_workers=args.workers)
            except FlowFailed as e:
                print(f"process_matter failed: {e}", file=sys.stderr)
            seconds = time.monotonic() - started
            calls = await count_calls(store, matter) - before
            return {"matter_id": matter.matter_id, "prefix": matter.prefix, "llm_calls": calls,
                    "seconds": round(seconds, 2), "rollup": matter.rollup,
                    "documents": await collect(store, matter, ids)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--input", help="a folder of your own PDFs, processed as one matter")
    parser.add_argument("--matter-id", default=DEFAULT_MATTER)
    parser.add_argument("--pool", choices=sorted(POOL_RESOURCES), default="local-models",
                        help="local-models: real small models on llama.cpp (default); sim: the simulated pool")
    parser.add_argument("-k", type=int, help="independent extractions per chunk (default: 2 on local-models, "
                                             "one per model; 3 on sim)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent job processes, like worker replicas")
    parser.add_argument("--json", action="store_true", help="print the matter's result as JSON")
    args = parser.parse_args()
    if args.k is None:
        args.k = 2 if args.pool == "local-models" else 3
    report = asyncio.run(run(args))
    if args.json:
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_report(report)


if __name__ == "__main__":
    main()
