from f.core.models import CallRecord, MergedRecord, PageText, Word
from f.extraction.calibration import calibration_for
from f.extraction.chunking import plan_chunks
from f.extraction.merge import normalize, tally
from f.extraction.prompt import build_messages
from f.extraction.score import page_confidence, review_reasons, score_fields, word_confidence


def page(n: int, text: str, conf: float = 1.0, source: str = "text_layer") -> PageText:
    words = [Word(text=w, conf=conf, bbox=(0, 0, 1, 1)) for w in text.split()]
    return PageText(page=n, source=source, text=text, words=words, word_count=len(words), avg_word_confidence=conf)


def test_chunks_own_their_pages_and_carry_the_neighbours_edges():
    texts = {1: "alpha " * 100, 2: "governing law: the State of", 3: "New York. beta " * 50}
    chunks = plan_chunks(texts, chunk_pages=2, overlap_chars=40)
    assert [c.pages for c in chunks] == [[1, 2], [3]]
    assert chunks[0].context_before == "" and chunks[0].context_after.startswith("New York.")
    assert chunks[1].context_before.endswith("the State of")
    rendered = build_messages(chunks[0])[1]["content"]
    assert '<page number="2">' in rendered and '<context page="3" position="after">' in rendered
    assert plan_chunks(texts, 2, 40)[0].content_hash == chunks[0].content_hash
    assert plan_chunks({**texts, 3: "changed"}, 2, 40)[0].content_hash != chunks[0].content_hash


def record(chunk: str, sample: int, backend: str, **fields) -> CallRecord:
    output = {name: {"value": value, "page": page_no, "quote": quote} for name, (value, page_no, quote) in fields.items()}
    return CallRecord(chunk_id=chunk, sample=sample, call_hash=f"{chunk}{sample}", prompt_version="p",
                      backend=backend, output=output)


def merged_from(records: list[CallRecord]) -> MergedRecord:
    t = tally(records)
    return MergedRecord(matter_id="m", doc_id="d", calls=len(records), calls_failed=0,
                        fields={n: x.ranked() for n, x in t.items()}, field_samples={n: x.samples for n, x in t.items()})


def test_a_total_seen_in_two_chunks_is_one_candidate_not_a_sum():
    total = {"value": 1200.0, "currency": "usd"}
    records = [record("c1", s, f"b{s}", total_amount=(total, 1, "Total: $1,200.00")) for s in range(3)]
    records += [record("c3", s, f"b{s}", total_amount=({"value": 1200, "currency": "USD"}, 3, "$1,200.00")) for s in range(3)]
    merged = merged_from(records)
    assert len(merged.fields["total_amount"]) == 1
    assert merged.fields["total_amount"][0].votes == 6
    assert normalize({"value": 1200, "currency": "usd"}) == "1200.00 USD"
    assert normalize("The State of New York.") == normalize("State of New York") != normalize("New York")


def test_agreement_grounding_and_ocr_confidence_drive_the_score():
    pages = [page(1, "Matter No. M-1 Client: Acme Corp Date: 2024-03-01"), page(2, "blurred Acme", conf=0.4, source="ocr")]
    matter = ["M-1", "M-7", "M-1"]
    c1 = [record("c1", s, f"b{s}", client_name=("Acme Corp", 1, "Client: Acme Corp"),
                 matter_number=(matter[s], 1, f"Matter No. {matter[s]}"),
                 counterparty=("Globex", 1, "Globex Inc")) for s in range(3)]
    c2 = [record("c2", s, f"b{s}", governing_law=("Acme", 2, "Acme")) for s in range(3)]
    merged = merged_from(c1 + c2)
    fields = score_fields(merged, pages)
    # calibrated (f/extraction/calibration_v1.py): 2 of 3 agreeing on a grounded value is usually right, but
    # less sure than 3 of 3; a value found on no page, or read from a poor OCR page, is much less sure
    assert fields["client_name"].confidence > 0.9
    assert fields["matter_number"].confidence < fields["client_name"].confidence
    assert fields["matter_number"].candidates[0].value == "M-7"
    assert fields["counterparty"].confidence < fields["client_name"].confidence - 0.2  # agreed, but on no page
    assert fields["counterparty"].confidence < calibration_for([]).accept_threshold  # so a person looks
    sharp = score_fields(merged, [pages[0], page(2, "blurred Acme", conf=0.95, source="ocr")])
    assert fields["governing_law"].confidence < sharp["governing_law"].confidence  # its page read at 0.4
    reasons = review_reasons("engagement_letter", fields, merged)
    assert any(r.startswith("document_type: not found") for r in reasons)


def test_document_word_confidence_is_weighted_by_words_with_a_floor():
    near_empty = page(2, "Total", conf=0.95, source="ocr")
    full = page(1, " ".join(["word"] * 300), conf=1.0)
    wc = word_confidence([page_confidence(full), page_confidence(near_empty)])
    assert wc.document < 0.9
    assert 2 in wc.low_pages and 1 not in wc.low_pages
