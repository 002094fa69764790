"""The compact output profile, for small local models: a flat, value-only schema, with page and quote found after.

A 135M-270M model cannot fill ChunkExtraction's 30 nested slots (value, page, quote per field): Gemma 3 270M
answered all-null on 159 of 171 calls. Asked for flat values with every key present and every string bounded,
it answers (scripts/measure-models). Under llama.cpp's grammar, required keys stop a small model from closing
at once (`{}`), and bounded strings stop it running on to max_tokens. The page and the quote that the full
profile asks the model for are then found in the chunk's text: the owned page where a written form of the
value stands best, and the words there. A value that is on no page keeps no quote, so grounding scores it low.
"""

import functools
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from dateutil import parser as dateparser
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model
from rapidfuzz import fuzz

from f.core.models import Chunk
from f.extraction.schema import ChunkExtraction, DocumentType
from f.extraction.score import value_forms

COMPACT_SCHEMA_VERSION = "compact-v3"
FOUND_AT = 80  # fuzzy score (0-100) from which a written form of the value counts as on the page

Text = Annotated[str, StringConstraints(max_length=80)]
Short = Annotated[str, StringConstraints(max_length=40)]
IsoDate = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]

CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_AMOUNT = re.compile(r"(?P<code>[A-Z]{3})?\s*(?P<sign>[$€£¥])?\s*(?P<num>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?P<code2>[A-Z]{3})?")
_NO_YEAR = datetime(1, 1, 1)


def parse_date(written: str | None) -> str | None:
    """An ISO date from a date as a document writes it ("March 4, 2025", "03/04/2025"); None without a year."""
    if not written or not re.search(r"[0-9]{4}", written):
        return None
    try:
        parsed = dateparser.parse(written, default=_NO_YEAR, fuzzy=True)
    except (ValueError, OverflowError):
        return None
    return parsed.date().isoformat() if parsed.year > 1 else None


def parse_amount(written: str | None) -> dict[str, Any] | None:
    """{value, currency} from an amount as written ("$11,275.00", "USD 25,000"); USD when no currency is shown."""
    match = _AMOUNT.search(written or "")
    if match is None:
        return None
    try:
        value = float(match["num"].replace(",", ""))
    except ValueError:
        return None
    currency = match["code"] or match["code2"] or CURRENCY_SIGNS.get(match["sign"] or "$", "USD")
    return {"value": value, "currency": currency}


class CompactAnswer(BaseModel):
    """A compact answer: CompactExtraction's fields, or the subset that compact_schema asks for one type.
    Dates and amounts come as the document writes them (a small model copies far better than it converts:
    asked for ISO dates and JSON numbers, Gemma wrote 2025-06-03 for "June 30, 2025" and 11 for $11,275.00)."""

    model_config = ConfigDict(extra="forbid")

    def values(self) -> dict[str, Any]:
        """ChunkExtraction's values: the date as ISO, the amount as {value, currency}."""
        out = self.model_dump(exclude={"total_amount", "document_date"})
        out["document_date"] = parse_date(getattr(self, "document_date", None))
        out["total_amount"] = parse_amount(getattr(self, "total_amount", None))
        return {k: (None if v == "" else v) for k, v in out.items()}

    def written(self, name: str) -> str | None:
        """The words the model copied for a field, when it is one whose value is converted."""
        return getattr(self, name, None) if name in ("document_date", "total_amount") else None


class CompactExtraction(CompactAnswer):
    """Every key required (null when the part does not state it); strings and lists bounded."""

    document_type: DocumentType | None
    matter_number: Text | None
    client_name: Text | None
    counterparty: Text | None
    document_date: Short | None = Field(description="as written")
    total_amount: Short | None = Field(description="as written, with its currency sign or code")
    court: Text | None
    case_number: Short | None
    governing_law: Text | None
    signatories: Annotated[list[Text], Field(max_length=4)]


TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "engagement_letter": ("matter_number", "client_name", "counterparty", "document_date", "total_amount",
                          "governing_law", "signatories"),
    "contract": ("matter_number", "client_name", "counterparty", "document_date", "total_amount",
                 "governing_law", "signatories"),
    "court_filing": ("matter_number", "client_name", "counterparty", "document_date", "court", "case_number",
                     "signatories"),
    "invoice": ("matter_number", "client_name", "document_date", "total_amount"),
    "correspondence": ("matter_number", "client_name", "counterparty", "document_date", "signatories"),
}
"""The fields a document of a type states (f.extraction.score EXPECTED, plus the matter number): a small model
asked for a field the text does not hold tends to fill it with a neighbour's value."""


@functools.cache
def compact_schema(document_type: str | None = None) -> type[CompactAnswer]:
    """The compact schema for a document of this type: its fields, and the type as a one-value enum. The first
    page's words tell the type far better than the models (f.extraction.doctype), so the grammar writes it;
    the answer still opens with it, as the models' answers were measured (without that key, Gemma read
    another date on the one-page test). Every field, the type among them asked, for None."""
    if document_type not in TYPE_FIELDS:
        return CompactExtraction
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in CompactExtraction.model_fields.items()
                              if name in TYPE_FIELDS[document_type]}
    return create_model(f"Compact_{document_type}", __base__=CompactAnswer,
                        document_type=(Literal[document_type], ...), **fields)  # type: ignore[valid-type]


def _owned_texts(chunk: Chunk) -> list[tuple[int, str, str]]:
    """(page, text with single spaces, its casefold) of each page the chunk owns."""
    texts = [(page, " ".join(chunk.text_by_page[page].split())) for page in chunk.pages]
    return [(page, text, text.casefold()) for page, text in texts]


def locate(name: str, value: Any, pages: list[tuple[int, str, str]],
           written: str | None = None) -> tuple[int | None, str | None]:
    """(page, quote): the owned page where the words the model copied, or a written form of the value, stand
    best, and those words there. `pages`: _owned_texts of the chunk."""
    best: tuple[float, int | None, str | None] = (0.0, None, None)
    for form in ([written] if written else []) + value_forms(name, value):
        needle = " ".join(form.split()).casefold()
        for page, text, folded in pages:
            hit = fuzz.partial_ratio_alignment(needle, folded)
            if hit is not None and hit.score > best[0]:
                best = (hit.score, page, text[hit.dest_start:hit.dest_end])
    score, page, quote = best
    if score >= FOUND_AT:
        return page, quote
    return pages[0][0], None


def to_chunk_extraction(answer: CompactAnswer, chunk: Chunk) -> ChunkExtraction:
    fields: dict[str, dict[str, Any]] = {}
    pages = _owned_texts(chunk)
    for name, value in answer.values().items():
        if value in (None, "", []):
            continue
        if name == "signatories":
            found = [locate(name, [v], pages) for v in value]
            page, quote = next(((p, q) for p, q in found if q), (chunk.pages[0], None))
        elif name == "document_type":
            page, quote = chunk.pages[0], None
        else:
            page, quote = locate(name, value, pages, answer.written(name))
        fields[name] = {"value": value, "page": page, "quote": quote}
    return ChunkExtraction.model_validate(fields)


def compact_output(answer: dict[str, Any], chunk: Chunk) -> dict[str, Any]:
    return to_chunk_extraction(CompactExtraction.model_validate(answer), chunk).model_dump(mode="json")
