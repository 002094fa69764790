"""Merge the chunk results of one document into one record of candidates per field."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.merge import merge


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, doc_id: str, k: int = 3, profile: str = "full") -> dict:
    doc = DocPaths(matter_id, doc_id)
    return run_stage(lambda blob: merge(blob, doc, k, profile), store, matter_id)
