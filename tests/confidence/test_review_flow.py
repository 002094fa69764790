"""process_document's approval step through the local runner, on Azurite and a simulated pool whose models
disagree (so the document needs review): approve with corrections -> final record with a `review` section and
the original kept; reject -> the run fails at the approval step and the failure is recorded; review off ->
no waiting, needs_review recorded."""

import asyncio
import json
import time
from pathlib import Path

import pytest

from embedded.runner import FlowFailed, Workspace, run_flow
from embedded.runner.cli import main as wm
from embedded.samples import BUILDERS, generate_doc, make_matter
from embedded.simpool import SimBackendSpec, pool_resource, run_sim_pool
from f.core.layout import MatterPaths
from f.core.models import DocumentResult, FailureRecord
from f.core.storage import open_store
from f.pipeline.sources import add_source

ROOT = Path(__file__).resolve().parents[2]
MATTER = MatterPaths("M-REVIEW-1")


@pytest.fixture(scope="module")
def invoice(tmp_path_factory):
    builder = next(b for b in BUILDERS if b.__name__ == "invoice")
    return generate_doc(builder, make_matter(MATTER.matter_id, 5), tmp_path_factory.mktemp("review"), seed="r:5",
                        injection=False)


@pytest.fixture
async def quarrelsome_pool():
    """Models that misread half the time: agreement is low, so required fields fall under their threshold."""
    specs = [SimBackendSpec(name=f"q{i}", latency_ms=5, wrong_rate=0.6, seed=40 + i, max_inflight=8, timeout_s=20)
             for i in range(3)]
    async with run_sim_pool(specs) as backends:
        yield pool_resource(specs, backends)


async def start(store_config, pool, invoice, doc_id: str, review: bool = True) -> asyncio.Task:
    async with open_store(store_config, MATTER.prefix, create_container=True) as store:
        await add_source(store, MATTER.doc(doc_id), invoice.pdf_path.read_bytes(), invoice.pdf_path.name)
    args = {"matter_id": MATTER.matter_id, "doc_id": doc_id, "store": store_config, "pool": pool, "k": 3,
            "chunk_pages": 2, "review": review}
    return asyncio.create_task(run_flow(Workspace(ROOT), "f/matter/process_document", args, max_workers=2))


async def waiting_step(doc_id: str, task: asyncio.Task, deadline_s: float = 120) -> dict:
    end = time.monotonic() + deadline_s
    folder = Workspace(ROOT).state_dir / "approvals"
    while time.monotonic() < end:
        for file in folder.glob("*.json") if folder.is_dir() else []:
            data = json.loads(file.read_text())
            if data["request"].get("doc_id") == doc_id:
                return data
        if task.done():
            raise AssertionError(f"the flow ended without waiting for approval: {task.result()}")
        await asyncio.sleep(0.3)
    raise AssertionError("the flow never reached its approval step")


async def read(store_config, path: str, model):
    async with open_store(store_config, MATTER.prefix) as store:
        return await store.read_model(path, model)


async def test_approve_with_corrections_writes_the_final_record_and_keeps_the_original(
        store_config, quarrelsome_pool, invoice):
    task = await start(store_config, quarrelsome_pool, invoice, "approve-me")
    step = await waiting_step("approve-me", task)
    request = step["request"]
    assert step["step"] == "request_review" and request["reasons"]
    flagged = [f for f in request["fields"] if f["flagged"]]
    assert flagged and request["fields"][: len(flagged)] == flagged  # what sent it to review comes first
    assert {"resume", "cancel", "approvalPage"} <= set(request) and step["resume_form"]["properties"]["corrections"]
    payload = {"corrections": {"client_name": "Fixed Client LLC", "total_amount": {"value": 12.5, "currency": "usd"}},
               "comment": "checked against the paper copy"}
    assert await asyncio.to_thread(wm, ["job", "approve", step["root_job"], "-d", json.dumps(payload),
                                        "--approver", "reviewer@firm"]) == 0
    result = await asyncio.wait_for(task, 120)
    assert result["decision"] == "approved" and result["corrected"] == ["client_name", "total_amount"]

    doc = MATTER.doc("approve-me")
    final = await read(store_config, doc.result, DocumentResult)
    original = await read(store_config, f"{doc.prefix}result.original.json", DocumentResult)
    assert original.needs_review and original.review is None
    assert not final.needs_review and final.review.reviewer == "reviewer@firm"
    assert final.review.comment == "checked against the paper copy"
    assert final.fields["client_name"].value == "Fixed Client LLC" and final.fields["client_name"].confidence == 1.0
    assert final.fields["total_amount"].value == {"value": 12.5, "currency": "usd"}
    model_value = original.fields["client_name"].value
    if model_value not in (None, "Fixed Client LLC"):
        assert final.fields["client_name"].candidates[0].value == model_value  # the model's answer is kept
    untouched = [n for n in final.fields if n not in ("client_name", "total_amount")]
    assert all(final.fields[n].value == original.fields[n].value for n in untouched)


async def test_reject_fails_the_run_at_the_approval_step_and_records_it(store_config, quarrelsome_pool, invoice):
    task = await start(store_config, quarrelsome_pool, invoice, "reject-me")
    step = await waiting_step("reject-me", task)
    assert await asyncio.to_thread(wm, ["job", "reject", step["job"], "-d", '{"reason": "not our matter"}']) == 0
    with pytest.raises(FlowFailed) as failed:
        await asyncio.wait_for(task, 120)
    assert failed.value.step_id == "request_review" and failed.value.error["name"] == "SuspendedDisapproved"
    failure = await read(store_config, MATTER.doc("reject-me").failure, FailureRecord)
    assert failure.step == "request_review" and "not our matter" in failure.error
    scored = await read(store_config, MATTER.doc("reject-me").result, DocumentResult)
    assert scored.needs_review and scored.review is None  # the scored record stays as it was


async def test_review_off_records_needs_review_and_does_not_wait(store_config, quarrelsome_pool, invoice):
    task = await start(store_config, quarrelsome_pool, invoice, "unattended", review=False)
    summary = await asyncio.wait_for(task, 120)
    assert summary["needs_review"] is True and summary["reasons"]  # the branch was skipped: score's summary
