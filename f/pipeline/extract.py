"""Extract: k independent LLM calls per chunk, validated, each cached in the store by the hash of its inputs.

A call's record is written only when it succeeded, so a re-run pays only for the calls still missing.

Two jobs may want the same call at once: a retried job whose first attempt is still running somewhere, two
runs of the same document or matter. Before paying, a job claims the call (`claims/<chunk>/<hash>.json`,
created with if-none-match, renewed by ETag compare-and-swap while the call is in flight, deleted after).
The others wait for the record to appear, and take the claim over only once it has not been renewed for
CLAIM_TTL_S: its holder died (kill -9, a lost worker). So a finished call is never paid twice, and a call
in flight is paid twice only if its holder stalled for longer than the TTL. Expiry compares wall clocks,
so workers' clocks must agree to well under CLAIM_TTL_S (NTP does).
"""

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from f.core.layout import DocPaths, MatterPaths
from f.core.models import CallRecord, Chunk, ChunkPlan, Usage
from f.core.progress import Progress
from f.core.storage import BlobStore, Conflict, NotFound
from f.extraction.chunking import content_hash
from f.extraction.profiles import PROFILES, Request
from f.llm.client import LLMCallFailed, LLMClient
from f.llm.pool import LLMPool

log = logging.getLogger("f.pipeline.extract")
T = TypeVar("T")
MAX_TOKENS = 700
CLAIM_TTL_S = 10.0  # a claim not renewed for this long belongs to a dead job and may be taken over
CLAIM_RENEW_S = 3.0
CLAIM_POLL_S = 0.25
SAVE_PATIENCE_S = 60.0  # how long a paid result waits for the store to come back before it is given up


class ChunkStatus(BaseModel):
    chunk_id: str
    ok: int
    cached: int
    failed: int


SHOWN_FAILURES = 5  # chunk ids named in a summary; the loop's list of summaries must stay small


class ExtractSummary(BaseModel):
    """One extract job's result, a few hundred bytes: a for-loop gathers one per batch."""

    doc_id: str
    batch: int
    profile: str = Field(description="the pool's output profile: merge reads only this profile's calls")
    chunks: int
    calls_made: int
    calls_cached: int
    calls_failed: int
    chunks_with_failures: int
    failed_chunks: list[str] = Field(description=f"the first {SHOWN_FAILURES} chunks with a failed call")
    backends: dict[str, dict[str, int]] = Field(
        description="per backend used: its non-zero counters (calls, ok, throttled_429, errors_5xx, breaker_trips...)")


class ChunkFailed(RuntimeError):
    pass


def call_hash(chunk: Chunk, sample: int, request: Request) -> str:
    return content_hash(chunk.content_hash, *request.version, MAX_TOKENS, sample)


class Claim(BaseModel):
    owner: str
    expires_at: float  # unix time


class ClaimTimeout(RuntimeError):
    pass


def _claim_body() -> str:
    owner = f"{socket.gethostname()}:{os.getpid()}:{os.environ.get('WM_JOB_ID', '-')}"
    return Claim(owner=owner, expires_at=time.time() + CLAIM_TTL_S).model_dump_json()


async def _acquire(store: BlobStore, path: str) -> str | None:
    """The ETag of our new claim at path; None while someone else's claim there is alive."""
    if await store.create(path, _claim_body()):
        return (await store.read_with_etag(path))[1]  # nobody replaces a claim this fresh
    try:
        data, etag = await store.read_with_etag(path)
    except NotFound:
        return None  # released just now: the caller looks for the record, then tries again
    with contextlib.suppress(ValidationError):
        if Claim.model_validate_json(data).expires_at > time.time():
            return None
    try:
        return await store.replace(path, _claim_body(), etag)  # take over an abandoned claim
    except Conflict:
        return None


class HeldClaim:
    """Our claim on one call: renewed in the background while the call is in flight, deleted after."""

    def __init__(self, store: BlobStore, path: str, etag: str) -> None:
        self.store, self.path, self.etag, self.lost = store, path, etag, False
        self._renewer = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(CLAIM_RENEW_S)
            try:
                self.etag = await self.store.replace(self.path, _claim_body(), self.etag)
            except Conflict:
                self.lost = True
                log.warning("claim %s was taken over (this job stalled for over %ss)", self.path, CLAIM_TTL_S)
                return
            except Exception as e:  # a store hiccup: the claim lives until its TTL; try again
                log.warning("renewing claim %s failed: %s", self.path, type(e).__name__)

    async def release(self) -> None:
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        if not self.lost:
            with contextlib.suppress(Exception):  # an orphaned claim only makes a later run wait its TTL
                await self.store.delete(self.path)


async def _claim_call(store: BlobStore, doc: DocPaths, chunk_id: str, key: str, wait_s: float) -> HeldClaim | None:
    """Our claim on the call, or None when its record exists (someone else made the call while we waited)."""
    record, path = doc.extraction(chunk_id, key), doc.claim(chunk_id, key)
    deadline = time.monotonic() + wait_s
    while not await store.exists(record):
        etag = await _acquire(store, path)
        if etag is not None:
            held = HeldClaim(store, path, etag)
            if await store.exists(record):  # finished between our look and our claim
                await held.release()
                return None
            return held
        if time.monotonic() > deadline:
            raise ClaimTimeout(f"call {key} of chunk {chunk_id} is still claimed by another job after {wait_s:.0f}s")
        await asyncio.sleep(CLAIM_POLL_S * (1 + random.random()))
    return None


