"""Record why a document failed, in its own folder, so the rollup and the operator can see it."""

from pydantic import BaseModel

from f.core.layout import DocPaths, MatterPaths
from f.core.models import FailureRecord
from f.core.storage import BlobStore


class FailureSummary(BaseModel):
    doc_id: str | None
    step: str
    error: str
    failure: str


def readable(message: str, limit: int = 2000) -> str:
    """The last line of a traceback-ish message, which is what a person needs first."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "unknown error")[:limit]


async def record_failure(store: BlobStore, where: DocPaths | MatterPaths, step: str, message: str) -> FailureSummary:
    """A document's failure in its folder; a matter-level one (no document) at the matter's root."""
    doc_id = where.doc_id if isinstance(where, DocPaths) else None
    record = FailureRecord(matter_id=where.matter_id, doc_id=doc_id, step=step, error=readable(message))
    await store.put_model(where.failure, record)
    return FailureSummary(doc_id=doc_id, step=step, error=record.error, failure=where.failure)
