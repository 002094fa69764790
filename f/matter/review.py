"""Approval step of process_document: show a person the fields to check, with the resume and cancel URLs.

The flow suspends after this step until someone approves (resume URL, optionally with corrected values in the
resume form) or rejects (cancel URL). Windmill's approval page shows this result and the form.
"""

from typing import TypedDict

import wmill

from f.core.job import boundary, run_stage
from f.core.layout import DocPaths
from f.pipeline.review import review_request


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, doc_id: str) -> dict:
    doc = DocPaths(matter_id, doc_id)
    request = run_stage(lambda blob: review_request(blob, doc), store, matter_id)
    urls = wmill.get_resume_urls()
    return {**request, "resume": urls["resume"], "cancel": urls["cancel"], "approvalPage": urls["approvalPage"]}
