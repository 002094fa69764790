"""Roll the documents of a matter up into one summary: status, confidence, what needs a person."""

from typing import TypedDict

from f.core.job import boundary, run_stage
from f.core.layout import MatterPaths
from f.pipeline.rollup import rollup


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str) -> dict:
    matter = MatterPaths(matter_id)
    return run_stage(lambda blob: rollup(blob, matter), store, matter_id)
