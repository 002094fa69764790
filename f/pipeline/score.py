"""Score: per-field and per-document confidence, word confidence per page, and whether a person must look."""

from typing import Any

from pydantic import BaseModel

from f.core.layout import DocPaths
from f.core.models import DocumentResult, Manifest, MergedRecord, PageIndex, PageText
from f.core.links import Linked, link_fields
from f.core.storage import BlobStore
from f.extraction.score import REQUIRED, review_reasons, score_fields, word_confidence


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
    fields: list[FieldRow]
    result: str


def _short(value: Any, limit: int = 120) -> Any:
    text = value if isinstance(value, str) else None
    return text[:limit] + "…" if text and len(text) > limit else value


async def score(store: BlobStore, doc: DocPaths) -> ScoreSummary:
    manifest = await store.read_model(doc.manifest, Manifest)
    merged = await store.read_model(doc.merged, MergedRecord)
    index = await store.read_model(doc.page_index, PageIndex)
    cited = sorted({c.page for cands in merged.fields.values() for c in cands
                    if c.page and 1 <= c.page <= manifest.pages})
    pages = [await store.read_model(doc.page(n), PageText) for n in cited]
    fields = score_fields(merged, pages)
    document_type = fields["document_type"].value
    reasons = review_reasons(document_type, fields, merged)
    required = REQUIRED["*"] + REQUIRED.get(document_type or "", ())
    confidence = min((fields[name].confidence for name in required), default=0.0)
    result = DocumentResult(
        matter_id=doc.matter_id, doc_id=doc.doc_id, source_name=manifest.source_name, document_type=document_type,
        fields=fields, confidence=round(confidence, 4), needs_review=bool(reasons), reasons=reasons,
        word_confidence=word_confidence(index.pages), pages=manifest.pages, llm_calls=merged.calls,
    )
    await store.put_model(doc.result, result)
    await store.delete(doc.failure)  # an earlier run's failure no longer describes the document
    return ScoreSummary(
        **link_fields(store, doc.result),
        doc_id=doc.doc_id, source_name=manifest.source_name, document_type=document_type,
        confidence=result.confidence, needs_review=result.needs_review, reasons=reasons[:20],
        avg_word_confidence=result.word_confidence.document if result.word_confidence else 0.0,
        fields=[FieldRow(field=n, value=_short(f.value), confidence=f.confidence, page=f.page)
                for n, f in fields.items()],
        result=doc.result,
    )
