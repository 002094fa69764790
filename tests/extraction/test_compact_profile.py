import pytest
from pydantic import ValidationError

from f.extraction.chunking import plan_chunks
from f.extraction.compact import CompactExtraction, compact_schema, parse_amount, parse_date
from f.extraction.doctype import guess_document_type
from f.extraction.profiles import PROFILES
from f.extraction.schema import ChunkExtraction

PAGES = {
    1: "HARTWELL & PIKE LLP\nMarch 4, 2025\nRe: Engagement Letter\nMatter No. HP-2025-0147\nDear Ms. Whitcombe:",
    2: "We ask for a retainer of $25,000.00.\nThis letter is governed by the laws of the State of New York.\n"
       "By: Daniel Chen, Partner\nBy: Laura Whitcombe, General Counsel",
}
ANSWER = {
    "document_type": "engagement_letter", "matter_number": "HP-2025-0147", "client_name": "Acme Robotics, Inc.",
    "counterparty": None, "document_date": "March 4, 2025", "total_amount": "$25,000.00",
    "court": None, "case_number": None, "governing_law": "New York", "signatories": ["Daniel Chen"],
}


def test_compact_answers_get_the_page_and_the_words_they_stand_on():
    (chunk,) = plan_chunks(PAGES, chunk_pages=2, overlap_chars=0)
    out = ChunkExtraction.model_validate(PROFILES["compact"].to_output(ANSWER, chunk, CompactExtraction))
    assert (out.matter_number.page, out.matter_number.quote) == (1, "HP-2025-0147")
    assert (out.document_date.page, out.document_date.quote) == (1, "March 4, 2025")
    assert out.total_amount.value.value == 25000.0 and out.total_amount.page == 2
    assert out.total_amount.quote == "$25,000.00" and out.total_amount.value.currency == "USD"
    assert out.governing_law.page == 2 and out.signatories.value == ["Daniel Chen"] and out.signatories.page == 2
    # A value the model made up stands on no page: no quote, so grounding scores it low.
    assert out.client_name.value == "Acme Robotics, Inc." and out.client_name.quote is None
    assert out.court.value is None and out.counterparty.value is None


def test_the_compact_schema_bounds_what_a_small_model_can_write():
    with pytest.raises(ValidationError):
        CompactExtraction.model_validate({**ANSWER, "document_date": "x" * 41})
    with pytest.raises(ValidationError):
        CompactExtraction.model_validate({k: v for k, v in ANSWER.items() if k != "court"})  # every key required
    with pytest.raises(ValidationError):
        CompactExtraction.model_validate({**ANSWER, "client_name": "x" * 81})
    schema = CompactExtraction.model_json_schema()
    assert set(schema["required"]) == set(ANSWER)


def test_dates_and_amounts_are_read_from_the_words_the_model_copied():
    assert parse_date("March 4, 2025") == parse_date("03/04/2025") == parse_date("4 March 2025") == "2025-03-04"
    assert parse_date("Dated: New York, New York July 14, 2025") == "2025-07-14"
    assert parse_date("March 4") is None and parse_date("soon") is None and parse_date(None) is None
    assert parse_amount("$11,275.00") == {"value": 11275.0, "currency": "USD"}
    assert parse_amount("EUR 25.000") == {"value": 25.0, "currency": "EUR"}
    assert parse_amount("£1,200") == {"value": 1200.0, "currency": "GBP"}
    assert parse_amount("none stated") is None


def test_a_document_type_narrows_the_compact_schema_to_its_fields_and_answers_the_type():
    invoice = compact_schema("invoice")
    assert set(invoice.model_fields) == {"document_type", "matter_number", "client_name", "document_date",
                                         "total_amount"}
    assert compact_schema(None) is CompactExtraction and compact_schema("other") is CompactExtraction
    answer = invoice.model_validate({"document_type": "invoice", "matter_number": "HP-1", "client_name": None,
                                     "document_date": "June 30, 2025", "total_amount": "$11,275.00"})
    assert answer.values()["total_amount"] == {"value": 11275.0, "currency": "USD"}
    assert invoice.model_json_schema()["properties"]["document_type"]["const"] == "invoice"  # the grammar writes it
    with pytest.raises(ValidationError):
        invoice.model_validate({"document_type": "contract", "matter_number": None, "client_name": None,
                                "document_date": None, "total_amount": None})
    (chunk,) = plan_chunks(PAGES, chunk_pages=2, overlap_chars=0)
    typed, full = PROFILES["compact"].request(chunk, "invoice"), PROFILES["compact"].request(chunk, None)
    assert typed.version != full.version and "- court:" not in typed.messages[1]["content"]
    assert "- court:" in full.messages[1]["content"]


def test_first_page_words_tell_the_document_type():
    assert guess_document_type("INVOICE\nInvoice No.: 2025-06-0311\nBill To: Acme") == "invoice"
    assert guess_document_type("UNITED STATES DISTRICT COURT\nACME, Plaintiff, v. BOREALIS, Defendant.\n"
                               "COMPLAINT") == "court_filing"
    assert guess_document_type("Re: Engagement Letter\nDear Ms. Whitcombe:\nThe retainer...") == "engagement_letter"
    assert guess_document_type("Re: Notice of Breach - Master Services Agreement\nDear Ms. Chen:") == "correspondence"
    assert guess_document_type("MASTER SERVICES AGREEMENT\nWHEREAS, Provider...") == "contract"
    assert guess_document_type("Minutes of the weekly call") is None


def test_profiles_hash_apart_so_their_calls_never_mix():
    (chunk,) = plan_chunks(PAGES, chunk_pages=2, overlap_chars=0)
    full, compact = PROFILES["full"].request(chunk, "invoice"), PROFILES["compact"].request(chunk, "invoice")
    assert full.version != compact.version
    assert "quote" in full.messages[0]["content"] and "quote" not in compact.messages[0]["content"]


def test_records_of_the_typed_and_the_full_compact_schema_carry_different_versions():
    compact, full = PROFILES["compact"], PROFILES["full"]
    assert compact.record_version("invoice") != compact.record_version(None)
    assert full.record_version("invoice") == full.record_version(None) == full.prompt_version
