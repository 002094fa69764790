"""Extract: k independent LLM calls per chunk, validated, each cached in the store by the hash of its inputs.

A call's record is written only when it succeeded, so a re-run pays only for the calls still missing.
"""

import asyncio
import logging
from typing import Any

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import CallRecord, Chunk, ChunkPlan, Usage
from f.core.progress import Progress
from f.core.storage import BlobStore
from f.extraction.chunking import content_hash
from f.extraction.prompt import PROMPT_VERSION, build_messages
from f.extraction.schema import SCHEMA_VERSION, ChunkExtraction
from f.llm.client import LLMCallFailed, LLMClient
from f.llm.pool import LLMPool

log = logging.getLogger("f.pipeline.extract")
MAX_TOKENS = 700


class ChunkStatus(BaseModel):
    chunk_id: str
    ok: int
    cached: int
    failed: int


class ExtractSummary(BaseModel):
    doc_id: str
    batch: int
    chunks: list[ChunkStatus]
    calls_made: int
    calls_cached: int
    calls_failed: int
    backends: dict[str, dict[str, int]]


class ChunkFailed(RuntimeError):
    pass


def call_hash(chunk: Chunk, sample: int) -> str:
    return content_hash(chunk.content_hash, PROMPT_VERSION, SCHEMA_VERSION, MAX_TOKENS, sample)


async def _one_call(client: LLMClient, store: BlobStore, doc: DocPaths, chunk: Chunk, sample: int,
                    used_backends: set[str]) -> str:
    """'cached', 'ok' or 'failed' for one sample of one chunk."""
    key = call_hash(chunk, sample)
    path = doc.extraction(chunk.chunk_id, key)
    if await store.exists(path):
        return "cached"
    try:
        result = await client.complete_json(messages=build_messages(chunk), schema=ChunkExtraction,
                                            max_tokens=MAX_TOKENS, spread=used_backends)
    except LLMCallFailed as e:
        log.warning("chunk %s sample %d failed: %s", chunk.chunk_id, sample, e)
        return "failed"
    record = CallRecord(
        chunk_id=chunk.chunk_id, sample=sample, call_hash=key, prompt_version=PROMPT_VERSION,
        backend=result.backend, model=result.model, latency_s=round(result.latency_s, 3), attempts=result.attempts,
        usage=Usage(prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens),
        logprob_mean=result.logprob_mean, output=result.parsed,
    )
    await store.create_model(path, record)
    return "ok"


async def _chunk(client: LLMClient, store: BlobStore, doc: DocPaths, chunk_id: str, k: int,
                 progress: Progress) -> ChunkStatus:
    chunk = await store.read_model(doc.chunk(chunk_id), Chunk)
    used: set[str] = set()
    outcomes = await asyncio.gather(*(_one_call(client, store, doc, chunk, s, used) for s in range(k)))
    progress.advance()
    return ChunkStatus(chunk_id=chunk_id, ok=outcomes.count("ok"), cached=outcomes.count("cached"),
                       failed=outcomes.count("failed"))


async def extract(store: BlobStore, pool: LLMPool | dict[str, Any], doc: DocPaths, *, batch: int, k: int,
                  concurrency: int = 8) -> ExtractSummary:
    plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    refs = plan.batch(batch)
    progress = Progress(f"extract {doc.doc_id} batch {batch}", len(refs))
    gate = asyncio.Semaphore(concurrency)
    pool_config = pool if isinstance(pool, LLMPool) else LLMPool.model_validate(pool)
    async with LLMClient(pool_config) as client:
        async def guarded(chunk_id: str) -> ChunkStatus:
            async with gate:
                return await _chunk(client, store, doc, chunk_id, k, progress)

        statuses = await asyncio.gather(*(guarded(r.chunk_id) for r in refs))
        stats = client.stats()
    summary = ExtractSummary(
        doc_id=doc.doc_id, batch=batch, chunks=statuses,
        calls_made=sum(s.ok for s in statuses), calls_cached=sum(s.cached for s in statuses),
        calls_failed=sum(s.failed for s in statuses), backends=stats,
    )
    starved = [s.chunk_id for s in statuses if s.ok + s.cached == 0]
    if starved:
        raise ChunkFailed(f"document {doc.doc_id}: no successful LLM call for chunks {starved}; "
                          f"finished calls are saved and a re-run makes only the missing ones")
    return summary
