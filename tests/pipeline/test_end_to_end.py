"""The whole flow through the local runner's CLI, and the demo twice: the second run pays for nothing."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from embedded.azurite import start_azurite
from f.core.layout import MatterPaths
from f.core.models import DocumentResult, FailureRecord
from f.core.storage import open_store
from f.pipeline.sources import add_source
from tests.pipeline.conftest import MATTER

ROOT = Path(__file__).resolve().parents[2]
SIZE = re.compile(r"\] ok\s+(\S+).*?\s([\d.]+) (B|KB|MB)$")


def result_sizes(stderr: str) -> dict[str, float]:
    scale = {"B": 1, "KB": 1024, "MB": 1024 * 1024}
    return {m.group(1): float(m.group(2)) * scale[m.group(3)]
            for line in stderr.splitlines() if (m := SIZE.search(line))}


async def test_process_matter_through_scripts_wm(tmp_path, sample_docs):
    """Azurite keeps its blobs in the state folder, so the matter uploaded here is what wm's own Azurite serves."""
    state = tmp_path / "state"
    matter = MatterPaths(MATTER)
    with start_azurite(state / "azurite", tmp_path / "logs") as azurite:
        config = {"container": "matters", "connection_string": azurite.connection_string}
        async with open_store(config, matter.prefix, create_container=True) as store:
            for sample in sample_docs[:3]:
                await add_source(store, matter.doc(sample.name), sample.pdf_path.read_bytes(), sample.pdf_path.name)
            await add_source(store, matter.doc("corrupt"), b"%PDF-1.7\n" + os.urandom(3000), "corrupt.pdf")

    run = subprocess.run(
        [str(ROOT / "scripts" / "wm"), "flow", "run", "f/matter/process_matter", "-d",
         json.dumps({"matter_id": MATTER, "k": 2})],
        env=os.environ | {"MATTER_STATE_DIR": str(state)}, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rollup = json.loads(run.stdout)
    assert (rollup["documents"], rollup["ok"], rollup["failed"]) == (4, 3, 1)
    failed = next(r for r in rollup["rows"] if r["doc_id"] == "corrupt")
    assert failed["error"].startswith("ingest: ") and "corrupt.pdf" in failed["error"]

    sizes = result_sizes(run.stderr)
    assert any(label.endswith("extract_batch") or "extract" in label for label in sizes)
    assert max(sizes.values()) < 16 * 1024, max(sizes.items(), key=lambda kv: kv[1])

    with start_azurite(state / "azurite", tmp_path / "logs") as azurite:
        config = {"container": "matters", "connection_string": azurite.connection_string}
        async with open_store(config, matter.prefix) as store:
            for sample in sample_docs[:3]:
                result = await store.read_model(matter.doc(sample.name).result, DocumentResult)
                assert result.fields["client_name"].value == sample.truth.fields["client_name"]
                assert result.fields["document_type"].value == sample.truth.document_type
            failure = await store.read_model(matter.doc("corrupt").failure, FailureRecord)
            assert failure.step == "ingest" and "corrupt.pdf" in failure.error
            assert all(n.startswith(matter.prefix) for n in await store.list_names(""))


def test_the_demo_twice_second_run_makes_no_llm_calls(tmp_path, sample_docs):
    folder = tmp_path / "mine"
    folder.mkdir()
    for sample in sample_docs[:2]:
        (folder / sample.pdf_path.name).write_bytes(sample.pdf_path.read_bytes())
    env = os.environ | {"MATTER_STATE_DIR": str(tmp_path / "state")}
    command = [sys.executable, "-m", "embedded.demo", "--input", str(folder), "--json", "--matter-id", "demo-test",
               "--pool", "sim"]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["llm_calls"] > 0 and two["llm_calls"] == 0
    assert one["documents"] == two["documents"]
    assert set(one["documents"]) == {s.pdf_path.name for s in sample_docs[:2]}
    for name, doc in one["documents"].items():
        assert doc["status"] == "ok" and set(doc["fields"]) >= {"client_name", "document_date", "total_amount"}
        assert doc["word_confidence"]["document"] > 0
