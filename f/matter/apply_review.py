"""After an approval: write the reviewed record (corrected values, a `review` section), keeping the original."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.review import apply_review


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, doc_id: str, resume: dict,
         approvers: list = []) -> dict:  # noqa: B006 (Windmill passes every argument)
    doc = DocPaths(matter_id, doc_id)
    return run_stage(lambda blob: apply_review(blob, doc, resume, approvers), store, matter_id)
