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
SALUTATION = re.compile(r"^\s*dear\b", re.IGNORECASE | re.MULTILINE)  # a letter that is none of the above
_COMPILED = {kind: [re.compile(p, re.IGNORECASE) for p in patterns] for kind, patterns in RULES.items()}


def guess_document_type(first_page: str) -> str | None:
    """A heading word of a specific type (court filing, invoice, engagement letter) settles it; else a letter's
    salutation makes it correspondence; else contract words make it a contract; else the best score, or None."""
    head, body = first_page[:HEAD_CHARS], first_page[:READ_CHARS]
    scores = {kind: sum(3 * bool(p.search(head)) + bool(p.search(body)) for p in patterns)
              for kind, patterns in _COMPILED.items()}
    headed = [kind for kind in SPECIFIC if any(p.search(head) for p in _COMPILED[kind])]
    if headed:
        return max(headed, key=lambda kind: scores[kind])  # ties: the order of SPECIFIC
    specific = max(SPECIFIC, key=lambda kind: scores[kind])
    if SALUTATION.search(body):
        return "correspondence"
    if scores["contract"]:
        return "contract"
    return specific if scores[specific] else None
