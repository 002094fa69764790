"""A first confidence per field: agreement of the samples, grounding of the quote, OCR confidence of its words."""

import re

from rapidfuzz import fuzz

from f.core.models import Candidate, FieldResult, MergedRecord, PageConfidence, PageText, WordConfidence
from f.extraction.merge import LIST_FIELDS

REVIEW_THRESHOLD = 0.7
LOW_PAGE_CONFIDENCE = 0.8
WORD_FLOOR = 50
REQUIRED: dict[str, tuple[str, ...]] = {
    "*": ("document_type", "client_name", "document_date"),
    "engagement_letter": ("matter_number",),
    "contract": ("counterparty", "governing_law"),
    "court_filing": ("court", "case_number"),
    "invoice": ("matter_number", "total_amount"),
    "correspondence": ("matter_number",),
}
_TOKEN = re.compile(r"[\w$€£.,/-]+")


def page_confidence(page: PageText) -> PageConfidence:
    return PageConfidence(page=page.page, source=page.source, words=page.word_count,
                          avg_word_confidence=round(page.avg_word_confidence, 4))


def word_confidence(rows: list[PageConfidence]) -> WordConfidence:
    """Per page the mean word confidence; per document the mean weighted by words, with a floor, so that a
    near-empty page (OCR dropped its words) cannot look perfect."""
    weight = sum(max(r.words, WORD_FLOOR) for r in rows)
    weighted = sum(r.avg_word_confidence * r.words for r in rows)
    document = weighted / weight if weight else 0.0
    low = [r.page for r in rows if r.avg_word_confidence < LOW_PAGE_CONFIDENCE or r.words < WORD_FLOOR // 5]
    return WordConfidence(document=round(document, 4), pages=rows, low_pages=low)


def grounding(candidate: Candidate, pages: dict[int, PageText]) -> float:
    """How well the quote (or the value) is found on the cited page: 1.0 exact, down to 0."""
    page = pages.get(candidate.page or -1)
    needle = (candidate.quote or str(candidate.value or "")).strip()
    if page is None or not needle:
        return 0.0
    return fuzz.partial_ratio(needle.casefold(), page.text.casefold()) / 100.0


def evidence_word_confidence(candidate: Candidate, pages: dict[int, PageText]) -> float:
    page = pages.get(candidate.page or -1)
    if page is None:
        return 0.0
    tokens = {t.casefold() for t in _TOKEN.findall(candidate.quote or str(candidate.value or ""))}
    confs = [w.conf for w in page.words if w.text.casefold() in tokens]
    return sum(confs) / len(confs) if confs else page.avg_word_confidence


def score_field(name: str, candidates: list[Candidate], samples: int, calls: int,
                pages: dict[int, PageText]) -> FieldResult:
    if not candidates:
        return FieldResult(value=[] if name in LIST_FIELDS else None, confidence=1.0 if calls else 0.0)
    if name in LIST_FIELDS:
        top = candidates[0].votes
        kept = [c for c in candidates if c.votes * 2 >= top]
        conf = min(_confidence(c, samples, pages) for c in kept)
        return FieldResult(value=[c.value for c in kept], confidence=round(conf, 4), page=kept[0].page,
                           evidence=kept[0].quote, candidates=[c for c in candidates if c not in kept])
    best = candidates[0]
    return FieldResult(value=best.value, confidence=round(_confidence(best, samples, pages), 4), page=best.page,
                       evidence=best.quote, candidates=candidates[1:])


def _confidence(c: Candidate, samples: int, pages: dict[int, PageText]) -> float:
    agreement = min(1.0, c.votes / max(1, samples))
    ground = grounding(c, pages)
    ocr = evidence_word_confidence(c, pages)
    return agreement * (0.4 + 0.6 * ground) * (0.5 + 0.5 * ocr)


def review_reasons(document_type: str | None, fields: dict[str, FieldResult], merged: MergedRecord) -> list[str]:
    reasons = []
    for name in REQUIRED["*"] + REQUIRED.get(document_type or "", ()):
        result = fields.get(name)
        if result is None or result.value in (None, [], ""):
            reasons.append(f"{name}: not found")
        elif result.confidence < REVIEW_THRESHOLD:
            reasons.append(f"{name}: confidence {result.confidence:.2f} < {REVIEW_THRESHOLD}")
        elif name not in LIST_FIELDS and conflicting(merged.fields.get(name, [])):
            reasons.append(f"{name}: conflicting values {result.value!r} / {result.candidates[0].value!r}")
    return reasons


def conflicting(candidates: list[Candidate]) -> bool:
    """A runner-up with at least two votes and half the winner's."""
    return len(candidates) > 1 and candidates[1].votes >= 2 and candidates[1].votes * 2 >= candidates[0].votes


def score_fields(merged: MergedRecord, pages: list[PageText]) -> dict[str, FieldResult]:
    by_number = {p.page: p for p in pages}
    calls = merged.calls - merged.calls_failed
    return {name: score_field(name, cands, merged.field_samples.get(name, 0), calls, by_number)
            for name, cands in merged.fields.items()}
