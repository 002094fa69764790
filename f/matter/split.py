"""Split one document into page records (text layer, or OCR with word confidence) and overlapping chunks."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.split import split


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, doc_id: str, chunk_pages: int = 2, overlap_chars: int = 400,
         batch_size: int = 4) -> dict:
    doc = DocPaths(matter_id, doc_id)
    return run_stage(lambda blob: split(blob, doc, chunk_pages=chunk_pages, overlap_chars=overlap_chars,
                                        batch_size=batch_size), store, matter_id)
