"""Where everything lives in the store: one prefix per matter, one sub-prefix per document."""

from dataclasses import dataclass

from f.core.ids import check_id

ROOT = "matters"


@dataclass(frozen=True)
class MatterPaths:
    matter_id: str

    def __post_init__(self) -> None:
        check_id(self.matter_id, "matter id")

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.matter_id}/"

    @property
    def rollup(self) -> str:
        return f"{self.prefix}rollup.json"

    @property
    def failure(self) -> str:
        return f"{self.prefix}failure.json"

    @property
    def llm_boards(self) -> str:
        """The LLM pool's shared budgets for this matter's jobs ('_' cannot start a document id)."""
        return f"{self.prefix}_llm/boards/"

    def doc(self, doc_id: str) -> "DocPaths":
        return DocPaths(self.matter_id, doc_id)

    def owns(self, path: str) -> bool:
        return path.startswith(self.prefix) and ".." not in path.split("/")


@dataclass(frozen=True)
class DocPaths:
    matter_id: str
    doc_id: str

    def __post_init__(self) -> None:
        check_id(self.matter_id, "matter id")
        check_id(self.doc_id, "document id")

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.matter_id}/{self.doc_id}/"

    @property
    def source(self) -> str:
        return f"{self.prefix}source.pdf"

    @property
    def converted(self) -> str:
        """An image upload as a PDF of image-only pages, so later stages read one format."""
        return f"{self.prefix}converted.pdf"

    @property
    def manifest(self) -> str:
        return f"{self.prefix}manifest.json"

    @property
    def page_index(self) -> str:
        return f"{self.prefix}pages.json"

    def page(self, n: int) -> str:
        return f"{self.prefix}pages/{n:05d}.json"

    @property
    def chunk_plan(self) -> str:
        return f"{self.prefix}chunks.json"

    def chunk(self, chunk_id: str) -> str:
        return f"{self.prefix}chunks/{check_id(chunk_id, 'chunk id')}.json"

    def extraction(self, chunk_id: str, call_hash: str) -> str:
        return f"{self.prefix}extractions/{check_id(chunk_id, 'chunk id')}/{check_id(call_hash, 'hash')}.json"

    def claim(self, chunk_id: str, call_hash: str) -> str:
        """Who is making that LLM call right now (f.pipeline.claims): held while the call is in flight."""
        return f"{self.prefix}claims/{check_id(chunk_id, 'chunk id')}/{check_id(call_hash, 'hash')}.json"

    @property
    def merged(self) -> str:
        return f"{self.prefix}merged.json"

    @property
    def result(self) -> str:
        return f"{self.prefix}result.json"

    @property
    def failure(self) -> str:
        return f"{self.prefix}failure.json"
