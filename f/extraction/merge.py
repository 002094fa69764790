"""Merge the k samples of every chunk into one candidate list per field, keeping provenance.

Numbers are never added across chunks: a total seen in two chunks is one candidate with more votes.
List fields (signatories) are concatenated and deduplicated name by name.
A governing law counts by the one jurisdiction it names: "California Statutes 1927.03" is a vote for "California".
"""

import re
from collections import defaultdict
from typing import Any

from f.core.models import Candidate, CallRecord
from f.extraction.jurisdiction import jurisdiction
from f.extraction.schema import CORE_FIELDS

LIST_FIELDS = {"signatories"}


def normalize(value: Any) -> str:
    """The key under which two values count as the same answer."""
    if isinstance(value, dict) and "value" in value:
        amount = value.get("value")
        currency = str(value.get("currency") or "").upper()
        try:
            return f"{float(amount):.2f} {currency}"
        except (TypeError, ValueError):
            return f"{amount} {currency}"
    text = re.sub(r"\s+", " ", str(value)).strip().casefold()
    return re.sub(r"^the ", "", text.strip(" .,;:"))  # "The State of New York" is "State of New York"


def answer(field: str, value: Any) -> Any:
    """The answer a value gives for its field: a governing law as the jurisdiction it names, if one."""
    if field == "governing_law" and isinstance(value, str):
        return jurisdiction(value) or value
    return value


def answers(field: str, output: dict[str, Any]) -> list[tuple[Any, int | None, str | None]]:
    """A call's answers for a field, each with the page and quote it cites."""
    item = output.get(field) or {}
    value = item.get("value") if isinstance(item, dict) else None
    if value in (None, "", []):
        return []
    values = value if field in LIST_FIELDS and isinstance(value, list) else [value]
    return [(answer(field, v), item.get("page"), item.get("quote")) for v in values if v not in (None, "")]


class FieldTally:
    """Votes for one field: candidates by normalized value, and how many samples could have voted."""

    def __init__(self, expected_per_chunk: int = 0) -> None:
        self.expected_per_chunk = expected_per_chunk
        self.candidates: dict[str, Candidate] = {}
        self.samples_by_chunk: dict[str, int] = defaultdict(int)
        self.chunks_with_answers: set[str] = set()

    def add(self, record: CallRecord, answers: list[tuple[Any, int | None, str | None]]) -> None:
        self.samples_by_chunk[record.chunk_id] += 1
        if answers:
            self.chunks_with_answers.add(record.chunk_id)
        for value, page, quote in answers:
            key = normalize(value)
            found = self.candidates.get(key)
            if found is None:
                self.candidates[key] = Candidate(value=value, votes=1, backends=[record.backend or "?"],
                                                 page=page, quote=quote, chunk_id=record.chunk_id)
            else:
                found.votes += 1
                if record.backend and record.backend not in found.backends:
                    found.backends.append(record.backend)

    @property
    def samples(self) -> int:
        """Samples of the chunks where anyone found a value: the denominator of agreement. A sample that
        was asked for but never came back valid counts as a vote for nothing, so it lowers confidence."""
        return sum(max(self.samples_by_chunk[c], self.expected_per_chunk) for c in self.chunks_with_answers)

    def ranked(self) -> list[Candidate]:
        """Most votes first; at equal votes a value that stands on its page (it has a quote) before one that
        does not, then the earlier page."""
        return sorted(self.candidates.values(),
                      key=lambda c: (-c.votes, c.quote is None, c.page or 0, normalize(c.value)))


def tally(records: list[CallRecord], expected_per_chunk: int = 0) -> dict[str, FieldTally]:
    """`expected_per_chunk`: the k samples asked for per chunk (missing ones count against agreement)."""
    tallies = {field: FieldTally(expected_per_chunk) for field in CORE_FIELDS}
    for record in sorted(records, key=lambda r: (r.chunk_id, r.sample)):
        if record.output is None:
            continue
        for field in CORE_FIELDS:
            tallies[field].add(record, answers(field, record.output))
    return tallies
