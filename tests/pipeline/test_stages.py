"""Each stage against real Azurite, real PDFs and OCR, and the simulated pool over real HTTP."""

import json

import pytest

from f.core.layout import MatterPaths
from f.core.models import CallRecord, ChunkPlan, DocumentResult, Manifest, PageText
from f.core.storage import open_store
from f.extraction.doctype import DOCTYPE_VERSION
from f.pdf.errors import BadDocument
from f.pipeline.extract import extract
from f.pipeline.ingest import ingest
from f.pipeline.merge import merge
from f.pipeline.rollup import rollup
from f.pipeline.score import score
from f.pipeline.sources import SourceChanged, add_source
from f.pipeline.split import split
from tests.pipeline.conftest import MATTER, served_requests

MATTER_PATHS = MatterPaths(MATTER)
LIMIT = 16 * 1024


def small(summary) -> dict:
    data = summary.model_dump(mode="json")
    assert len(json.dumps(data)) < LIMIT
    return data


async def run_document(store, pool, sample, k=3):
    doc = MATTER_PATHS.doc(sample.name)
    await add_source(store, doc, sample.pdf_path.read_bytes(), sample.pdf_path.name)
    ingested = small(await ingest(store, doc))
    split_ = small(await split(store, doc, chunk_pages=2, overlap_chars=400, batch_size=2))
    extracted = [small(await extract(store, pool, doc, batch=b, k=k)) for b in split_["batches"]]
    merged = small(await merge(store, doc, k))
    scored = small(await score(store, doc))
    return doc, ingested, split_, extracted, merged, scored


@pytest.fixture
async def store(store_config):
    async with open_store(store_config, MATTER_PATHS.prefix, create_container=True) as blob:
        yield blob


async def test_a_scanned_document_goes_through_every_stage(store, sim_pool, sample_docs):
    pool, backends = sim_pool
    sample = next(s for s in sample_docs if s.truth.scanned_pages and s.truth.document_type == "correspondence")
    doc, ingested, split_, extracted, merged, scored = await run_document(store, pool, sample)

    manifest = await store.read_model(doc.manifest, Manifest)
    assert manifest.pages == sample.truth.pages == ingested["pages"]
    assert ingested["scanned_pages"] == sample.truth.scanned_pages
    scanned = await store.read_model(doc.page(sample.truth.scanned_pages[0]), PageText)
    assert scanned.source == "ocr" and 0.5 < scanned.avg_word_confidence < 1.0
    assert all(w.conf < 1.0 for w in scanned.words) and scanned.word_count > 20
    assert split_["ocr_pages"] == len(sample.truth.scanned_pages)

    calls = sum(e["calls_made"] for e in extracted)
    assert calls == 3 * split_["chunks"]
    records = [await store.read_model(n, CallRecord) for n in await store.list_names(f"{doc.prefix}extractions/")]
    assert len(records) == calls and all(r.output for r in records)
    assert len({r.backend for r in records}) >= 2, "k samples should spread over backends"
    assert sum(c["ok"] for e in extracted for c in e["backends"].values()) == calls
    boards = await store.list_names(MATTER_PATHS.llm_boards)
    assert boards, "the matter's jobs share one rate budget through boards under the matter's prefix"
    assert merged["calls"] == calls

    result = await store.read_model(doc.result, DocumentResult)
    truth = sample.truth.fields
    for name in ("document_type", "matter_number", "client_name", "document_date"):
        assert result.fields[name].value == truth[name], name
        assert result.fields[name].confidence > 0.5
    assert result.word_confidence.document < 1.0
    assert {p.page for p in result.word_confidence.pages if p.source == "ocr"} == set(sample.truth.scanned_pages)

    # A second pass pays for nothing: every call is found in the store.
    before = await served_requests(backends)
    again = await extract(store, pool, doc, batch=0, k=3)
    assert again.calls_made == 0 and again.calls_cached == 3 * again.chunks
    assert await served_requests(backends) == before
    assert (await ingest(store, doc)).skipped and (await split(store, doc, chunk_pages=2, overlap_chars=400,
                                                               batch_size=2)).skipped


async def test_extraction_matches_the_truth_on_digital_documents(store, sim_pool, sample_docs):
    pool, _ = sim_pool
    right = total = 0
    for sample in [s for s in sample_docs if not s.truth.scanned_pages]:
        *_, scored = await run_document(store, pool, sample)
        result = await store.read_model(MATTER_PATHS.doc(sample.name).result, DocumentResult)
        for name, want in sample.truth.fields.items():
            total += 1
            right += result.fields[name].value == want or (want == [] and result.fields[name].value == [])
    assert right / total >= 0.9, f"{right}/{total} fields right"


