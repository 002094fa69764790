"""Rollup: the documents of a matter, their status, and what needs a person."""

import asyncio
import json
from typing import TypeVar

from pydantic import BaseModel

from f.core.ids import check_id, is_valid_id
from f.core.layout import DocPaths, MatterPaths
from f.core.models import DocumentResult, FailureRecord, utcnow
from f.core.links import Linked, link_fields
from f.core.storage import BlobStore, NotFound
from f.pipeline.sources import source_name

MAX_ROWS_IN_SUMMARY = 40
M = TypeVar("M", bound=BaseModel)


class DocumentRow(BaseModel):
    doc_id: str
    source_name: str
    status: str
    document_type: str | None = None
    confidence: float | None = None
    needs_review: bool = False
    reasons: list[str] = []
    error: str | None = None


class Rollup(Linked):
    matter_id: str
    documents: int
    ok: int
    failed: int
    needs_review: int
    rows: list[DocumentRow]
    rollup: str


async def list_documents(store: BlobStore, matter: MatterPaths, *, invalid: bool = False) -> list[str]:
    """Documents of a matter: every folder under its prefix that holds a source.pdf. A folder whose name is
    not a valid document id (put there by hand) cannot be processed; `invalid=True` lists it too."""
    names = await store.list_names(matter.prefix)
    found = sorted({n[len(matter.prefix):].split("/")[0] for n in names if n.endswith("/source.pdf")})
    return found if invalid else [d for d in found if is_valid_id(d)]


def _invalid_row(doc_id: str) -> DocumentRow:
    try:
        check_id(doc_id, "document id")
        reason = "invalid document id"
    except ValueError as e:
        reason = str(e)
    shown = doc_id[:200]
    return DocumentRow(doc_id=shown, source_name=shown, status="failed",
                       error=f"list_documents: {reason}; rename the folder to process it")


async def _read(store: BlobStore, path: str, model: type[M]) -> M | None:
    try:
        return await store.read_model(path, model)
    except NotFound:
        return None


async def latest_outcome(store: BlobStore, doc: DocPaths) -> DocumentResult | FailureRecord | None:
    """The document's newest outcome: a failure after a success means the last run failed."""
    result = await _read(store, doc.result, DocumentResult)
    failure = await _read(store, doc.failure, FailureRecord)
    if failure and (result is None or failure.at > result.at):
        return failure
    return result


async def _row(store: BlobStore, matter: MatterPaths, doc_id: str) -> DocumentRow:
    if not is_valid_id(doc_id):
        return _invalid_row(doc_id)
    doc = matter.doc(doc_id)
    outcome = await latest_outcome(store, doc)
    if isinstance(outcome, DocumentResult):
        return DocumentRow(doc_id=doc_id, source_name=outcome.source_name, status="ok",
                           document_type=outcome.document_type, confidence=outcome.confidence,
                           needs_review=outcome.needs_review, reasons=outcome.reasons)
    name = await source_name(store, doc)
    if isinstance(outcome, FailureRecord):
        return DocumentRow(doc_id=doc_id, source_name=name, status="failed", error=f"{outcome.step}: {outcome.error}")
    return DocumentRow(doc_id=doc_id, source_name=name, status="pending")


async def rollup(store: BlobStore, matter: MatterPaths) -> Rollup:
    doc_ids = await list_documents(store, matter, invalid=True)
    rows = list(await asyncio.gather(*(_row(store, matter, d) for d in doc_ids)))
    full = {"matter_id": matter.matter_id, "at": utcnow().isoformat(), "documents": [r.model_dump() for r in rows]}
    await store.put(matter.rollup, json.dumps(full))
    return Rollup(
        **link_fields(store, matter.rollup),
        matter_id=matter.matter_id, documents=len(rows), ok=sum(r.status == "ok" for r in rows),
        failed=sum(r.status == "failed" for r in rows), needs_review=sum(r.needs_review for r in rows),
        rows=rows[:MAX_ROWS_IN_SUMMARY], rollup=matter.rollup,
    )
