"""Score: per-field and per-document confidence, word confidence per page, and whether a person must look.

A document a person already reviewed keeps its review: when the scored fields are the ones the review was
made on (same hash), the corrections are applied again, so re-running the flow never undoes an approval.
"""

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import (
    Candidate, ChunkPlan, DocumentResult, FieldResult, Manifest, MergedRecord, PageIndex, PageText, ReviewRecord,
)
from f.core.links import Linked, link_fields
from f.core.storage import BlobStore, NotFound
from f.extraction.calibration import calibration_for
from f.extraction.score import required_fields, review_reasons, score_all, word_confidence
from f.pipeline.merge import read_calls


class FieldRow(BaseModel):
    field: str
    value: Any
    confidence: float
    page: int | None


class ScoreSummary(Linked):
    doc_id: str
    source_name: str
    document_type: str | None
    confidence: float
    needs_review: bool
    reasons: list[str]
    avg_word_confidence: float
    low_confidence_pages: list[int] = []
    calibration: str = ""
    fields: list[FieldRow]
    result: str
    reviewed: bool = False


def _short(value: Any, limit: int = 120) -> Any:
    text = value if isinstance(value, str) else None
    return text[:limit] + "…" if text and len(text) > limit else value


def original_path(doc: DocPaths) -> str:
    return f"{doc.prefix}result.original.json"


def review_path(doc: DocPaths) -> str:
    return f"{doc.prefix}review.json"


def scored_hash(fields: dict[str, FieldResult]) -> str:
    data = {n: [f.value, f.page, f.evidence] for n, f in sorted(fields.items())}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


def apply_corrections(scored: DocumentResult, review: ReviewRecord) -> DocumentResult:
    """The final record: corrected fields at confidence 1.0, the model's answer kept among the candidates."""
    fields = dict(scored.fields)
    for name, value in review.corrections.items():
        before = fields.get(name)
        if before is None:
            continue
        beaten = ([Candidate(value=before.value, votes=0, backends=["model"], page=before.page, quote=before.evidence)]
                  if before.value not in (None, [], "") and before.value != value else [])
        fields[name] = FieldResult(value=value, confidence=1.0, page=before.page, evidence="corrected by reviewer",
                                   candidates=beaten + before.candidates)
    document_type = fields["document_type"].value if "document_type" in fields else scored.document_type
    return scored.model_copy(update={
        "fields": fields, "document_type": document_type, "needs_review": False, "reasons": [],
        "confidence": 1.0 if review.decision == "approved" else scored.confidence, "review": review})


async def score(store: BlobStore, doc: DocPaths) -> ScoreSummary:
    manifest = await store.read_model(doc.manifest, Manifest)
    merged = await store.read_model(doc.merged, MergedRecord)
    index = await store.read_model(doc.page_index, PageIndex)
    cited = sorted({n for cands in merged.fields.values() for c in cands if c.page
                    for n in (c.page, c.page + 1) if 1 <= n <= manifest.pages})
    pages = [await store.read_model(doc.page(n), PageText) for n in cited]
    calibration = calibration_for(list(merged.backends))
    uses_logprobs = any(calibration.coef.get(f, 0.0) for f in ("logprob", "has_logprob"))
    calls = await read_calls(store, doc, k=1 << 16, profile=merged.profile) if uses_logprobs else []
    words = word_confidence(sorted(index.pages, key=lambda p: p.page))
    scored = score_all(merged, pages, calls, calibration, doc_quality=words.document)
    fields = {name: s.result for name, s in scored.items()}
    document_type = fields["document_type"].value
    plan = await store.read_model(doc.chunk_plan, ChunkPlan)
    k = round(merged.calls / len(plan.chunks)) if plan.chunks else None
    reasons = review_reasons(document_type, fields, merged, calibration,
                             excluded={n: s.injected for n, s in scored.items() if s.injected}, k=k)
    confidence = min((fields[name].confidence for name in required_fields(document_type)), default=0.0)
    result = DocumentResult(
        matter_id=doc.matter_id, doc_id=doc.doc_id, source_name=manifest.source_name, document_type=document_type,
        fields=fields, confidence=round(confidence, 4), needs_review=bool(reasons), reasons=reasons,
        word_confidence=words, pages=manifest.pages,
        llm_calls=merged.calls,
    )
    try:
        review = await store.read_model(review_path(doc), ReviewRecord)
    except NotFound:
        review = None
    if review is not None and review.decision == "approved" and review.scored_hash == scored_hash(fields):
        await store.put_model(original_path(doc), result)
        result = apply_corrections(result, review)
    await store.put_model(doc.result, result)
    await store.delete(doc.failure)  # an earlier run's failure no longer describes the document
    words = result.word_confidence
    return ScoreSummary(
        **link_fields(store, doc.result),
        doc_id=doc.doc_id, source_name=manifest.source_name, document_type=result.document_type,
        confidence=result.confidence, needs_review=result.needs_review, reasons=result.reasons[:20],
        avg_word_confidence=words.document if words else 0.0, low_confidence_pages=(words.low_pages if words else [])[:50],
        calibration=calibration.name,
        fields=[FieldRow(field=n, value=_short(f.value), confidence=f.confidence, page=f.page)
                for n, f in result.fields.items()],
        result=doc.result, reviewed=result.review is not None,
    )
