"""The records the stages write to the store and read back: the pipeline's shared vocabulary."""

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TextSource = Literal["text_layer", "ocr"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PageInfo(Record):
    page: int = Field(ge=1, description="1-based page number")
    has_text_layer: bool
    chars: int = Field(ge=0, description="characters in the text layer")
    width_pt: float
    height_pt: float


class Manifest(Record):
    """Written by ingest: what the source is, and its pages."""

    matter_id: str
    doc_id: str
    source_name: str = Field(description="the file name the user gave the document")
    source_path: str
    pdf_path: str = Field(description="the PDF the pages are read from: the source, or its conversion from an image")
    source_kind: str = "pdf"
    sha256: str
    size_bytes: int
    pages: int
    page_info: list[PageInfo]
    stage_version: str
    created_at: datetime = Field(default_factory=utcnow)


class Word(Record):
    text: str
    conf: float = Field(ge=0.0, le=1.0, description="1.0 for a text layer, the OCR engine's confidence otherwise")
    bbox: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in PDF points, origin top-left")


class PageText(Record):
    """Written by split: one page's text, its words, and where they came from."""

    page: int = Field(ge=1)
    source: TextSource
    text: str
    words: list[Word]
    word_count: int
    avg_word_confidence: float = Field(ge=0.0, le=1.0)


class Chunk(Record):
    """A run of pages sent to the model together, with the neighbours' edges as read-only context."""

    chunk_id: str
    pages: list[int] = Field(description="the pages this chunk owns")
    text_by_page: dict[int, str]
    context_before: str = Field(default="", description="tail of the page before the chunk")
    context_after: str = Field(default="", description="head of the page after the chunk")
    content_hash: str


class ChunkRef(Record):
    chunk_id: str
    pages: list[int]
    content_hash: str


class ChunkPlan(Record):
    doc_id: str
    chunk_pages: int
    overlap_chars: int
    batch_size: int = Field(description="chunks per extract job")
    type_hint: str | None = Field(default=None, description="the likely document type from its first page's words "
                                                             "(f.extraction.doctype); narrows the compact schema")
    type_hint_version: str | None = Field(default=None, description="the rules that gave it (DOCTYPE_VERSION)")
    chunks: list[ChunkRef]

    @property
    def batch_count(self) -> int:
        return -(-len(self.chunks) // self.batch_size)

    def batch(self, index: int) -> list[ChunkRef]:
        if not 0 <= index < self.batch_count:
            raise IndexError(f"batch {index} out of range 0..{self.batch_count - 1}")
        return self.chunks[index * self.batch_size:(index + 1) * self.batch_size]


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class CallRecord(Record):
    """One LLM call's outcome, cached in the store by the hash of everything that determines it."""

    chunk_id: str
    sample: int
    call_hash: str
    prompt_version: str
    backend: str | None = None
    model: str | None = None
    latency_s: float | None = None
    attempts: int = 0
    usage: Usage = Field(default_factory=Usage)
    logprob_mean: float | None = Field(default=None, description="mean token logprob, where the backend gives it")
    temperature: float = Field(default=0.0, description="sampled above 0 when a sibling sample had the same backend")
    output: dict[str, Any] | None = Field(default=None, description="the validated extraction, or None")
    error: str | None = None


class Candidate(Record):
    value: Any
    votes: int
    backends: list[str]
    page: int | None = None
    quote: str | None = None
    chunk_id: str | None = None


class FieldResult(Record):
    value: Any
    confidence: float = Field(ge=0.0, le=1.0)
    page: int | None = None
    evidence: str | None = None
    candidates: list[Candidate] = Field(default_factory=list)


class PageConfidence(Record):
    page: int
    source: TextSource
    words: int
    avg_word_confidence: float


class PageIndex(Record):
    """Written by split: every page's source and word statistics, without the words."""

    doc_id: str
    pages: list[PageConfidence]


class WordConfidence(Record):
    document: float
    pages: list[PageConfidence]
    low_pages: list[int] = Field(default_factory=list)


class MergedRecord(Record):
    """Written by merge: every field's candidates, with provenance, before scoring."""

    matter_id: str
    doc_id: str
    calls: int
    calls_failed: int
    fields: dict[str, list[Candidate]] = Field(description="candidates per field, most votes first")
    field_samples: dict[str, int] = Field(description="samples of the chunks where the field was found")
    backends: dict[str, int] = Field(default_factory=dict, description="successful calls per backend")
    inputs: str | None = Field(default=None, description="key of the settings and versions it was made with "
                                                         "(f.pipeline.finished.inputs_key)")
    profile: str = Field(default="full", description="the output profile of the calls it merged")
    at: datetime = Field(default_factory=utcnow)


class ReviewRecord(Record):
    """A person's decision at the approval step: corrected values replace the model's, the scored record is kept."""

    decision: Literal["approved", "rejected"]
    reviewer: str | None = None
    comment: str | None = None
    corrections: dict[str, Any] = Field(default_factory=dict)
    original: str = Field(description="the scored record as it was before review (result.original.json)")
    scored_hash: str = Field(description="hash of the scored fields the review applies to")
    at: datetime = Field(default_factory=utcnow)


class DocumentResult(Record):
    """Written by score: the final record of one document (with `review` once a person approved it)."""

    matter_id: str
    doc_id: str
    source_name: str
    status: Literal["ok", "failed"] = "ok"
    document_type: str | None = None
    fields: dict[str, FieldResult] = Field(default_factory=dict)
    confidence: float = 0.0
    needs_review: bool = False
    reasons: list[str] = Field(default_factory=list)
    word_confidence: WordConfidence | None = None
    pages: int = 0
    llm_calls: int = 0
    error: str | None = None
    review: ReviewRecord | None = None
    at: datetime = Field(default_factory=utcnow)


class FailureRecord(Record):
    matter_id: str
    doc_id: str | None
    step: str
    error: str
    at: datetime = Field(default_factory=utcnow)