async def _one_call(client: LLMClient, store: BlobStore, doc: DocPaths, chunk: Chunk, sample: int,
                    used_backends: set[str], request: Request) -> str:
    """'cached', 'ok' or 'failed' for one sample of one chunk."""
    key = call_hash(chunk, sample, request)
    path = doc.extraction(chunk.chunk_id, key)
    try:  # looks for the record first: a cached call costs one request
        claim = await _claim_call(store, doc, chunk.chunk_id, key, client.pool.deadline_s + 2 * CLAIM_TTL_S)
    except ClaimTimeout as e:
        log.warning("chunk %s sample %d: %s", chunk.chunk_id, sample, e)
        return "failed"
    if claim is None:
        return "cached"
    try:
        try:
            result = await client.complete_json(messages=request.messages, schema=request.schema,
                                                max_tokens=MAX_TOKENS, spread=used_backends)
        except LLMCallFailed as e:
            log.warning("chunk %s sample %d failed: %s", chunk.chunk_id, sample, e)
            return "failed"
        record = CallRecord(
            chunk_id=chunk.chunk_id, sample=sample, call_hash=key, prompt_version=request.record_version,
            backend=result.backend, model=result.model, latency_s=round(result.latency_s, 3),
            attempts=result.attempts,
            usage=Usage(prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens),
            logprob_mean=result.logprob_mean, temperature=result.temperature,
            output=PROFILES[client.pool.output_profile].to_output(result.parsed, chunk, request.schema),
        )
        await _save(store, path, record)
        return "ok"
    finally:
        await claim.release()


async def _save(store: BlobStore, path: str, record: CallRecord) -> None:
    """Write a paid call's record, retrying through a store outage: the result cost money, the write nothing."""
    deadline, delay = time.monotonic() + SAVE_PATIENCE_S, 0.5
    while True:
        try:
            await store.create_model(path, record)
            return
        except (Conflict, ValueError, PermissionError):  # not a transient failure
            raise
        except Exception as e:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("saving %s failed (%s); retrying in %.1fs", path, type(e).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Every call run to its end before the first error is raised: a sibling's failure must not cancel a
    call that is saving a result already paid for (the job's process ends with the error)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


async def _chunk(client: LLMClient, store: BlobStore, doc: DocPaths, chunk_id: str, k: int,
                 progress: Progress, type_hint: str | None) -> ChunkStatus:
    chunk = await store.read_model(doc.chunk(chunk_id), Chunk)
    used: set[str] = set()
    request = PROFILES[client.pool.output_profile].request(chunk, type_hint)  # the same for every sample
    outcomes = await _all(_one_call(client, store, doc, chunk, s, used, request) for s in range(k))
    progress.advance()
    return ChunkStatus(chunk_id=chunk_id, ok=outcomes.count("ok"), cached=outcomes.count("cached"),
                       failed=outcomes.count("failed"))


def _matter_pool(pool: LLMPool | dict[str, Any], doc: DocPaths) -> LLMPool:
    """The pool with its shared boards under the matter's prefix: every job of the matter shares one budget,
    and nothing is written outside the matter."""
    config = pool if isinstance(pool, LLMPool) else LLMPool.model_validate(pool)
    boards = MatterPaths(doc.matter_id).llm_boards
    return config.model_copy(update={"shared": config.shared.model_copy(update={"prefix": boards})})


async def extract(store: BlobStore, pool: LLMPool | dict[str, Any], doc: DocPaths, *, batch: int, k: int,
                  concurrency: int = 8) -> ExtractSummary:
    plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    refs = plan.batch(batch)
    progress = Progress(f"extract {doc.doc_id} batch {batch}", len(refs))
    gate = asyncio.Semaphore(concurrency)
    async with LLMClient(_matter_pool(pool, doc), board_store=store) as client:
        async def guarded(chunk_id: str) -> ChunkStatus:
            async with gate:
                return await _chunk(client, store, doc, chunk_id, k, progress, plan.type_hint)

        statuses = await _all(guarded(r.chunk_id) for r in refs)
        stats = client.stats()
    failing = [s.chunk_id for s in statuses if s.failed]
    summary = ExtractSummary(
        doc_id=doc.doc_id, batch=batch, profile=client.pool.output_profile, chunks=len(statuses),
        calls_made=sum(s.ok for s in statuses), calls_cached=sum(s.cached for s in statuses),
        calls_failed=sum(s.failed for s in statuses), chunks_with_failures=len(failing),
        failed_chunks=failing[:SHOWN_FAILURES],
        backends={name: {k: v for k, v in c.items() if v} for name, c in stats.items() if c["calls"]},
    )
    starved = [s.chunk_id for s in statuses if s.ok + s.cached == 0]
    if starved:
        raise ChunkFailed(f"document {doc.doc_id}: no successful LLM call for chunks {starved}; "
                          f"finished calls are saved and a re-run makes only the missing ones")
    return summary
