"""Score one document: confidence per field and document, word confidence per page, needs_review."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.score import score


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, doc_id: str) -> dict:
    doc = DocPaths(matter_id, doc_id)
    return run_stage(lambda blob: score(blob, doc), store, matter_id)
