"""List the documents of a matter: every folder under its prefix that holds a source.pdf."""

from typing import TypedDict

from pydantic import RootModel

from f.core.job import run_stage
from f.core.layout import MatterPaths
from f.pipeline.rollup import list_documents


class matter_store(TypedDict):
    container: str


def main(store: matter_store, matter_id: str) -> list:
    matter = MatterPaths(matter_id)

    async def listing(blob):
        return RootModel[list[str]](await list_documents(blob, matter))

    return run_stage(listing, store, matter_id)
