"""Whether a document is finished for this run's settings, so that re-running a matter leaves it out.

A document is finished when its merged record was made with the same settings and versions (`inputs_key`),
its result was scored after that merge, no failure came after the result, and, when the run asks for
review, it needs none or has had it. The source never changes under a document id (f.pipeline.sources
refuses a different file), so these settings and versions are all its result depends on.

A re-run of a finished matter then starts no process per document: `list_documents` returns only the
documents still to do, and the for-loop over them is empty.
"""

import asyncio
import hashlib
import json

from f.core.layout import DocPaths
from f.core.models import DocumentResult, FailureRecord, MergedRecord
from f.core.storage import BlobStore, NotFound
from f.extraction.prompt import PROMPT_VERSION
from f.extraction.schema import SCHEMA_VERSION

FINISHED_VERSION = "f2"
"""Bump it when merge or score change what a finished result holds: every document is then done again
(merge and score only: the LLM calls stay cached under their own hashes)."""


def inputs_key(k: int, chunk_pages: int, overlap_chars: int) -> str:
    """The settings and versions a result depends on, as one key."""
    data = [FINISHED_VERSION, PROMPT_VERSION, SCHEMA_VERSION, k, chunk_pages, overlap_chars]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:24]


async def _read(store: BlobStore, path: str, model: type) -> object | None:
    try:
        return await store.read_model(path, model)
    except NotFound:
        return None


async def is_finished(store: BlobStore, doc: DocPaths, key: str, *, review: bool = False) -> bool:
    merged, result, failure = await asyncio.gather(
        _read(store, doc.merged, MergedRecord), _read(store, doc.result, DocumentResult),
        _read(store, doc.failure, FailureRecord))
    if not isinstance(merged, MergedRecord) or merged.inputs != key or not isinstance(result, DocumentResult):
        return False
    if result.at < merged.at or (isinstance(failure, FailureRecord) and failure.at > result.at):
        return False
    return not (review and result.needs_review and result.review is None)


async def unfinished(store: BlobStore, docs: list[DocPaths], key: str, *, review: bool = False,
                     limit: int = 16) -> list[str]:
    """The ids of the documents in `docs` not finished for `key`, in the same order."""
    gate = asyncio.Semaphore(limit)

    async def check(doc: DocPaths) -> bool:
        async with gate:
            return await is_finished(store, doc, key, review=review)

    done = await asyncio.gather(*(check(d) for d in docs))
    return [d.doc_id for d, finished in zip(docs, done) if not finished]
