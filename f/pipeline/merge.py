"""Merge: the cached call records of every chunk become one candidate list per field."""

import asyncio
from collections import Counter

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import CallRecord, ChunkPlan, MergedRecord
from f.core.storage import BlobStore
from f.extraction.merge import tally
from f.extraction.profiles import PROFILES
from f.pipeline.finished import inputs_key


class MergeSummary(BaseModel):
    doc_id: str
    merged: str
    calls: int
    fields_found: int


async def read_calls(store: BlobStore, doc: DocPaths, k: int, limit: int = 16,
                     plan: ChunkPlan | None = None, profile: str = "full") -> list[CallRecord]:
    """The call records of the current chunk plan's chunks, samples 0..k-1, made with this output profile
    (earlier runs may have made more, or made them with another profile)."""
    plan = plan or await store.read_model(doc.chunk_plan, ChunkPlan)
    wanted = {c.chunk_id for c in plan.chunks}
    names = [n for n in await store.list_names(f"{doc.prefix}extractions/") if n.split("/")[-2] in wanted]
    gate = asyncio.Semaphore(limit)

    async def one(name: str) -> CallRecord:
        async with gate:
            return await store.read_model(name, CallRecord)

    records = await asyncio.gather(*(one(n) for n in names))
    version = PROFILES[profile].record_version(plan.type_hint)
    return [r for r in records if r.sample < k and r.prompt_version == version]


async def merge(store: BlobStore, doc: DocPaths, k: int, profile: str = "full") -> MergeSummary:
    """Always recomputed from the call records (cheap, no LLM), then written over the previous merge.
    `profile`: the pool's output profile, as the extract summaries report it."""
    if profile not in PROFILES:
        raise ValueError(f"document {doc.doc_id}: unknown output profile {profile!r}; one of {sorted(PROFILES)}")
    plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    records = await read_calls(store, doc, k, plan=plan, profile=profile)
    tallies = tally(records, expected_per_chunk=k)
    merged = MergedRecord(
        matter_id=doc.matter_id, doc_id=doc.doc_id, calls=len(records),
        calls_failed=sum(r.output is None for r in records),
        fields={name: t.ranked() for name, t in tallies.items()},
        field_samples={name: t.samples for name, t in tallies.items()},
        backends=dict(Counter(r.backend or "?" for r in records if r.output is not None)),
        inputs=inputs_key(k, plan.chunk_pages, plan.overlap_chars), profile=profile,
    )
    await store.put_model(doc.merged, merged)
    return MergeSummary(doc_id=doc.doc_id, merged=doc.merged, calls=merged.calls,
                        fields_found=sum(bool(c) for c in merged.fields.values()))
