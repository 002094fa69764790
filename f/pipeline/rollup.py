"""Rollup: the documents of a matter, their status, and what needs a person."""

import asyncio
import json

from pydantic import BaseModel

from f.core.layout import MatterPaths
from f.core.models import DocumentResult, FailureRecord, utcnow
from f.core.links import Linked, link_fields
from f.core.storage import BlobStore, NotFound
from f.pipeline.sources import source_name

MAX_ROWS_IN_SUMMARY = 40


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


async def list_documents(store: BlobStore, matter: MatterPaths) -> list[str]:
    """Documents of a matter: every folder under its prefix that holds a source.pdf."""
    names = await store.list_names(matter.prefix)
    return sorted({n[len(matter.prefix):].split("/")[0] for n in names if n.endswith("/source.pdf")})


async def _row(store: BlobStore, matter: MatterPaths, doc_id: str) -> DocumentRow:
    doc = matter.doc(doc_id)
    try:
        r = await store.read_model(doc.result, DocumentResult)
        return DocumentRow(doc_id=doc_id, source_name=r.source_name, status="ok", document_type=r.document_type,
                           confidence=r.confidence, needs_review=r.needs_review, reasons=r.reasons)
    except NotFound:
        pass
    try:
        f = await store.read_model(doc.failure, FailureRecord)
        return DocumentRow(doc_id=doc_id, source_name=await source_name(store, doc), status="failed", error=f"{f.step}: {f.error}")
    except NotFound:
        return DocumentRow(doc_id=doc_id, source_name=doc_id, status="pending")


async def rollup(store: BlobStore, matter: MatterPaths) -> Rollup:
    doc_ids = await list_documents(store, matter)
    rows = list(await asyncio.gather(*(_row(store, matter, d) for d in doc_ids)))
    full = {"matter_id": matter.matter_id, "at": utcnow().isoformat(), "documents": [r.model_dump() for r in rows]}
    await store.put(matter.rollup, json.dumps(full))
    return Rollup(
        **link_fields(store, matter.rollup),
        matter_id=matter.matter_id, documents=len(rows), ok=sum(r.status == "ok" for r in rows),
        failed=sum(r.status == "failed" for r in rows), needs_review=sum(r.needs_review for r in rows),
        rows=rows[:MAX_ROWS_IN_SUMMARY], rollup=matter.rollup,
    )
