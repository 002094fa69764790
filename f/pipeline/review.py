"""Review: what a person sees at the approval step, and how their answer becomes the final record.

The request lists the fields that sent the document to review (a required field under its threshold, missing,
or with conflicting candidates) first, then the others, each with value, confidence, page, evidence and the
candidates it beat. An approval may carry corrected values: they are validated against the field's schema type
and written as the final record (result.json, with a `review` section); the scored record is kept as
result.original.json and the decision as review.json, so nothing the models said is lost. A rejection is the
approval step's cancel URL: the flow fails there and its failure module records why.
"""

from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from f.core.layout import DocPaths
from f.core.models import DocumentResult, MergedRecord, ReviewRecord
from f.core.links import Linked, link_fields
from f.core.storage import BlobStore, NotFound
from f.extraction.calibration import calibration_for
from f.extraction.schema import CORE_FIELDS, ChunkExtraction
from f.extraction.score import required_fields
from f.pipeline.score import apply_corrections, original_path, review_path, scored_hash

MAX_CANDIDATES_SHOWN = 3


class FieldToCheck(BaseModel):
    field: str
    value: Any
    confidence: float
    threshold: float
    required: bool
    flagged: bool
    page: int | None
    evidence: str | None
    candidates: list[Any]


class ReviewRequest(Linked):
    doc_id: str
    source_name: str
    document_type: str | None
    reasons: list[str]
    fields: list[FieldToCheck]
    default_args: dict[str, Any]
    result: str


class ReviewApplied(Linked):
    doc_id: str
    decision: str
    corrected: list[str]
    result: str
    original: str


def _short(value: Any, limit: int = 200) -> Any:
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


async def review_request(store: BlobStore, doc: DocPaths) -> ReviewRequest:
    result = await store.read_model(doc.result, DocumentResult)
    try:  # the profile score used: the one fitted on the backends that answered
        calibration = calibration_for(list((await store.read_model(doc.merged, MergedRecord)).backends))
    except NotFound:
        calibration = calibration_for([])
    required = set(required_fields(result.document_type))
    flagged = {reason.split(":", 1)[0] for reason in result.reasons}
    rows = [FieldToCheck(field=name, value=_short(f.value), confidence=f.confidence,
                         threshold=calibration.threshold(name), required=name in required, flagged=name in flagged,
                         page=f.page, evidence=_short(f.evidence),
                         candidates=[_short(c.value) for c in f.candidates[:MAX_CANDIDATES_SHOWN]])
            for name, f in result.fields.items()]
    rows.sort(key=lambda r: (not r.flagged, not r.required, r.confidence))
    return ReviewRequest(
        **link_fields(store, doc.result), doc_id=doc.doc_id, source_name=result.source_name,
        document_type=result.document_type, reasons=result.reasons[:20], fields=rows,
        default_args={"corrections": {}, "comment": ""}, result=doc.result)


def _value_type(name: str) -> TypeAdapter[Any]:
    found = ChunkExtraction.model_fields[name].annotation
    return TypeAdapter(found.model_fields["value"].annotation)  # type: ignore[union-attr]


def validate_corrections(corrections: dict[str, Any]) -> dict[str, Any]:
    """Corrected values, checked against each field's type in the extraction schema (empty strings dropped)."""
    out: dict[str, Any] = {}
    for name, value in (corrections or {}).items():
        if name not in CORE_FIELDS:
            raise ValueError(f"correction for unknown field {name!r}; fields: {', '.join(CORE_FIELDS)}")
        if value == "" or value is None and name != "total_amount":
            continue
        try:
            checked = _value_type(name).validate_python(value)
        except ValidationError as e:
            raise ValueError(f"correction for {name}: {e.errors()[0]['msg']} (got {value!r})") from None
        out[name] = checked.model_dump() if isinstance(checked, BaseModel) else checked
    return out


async def apply_review(store: BlobStore, doc: DocPaths, resume: dict[str, Any] | None,
                       approvers: list[str] | None = None) -> ReviewApplied:
    payload = resume if isinstance(resume, dict) else {}
    if "error" in payload:  # continue_on_disapprove_timeout: a rejection or a timeout reached this step
        raise RuntimeError(f"review not approved: {payload['error']}")
    corrections = validate_corrections(payload.get("corrections") or {})
    try:
        scored = await store.read_model(original_path(doc), DocumentResult)
        current = await store.read_model(doc.result, DocumentResult)
        if current.review is None:  # scored again since the last review: that is the original now
            scored = current
    except NotFound:
        scored = await store.read_model(doc.result, DocumentResult)
    reviewer = payload.get("approver") or (approvers[-1] if approvers else None)
    review = ReviewRecord(decision="approved", reviewer=reviewer, comment=_short(payload.get("comment") or None, 2000),
                          corrections=corrections, original=original_path(doc), scored_hash=scored_hash(scored.fields))
    await store.put_model(original_path(doc), scored)
    await store.put_model(review_path(doc), review)
    final = apply_corrections(scored, review)
    await store.put_model(doc.result, final)
    return ReviewApplied(**link_fields(store, doc.result), doc_id=doc.doc_id, decision=review.decision,
                         corrected=sorted(corrections), result=doc.result, original=original_path(doc))
