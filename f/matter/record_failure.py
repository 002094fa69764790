"""Record a failure where a person will find it: in the document's folder, or at the matter's root."""

from typing import TypedDict

from f.core.job import OptionalId, boundary, run_stage
from f.core.layout import DocPaths, MatterPaths
from f.pipeline.failure import record_failure


class matter_store(TypedDict):
    container: str


@boundary(doc_id=OptionalId, message=str)
def main(store: matter_store, matter_id: str, step: str, message: str, doc_id: str = "") -> dict:
    where = DocPaths(matter_id, doc_id) if doc_id else MatterPaths(matter_id)
    return run_stage(lambda blob: record_failure(blob, where, step, message), store, matter_id)
