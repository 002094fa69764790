"""Ingest one document: validate the source blob, hash it, count pages, find the text layer, write the manifest."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.ingest import ingest


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, doc_id: str) -> dict:
    doc = DocPaths(matter_id, doc_id)
    return run_stage(lambda blob: ingest(blob, doc), store, matter_id)
