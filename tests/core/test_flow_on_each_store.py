"""process_document once on each store: the stage scripts themselves (f/matter/*.main), in the flow's order,
with only the store resource changed. Each script runs in its own thread and event loop, as each step
runs in its own job on a worker."""

import asyncio
import os

import pytest

from f.core.layout import MatterPaths
from f.core.models import DocumentResult, FailureRecord
from f.core.storage import open_store
from f.matter import (
    extract,
    ingest,
    list_documents,
    merge,
    record_failure,
    rollup,
    score,
    split,
)
from f.pdf.errors import BadDocument
from f.pipeline.sources import add_source
from tests.pipeline.conftest import MATTER, sample_docs, served_requests, sim_pool  # noqa: F401 (fixtures)

MATTER_PATHS = MatterPaths(MATTER)


async def test_process_document_on_each_store(any_store_config, sim_pool, sample_docs):  # noqa: F811
    pool, backends = sim_pool
    cfg = any_store_config
    sample = next(s for s in sample_docs if s.name == "engagement-letter-acme")
    doc_id = sample.name
    async with open_store(cfg, MATTER_PATHS.prefix, create_container=True) as store:
        assert await add_source(store, MATTER_PATHS.doc(doc_id), sample.pdf_path.read_bytes(), sample.pdf_path.name)
        await add_source(store, MATTER_PATHS.doc("corrupt"), b"%PDF-1.7\n" + os.urandom(3000), "corrupt.pdf")

    def step(script, **args):
        return asyncio.to_thread(script.main, store=cfg, matter_id=MATTER, **args)

    assert await step(list_documents) == sorted([doc_id, "corrupt"])
    ingested = await step(ingest, doc_id=doc_id)
    assert ingested["pages"] == sample.truth.pages
    split_ = await step(split, doc_id=doc_id, chunk_pages=2, overlap_chars=400, batch_size=1)
    assert len(split_["batches"]) >= 2
    extracted = await asyncio.gather(*(
        asyncio.to_thread(extract.main, store=cfg, pool=pool, matter_id=MATTER, doc_id=doc_id, batch=b, k=3)
        for b in split_["batches"]))
    assert sum(e["calls_made"] for e in extracted) == 3 * split_["chunks"]
    assert (await step(merge, doc_id=doc_id))["calls"] == 3 * split_["chunks"]
    scored = await step(score, doc_id=doc_id)
    assert scored["result"] == MATTER_PATHS.doc(doc_id).result

    with pytest.raises(BadDocument, match="corrupt.pdf"):
        await step(ingest, doc_id="corrupt")
    await step(record_failure, doc_id="corrupt", step="ingest", message="BadDocument: corrupt.pdf: damaged")
    summary = await step(rollup)
    rows = {r["doc_id"]: r for r in summary["rows"]}
    assert rows[doc_id]["status"] == "ok" and rows["corrupt"]["status"] == "failed"

    async with open_store(cfg) as store:
        result = await store.read_model(MATTER_PATHS.doc(doc_id).result, DocumentResult)
        for name in ("document_type", "matter_number", "client_name", "document_date"):
            assert result.fields[name].value == sample.truth.fields[name], name
        failure = await store.read_model(MATTER_PATHS.doc("corrupt").failure, FailureRecord)
        assert failure.step == "ingest"
        assert all(n.startswith(MATTER_PATHS.prefix) for n in await store.list_names(""))

    # Run again: every output is found in the store (conditional creates), no model call is paid twice.
    before = await served_requests(backends)
    again = await asyncio.to_thread(extract.main, store=cfg, pool=pool, matter_id=MATTER, doc_id=doc_id,
                                    batch=split_["batches"][0], k=3)
    assert again["calls_made"] == 0 and again["calls_cached"] > 0
    assert (await step(ingest, doc_id=doc_id))["skipped"]
    assert await served_requests(backends) == before
