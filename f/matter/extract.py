"""Extract one batch of chunks: k independent LLM calls per chunk across the pool, cached by content hash."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.extract import extract


class matter_store(TypedDict):
    container: str


class llm_pool(TypedDict):
    backends: list


@boundary
def main(store: matter_store, pool: llm_pool, matter_id: str, doc_id: str, batch: int, k: int = 3) -> dict:
    doc = DocPaths(matter_id, doc_id)
    return run_stage(lambda blob: extract(blob, pool, doc, batch=batch, k=k), store, matter_id)
