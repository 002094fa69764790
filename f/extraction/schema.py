"""What the model is asked to return for a chunk: the core fields, each with the page and quote it came from."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DocumentType = Literal["engagement_letter", "contract", "court_filing", "invoice", "correspondence", "other"]

SCHEMA_VERSION = "core-v1"


class Found(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int | None = Field(default=None, description="page number the value is on")
    quote: str | None = Field(default=None, description="the exact words from the page that give the value")


class TextField(Found):
    value: str | None = None


class DateField(Found):
    value: str | None = Field(default=None, description="ISO date YYYY-MM-DD")


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: float
    currency: str = Field(description="ISO 4217 code, e.g. USD")


class MoneyField(Found):
    value: Money | None = None


class NamesField(Found):
    value: list[str] = Field(default_factory=list)


class DocTypeField(Found):
    value: DocumentType | None = None


class ChunkExtraction(BaseModel):
    """One model's reading of one chunk. Null where the chunk does not state the value."""

    model_config = ConfigDict(extra="forbid")
    document_type: DocTypeField = Field(default_factory=DocTypeField)
    matter_number: TextField = Field(default_factory=TextField)
    client_name: TextField = Field(default_factory=TextField)
    counterparty: TextField = Field(default_factory=TextField)
    document_date: DateField = Field(default_factory=DateField)
    total_amount: MoneyField = Field(default_factory=MoneyField)
    court: TextField = Field(default_factory=TextField)
    case_number: TextField = Field(default_factory=TextField)
    governing_law: TextField = Field(default_factory=TextField)
    signatories: NamesField = Field(default_factory=NamesField)


CORE_FIELDS: tuple[str, ...] = tuple(ChunkExtraction.model_fields)

FIELD_HINTS: dict[str, str] = {
    "document_type": "engagement_letter, contract, court_filing, invoice, correspondence or other",
    "matter_number": "the law firm's matter or file number, as written",
    "client_name": "the firm's client",
    "counterparty": "the other side: opposing party, vendor or other contracting party",
    "document_date": "the date of the document, YYYY-MM-DD",
    "total_amount": "the total amount due or the contract value, with its currency",
    "court": "the court, for court filings only",
    "case_number": "the court's case or docket number, for court filings only",
    "governing_law": "the governing law, for contracts and letters",
    "signatories": "names of the people who sign",
}