async def test_a_bad_document_gets_a_clear_error_and_the_rest_of_the_matter_goes_on(store, sim_pool, sample_docs):
    pool, _ = sim_pool
    good = sample_docs[0]
    await run_document(store, pool, good)
    broken = MATTER_PATHS.doc("broken")
    await add_source(store, broken, good.pdf_path.read_bytes()[:1500], "broken.pdf")
    with pytest.raises(BadDocument, match="broken.pdf: .*(truncated|corrupt|damaged)"):
        await ingest(store, broken)
    renamed = MATTER_PATHS.doc("notes")
    await add_source(store, renamed, b"just some text, not a PDF at all\n" * 20, "notes.pdf")
    with pytest.raises(BadDocument, match="notes.pdf: .*text"):
        await ingest(store, renamed)

    from f.pipeline.failure import record_failure
    await record_failure(store, broken, "ingest", "Traceback...\nBadDocument: document broken.pdf: truncated")
    summary = small(await rollup(store, MATTER_PATHS))
    rows = {r["doc_id"]: r for r in summary["rows"]}
    assert rows[good.name]["status"] == "ok"
    assert rows["broken"]["status"] == "failed" and "truncated" in rows["broken"]["error"]
    assert rows["notes"]["status"] == "pending"
    assert all(name.startswith(MATTER_PATHS.prefix) for name in await store.list_names(""))


async def test_an_image_upload_is_converted_and_read_by_ocr(store, sim_pool, sample_docs, tmp_path):
    import pypdfium2 as pdfium

    pool, _ = sim_pool
    scanned = next(s for s in sample_docs if s.truth.scanned_pages)
    page = pdfium.PdfDocument(scanned.pdf_path)[scanned.truth.scanned_pages[0] - 1]
    image = tmp_path / "scan.png"
    page.render(scale=200 / 72).to_pil().save(image)
    doc = MATTER_PATHS.doc("scan")
    await add_source(store, doc, image.read_bytes(), "scan.png")
    ingested = await ingest(store, doc)
    assert ingested.pages == 1 and ingested.scanned_pages == [1]
    manifest = await store.read_model(doc.manifest, Manifest)
    assert manifest.source_kind == "png" and manifest.pdf_path == doc.converted
    await split(store, doc, chunk_pages=2, overlap_chars=0, batch_size=1)
    assert (await store.read_model(doc.page(1), PageText)).source == "ocr"


async def test_a_different_file_under_an_existing_document_id_is_refused(store, sample_docs):
    doc = MATTER_PATHS.doc("letter")
    assert await add_source(store, doc, b"%PDF-1.4 one", "letter.pdf")
    assert not await add_source(store, doc, b"%PDF-1.4 one", "letter.pdf")
    with pytest.raises(SourceChanged, match="letter.pdf"):
        await add_source(store, doc, b"%PDF-1.4 two", "letter.pdf")


async def test_summaries_open_their_record_when_the_store_is_the_workspace_storage(store_config, sim_pool, sample_docs):
    pool, _ = sim_pool
    linked = {**store_config, "workspace_storage": "_default_"}
    async with open_store(linked, MATTER_PATHS.prefix, create_container=True) as store:
        *_, scored = await run_document(store, pool, sample_docs[3], k=1)
        assert scored["s3"] == MATTER_PATHS.doc(sample_docs[3].name).result
        assert (await rollup(store, MATTER_PATHS)).s3 == MATTER_PATHS.rollup
    async with open_store(store_config, MATTER_PATHS.prefix) as store:
        assert (await rollup(store, MATTER_PATHS)).s3 is None


def test_a_long_document_gets_at_most_max_batches_extract_jobs():
    from f.pipeline.split import MAX_BATCHES, batch_size_for
    assert batch_size_for(10, 4) == 4
    for chunks in (1, 127, 128, 129, 500, 5000):
        size = batch_size_for(chunks, 4)
        assert -(-chunks // size) <= MAX_BATCHES and size >= 4


async def test_a_plan_hinted_by_older_rules_or_none_gets_the_current_hint_when_split_runs_again(
        store, sim_pool, sample_docs):
    pool, _ = sim_pool
    sample = next(s for s in sample_docs if s.truth.document_type == "invoice")
    doc, *_ = await run_document(store, pool, sample, k=1)
    plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    assert (plan.type_hint, plan.type_hint_version) == ("invoice", DOCTYPE_VERSION)
    for old in ({"type_hint": None, "type_hint_version": None}, {"type_hint": "contract", "type_hint_version": "d1"}):
        await store.put_model(doc.chunk_plan, plan.model_copy(update=old))
        again = await split(store, doc, chunk_pages=2, overlap_chars=400, batch_size=2)
        assert again.skipped and (await store.read_model(doc.chunk_plan, ChunkPlan)).type_hint == "invoice"
    plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    await split(store, doc, chunk_pages=2, overlap_chars=400, batch_size=2)  # current rules: the plan is kept as is
    assert (await store.read_model(doc.chunk_plan, ChunkPlan)) == plan


async def test_samples_that_share_a_backend_are_separate_draws(store, sim_pool, sample_docs):
    """A pool of one backend and k=2: the second sample of each chunk is drawn at the pool's repeat temperature
    (at 0 it would repeat the first word for word and pass for agreement), and its record says so."""
    pool, _ = sim_pool
    one = {**pool, "backends": pool["backends"][:1]}
    doc, *_ = await run_document(store, one, sample_docs[0], k=2)
    records = [await store.read_model(n, CallRecord) for n in await store.list_names(f"{doc.prefix}extractions/")]
    by_chunk: dict[str, list[float]] = {}
    for r in records:
        by_chunk.setdefault(r.chunk_id, []).append(r.temperature)
    assert by_chunk and all(sorted(t) == [0.0, 0.7] for t in by_chunk.values()), by_chunk
