"""A document's likely type from the words of its first page: the hint that narrows the compact schema.

Cheap and deterministic. Under the compact profile the type chooses the fields asked, and the result's
document_type is this type, not the models' answer; a first page that matches no rule gets every field asked,
the type among them. A small model asked for a field its document does not hold fills it
with a neighbour's value (asked for all ten fields, Gemma 3 270M named a court on an invoice), and asked for
the document's type it is right one time in three (scripts/measure-models); the words below are not.
"""

import re

HEAD_CHARS = 600  # the heading and the first lines: where a document says what it is
READ_CHARS = 4000

RULES: dict[str, tuple[str, ...]] = {
    "court_filing": (r"\bcase no\b", r"\bplaintiffs?\b", r"\bdefendants?\b", r"\bdistrict court\b", r"\bcourt of\b",
                     r"\bdocket\b", r"\bcomplaint\b", r"\bmotion\b", r"\bcivil action\b"),
    "invoice": (r"\binvoice\b", r"\bamount due\b", r"\bbill to\b", r"\bremit\b", r"\bbalance due\b",
                r"\bprofessional services rendered\b"),
    "engagement_letter": (r"\bengagement letter\b", r"\bterms of engagement\b", r"\bscope of (?:the |our )?engagement\b",
                          r"\bretainer\b", r"\bour fees\b"),
    "contract": (r"\bagreement\b", r"\bwhereas\b", r"\bin witness whereof\b", r"\bthe parties\b",
                 r"\bhereby agree\b", r"\beffective date\b"),
}
SPECIFIC = ("court_filing", "invoice", "engagement_letter")  # a heading that names one of these settles it
LETTER = re.compile(r"^\W*(?:dear\b|re\s*:)", re.IGNORECASE | re.MULTILINE)  # a salutation or a subject line
_COMPILED = {kind: [re.compile(p, re.IGNORECASE) for p in patterns] for kind, patterns in RULES.items()}
DOCTYPE_VERSION = "d2"
"""Changes when a rule does: split gives plans of an older version the current hint."""


def _first_hit(kind: str, text: str) -> int | None:
    hits = [m.start() for p in _COMPILED[kind] if (m := p.search(text))]
    return min(hits) if hits else None


def guess_document_type(first_page: str) -> str | None:
    """The specific type (court filing, invoice, engagement letter) whose word comes first in the heading
    settles it; else a letter's salutation or subject line makes it correspondence (OCR may garble one);
    else contract words make it a contract; else the specific type with most words, or None."""
    head, body = first_page[:HEAD_CHARS], first_page[:READ_CHARS]
    headed = {kind: at for kind in SPECIFIC if (at := _first_hit(kind, head)) is not None}
    if headed:
        return min(headed, key=lambda kind: headed[kind])  # the invoice's time entries may say "complaint"
    scores = {kind: sum(bool(p.search(body)) for p in patterns) for kind, patterns in _COMPILED.items()}
    if LETTER.search(body):
        return "correspondence"
    if scores["contract"]:
        return "contract"
    specific = max(SPECIFIC, key=lambda kind: scores[kind])
    return specific if scores[specific] else None
