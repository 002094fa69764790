"""Bad input: broken and hostile PDFs, the page limit, hostile ids, injected instructions, bad arguments.
The flow-level rows of scripts/chaos, then the rules they rest on, checked directly (fast)."""

import pytest

from embedded.chaos.badpdfs import (
    LETTER_TEXT,
    attachment_pdf,
    image_bomb_pdf,
    javascript_pdf,
    many_pages_pdf,
    text_pdf,
)
from embedded.chaos.scenarios import (
    bad_pdfs_row,
    big_document_row,
    boundary_row,
    hostile_ids_row,
    injection_row,
)
from f.core.job import InvalidInput, boundary
from f.pdf.errors import BadDocument
from f.pdf.inspect import MAX_PAGES, inspect_pdf
from tests.reliability.conftest import check


async def test_bad_pdfs_fail_alone_with_their_reason(corpus):
    check(await bad_pdfs_row(corpus))


async def test_a_document_at_the_page_limit_is_processed_in_bounded_memory(corpus):
    check(await big_document_row(corpus, MAX_PAGES))


async def test_hostile_ids_are_refused_and_nothing_leaves_the_prefix(corpus):
    check(await hostile_ids_row(corpus))


async def test_injected_instructions_change_nothing(corpus):
    row = await injection_row(corpus)
    check(row)
    assert row.checks["model_was_fooled"], "the test must actually fool one backend"


async def test_oversized_and_wrong_typed_inputs_are_refused_at_main(corpus):
    check(await boundary_row(corpus))


# --- the rules themselves ---------------------------------------------------------------------------

def reason(data) -> str:
    with pytest.raises(BadDocument) as caught:
        inspect_pdf(data, doc_label="x.pdf")
    return caught.value.reason


def test_javascript_attachments_and_image_bombs_are_refused():
    assert "JavaScript" in reason(javascript_pdf())
    assert "embedded file" in reason(attachment_pdf())
    assert "30000 x 30000 pixels" in reason(image_bomb_pdf())


def test_javascript_is_found_when_reading_from_a_file(tmp_path):
    path = tmp_path / "js.pdf"
    path.write_bytes(javascript_pdf())
    assert "JavaScript" in reason(path)


def test_the_page_limit_is_exact():
    assert inspect_pdf(many_pages_pdf(MAX_PAGES), doc_label="x").pages == MAX_PAGES
    assert reason(many_pages_pdf(MAX_PAGES + 1)) == f"has {MAX_PAGES + 1} pages, more than the limit of {MAX_PAGES}"


def test_a_plain_letter_is_not_mistaken_for_active_content():
    assert inspect_pdf(text_pdf([LETTER_TEXT + " JavaScript /JavaScript"]), doc_label="x").pages == 1


@boundary
def sample_main(store: dict, matter_id: str, k: int = 3, message: str = "") -> dict:
    return {"matter_id": matter_id, "k": k, "store": store}


STORE = {"container": "matters", "connection_string": "AccountName=a;AccountKey=TOPSECRETKEY;BlobEndpoint=http://x/a"}


def test_the_boundary_passes_values_through_unchanged():
    assert sample_main(STORE, "M-1", k=2) == {"matter_id": "M-1", "k": 2, "store": STORE}


@pytest.mark.parametrize("kwargs, field", [
    ({"matter_id": "M-1", "k": "2"}, "k"),
    ({"matter_id": "M-1", "k": 8}, "k"),
    ({"matter_id": "M-1", "k": True}, "k"),
    ({"matter_id": "../M-1"}, "matter_id"),
    ({"matter_id": "M..1"}, "matter_id"),
    ({"matter_id": "M-1", "message": "x" * 1_000_001}, "message"),
    ({"matter_id": "M-1", "surprise": 1}, "surprise"),
])
def test_the_boundary_names_the_field_and_never_the_value(kwargs, field):
    with pytest.raises(InvalidInput) as caught:
        sample_main(STORE, **kwargs)
    assert field in str(caught.value) and "TOPSECRETKEY" not in str(caught.value)


def test_a_bad_store_is_refused_without_quoting_it():
    with pytest.raises(InvalidInput) as caught:
        sample_main({**STORE, "container": "No_Such", "extra": "TOPSECRETKEY"}, "M-1")
    message = str(caught.value)
    assert "store.container" in message and "store.extra" in message and "TOPSECRETKEY" not in message
