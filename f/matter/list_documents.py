"""List the documents of a matter: every folder under its prefix that holds a source.pdf. Given the run's
settings, only those without a current result for them (f.pipeline.finished), so a re-run of a finished
matter starts nothing per document."""

from typing import TypedDict

from pydantic import RootModel

from f.core.job import boundary, run_stage
from f.core.layout import MatterPaths
from f.pipeline.finished import inputs_key, unfinished
from f.pipeline.rollup import list_documents


class matter_store(TypedDict):
    container: str


@boundary
def main(store: matter_store, matter_id: str, k: int | None = None, chunk_pages: int | None = None,
         overlap_chars: int | None = None, review: bool = False) -> list:
    matter = MatterPaths(matter_id)

    async def listing(blob):
        doc_ids = await list_documents(blob, matter)
        if k is not None and chunk_pages is not None and overlap_chars is not None:
            key = inputs_key(k, chunk_pages, overlap_chars)
            doc_ids = await unfinished(blob, [matter.doc(d) for d in doc_ids], key, review=review)
        return RootModel[list[str]](doc_ids)

    return run_stage(listing, store, matter_id)
