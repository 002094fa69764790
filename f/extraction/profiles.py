"""What one extraction call asks for, by the pool's `output_profile`: the schema, the messages, and how the
validated answer becomes the ChunkExtraction that merge and score read.

- full: ChunkExtraction, every field with value, page and quote (capable models).
- compact: a flat schema of values as written, for small local models, narrowed to the fields of the
  document's type when split could tell it (f.extraction.doctype); page and quote are found in the text.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from f.core.models import Chunk
from f.extraction.compact import COMPACT_SCHEMA_VERSION, CompactAnswer, compact_schema, to_chunk_extraction
from f.extraction.prompt import COMPACT_PROMPT_VERSION, PROMPT_VERSION, build_messages, compact_messages
from f.extraction.schema import SCHEMA_VERSION, ChunkExtraction


@dataclass(frozen=True)
class Request:
    """One chunk's call under a profile: what to send, and the version that goes into the call's hash."""

    schema: type[BaseModel]
    messages: list[dict[str, str]]
    version: tuple[str, ...]
    record_version: str
    """what the call's record holds as its `prompt_version` (Profile.record_version)"""


class Profile(ABC):
    name: str
    prompt_version: str

    def record_version(self, type_hint: str | None) -> str:
        """What a call record's `prompt_version` holds: merge reads only the records of the current version."""
        return self.prompt_version

    @abstractmethod
    def request(self, chunk: Chunk, type_hint: str | None) -> Request: ...

    @abstractmethod
    def to_output(self, answer: dict[str, Any], chunk: Chunk, schema: type[BaseModel]) -> dict[str, Any]:
        """The validated answer (a JSON dict of `schema`) as a ChunkExtraction JSON dict."""


class FullProfile(Profile):
    name, prompt_version = "full", PROMPT_VERSION

    def request(self, chunk: Chunk, type_hint: str | None) -> Request:
        return Request(ChunkExtraction, build_messages(chunk), (PROMPT_VERSION, SCHEMA_VERSION),
                       self.record_version(type_hint))

    def to_output(self, answer: dict[str, Any], chunk: Chunk, schema: type[BaseModel]) -> dict[str, Any]:
        return answer


class CompactProfile(Profile):
    name, prompt_version = "compact", COMPACT_PROMPT_VERSION

    @staticmethod
    def _version(type_hint: str | None) -> tuple[str, ...]:
        return COMPACT_PROMPT_VERSION, COMPACT_SCHEMA_VERSION, compact_schema(type_hint).__name__

    def record_version(self, type_hint: str | None) -> str:
        """The schema too: a plan whose type hint changed (or came) must not merge the other schema's calls."""
        return "/".join(self._version(type_hint))

    def request(self, chunk: Chunk, type_hint: str | None) -> Request:
        schema = compact_schema(type_hint)
        return Request(schema, compact_messages(chunk, schema.model_fields), self._version(type_hint),
                       self.record_version(type_hint))

    def to_output(self, answer: dict[str, Any], chunk: Chunk, schema: type[BaseModel]) -> dict[str, Any]:
        parsed = schema.model_validate(answer)
        assert isinstance(parsed, CompactAnswer)
        return to_chunk_extraction(parsed, chunk).model_dump(mode="json")


PROFILES: dict[str, Profile] = {p.name: p for p in (FullProfile(), CompactProfile())}
