"""A governing law by the one jurisdiction it names (ISO 3166 names through pycountry)."""

import pytest

from f.extraction.jurisdiction import jurisdiction, jurisdictions


@pytest.mark.parametrize(("text", "named"), [
    ("the laws of the State of Illinois", "Illinois"),
    ("Jurisdiction of the State of New York, New York", "New York"),  # one state, named twice
    ("California Statutes 1927.03", "California"),
    ("laws of West Virginia", "West Virginia"),  # not "Virginia"
    ("the laws of England and Wales", "England and Wales"),  # one legal system
    ("The Law of the United States of America", "United States"),
    ("the law of the Republic of Colombia", "Colombia"),
    ("Province of Québec", "Quebec"),
    ("NEW YORK", "New York"),
    ("Washington, D.C.", "District of Columbia"),
    ("State or Federal Court", None),  # names no jurisdiction
    ("The Law Firm of Halvorsen", None),
    ("Delaware, except the conflict rules of New York", None),  # names two
    ("Newark", None),  # a name inside a word is no name
])
def test_a_value_names_one_jurisdiction_or_is_left_as_written(text: str, named: str | None) -> None:
    assert jurisdiction(text) == named


def test_every_named_jurisdiction_is_listed_once_in_order() -> None:
    assert jurisdictions("Delaware law; courts of New York; Delaware") == ["Delaware", "New York"]
