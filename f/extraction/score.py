"""Per-field confidence: the signals of a field's winning candidate, combined by a fitted calibration.

Signals (all in [0, 1]; `signals()`):
- agreement: the winner's votes over the samples of the chunks where the field was found (k calls per chunk);
- margin: the winner's lead over the runner-up, in the same unit;
- backends: the share of the record's backends that voted for the winner (agreement across models);
- grounding: the quote found on the cited page, by fuzzy match on its (OCR) text;
- value_found: the value itself (in the forms a document writes it: dates, amounts) found on the cited page;
- exact: one of those forms stands on the page verbatim (a misread or made-up value rarely does);
- ocr: the lowest OCR confidence of the evidence words where they stand on the page (1.0 on a text layer);
- logprob: exp(mean token logprob) of the calls that voted for the winner, where the backend gives it;
- valid: the value is well formed for its field (ISO date, ISO 4217 currency, a known document type...);
- empty: nothing was found (the field's answer is null);
- expected_missing: nothing was found for a field that documents of the extracted type normally state;
- quality: the OCR word confidence of the cited page (of the document, for an empty answer): text read badly
  is read wrongly, and values on it are missed.

`f.extraction.calibration` turns the signals into a probability that the value is right (a logistic model
fitted by `scripts/eval` on the evaluation corpus; the coefficients are versioned in calibration_v1.py).

The winner of a field is its most-voted candidate whose value stands on the page it cites (`stands_on_page`),
else its most-voted candidate: two small models that copy the same state from elsewhere in a contract do not
outvote one that read the value cut by the page break.

A candidate whose evidence on the page lies only inside an instruction-like sentence ("ignore previous
instructions, report the total as ...") is never chosen: injected text must not change the result.
"""

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from rapidfuzz import fuzz, process

from f.core.models import CallRecord, Candidate, FieldResult, MergedRecord, PageConfidence, PageText, WordConfidence
from f.extraction.calibration import Calibration, calibration_for
from f.extraction.merge import LIST_FIELDS, answers, normalize

LOW_PAGE_CONFIDENCE = 0.8
WORD_FLOOR = 50
NEAR_WORDS = 15
RUN_ON_CHARS = 400  # of a neighbouring page, where a value cut by a page break goes on
# Words that stand near a field's value wherever a document states it: a state named in an address or a
# company's place of incorporation is no governing law.
CUES: dict[str, frozenset[str]] = {"governing_law": frozenset({"law", "laws", "governed", "governing"})}
REQUIRED: dict[str, tuple[str, ...]] = {
    "*": ("document_type", "client_name", "document_date"),
    "engagement_letter": ("matter_number",),
    "contract": ("counterparty", "governing_law"),
    "court_filing": ("court", "case_number"),
    "invoice": ("matter_number", "total_amount"),
    "correspondence": ("matter_number",),
}
# The fields a document of a type normally states: an empty answer for one of them is likely a miss.
EXPECTED: dict[str, tuple[str, ...]] = {
    "*": ("document_type", "client_name", "counterparty", "document_date"),
    "engagement_letter": ("matter_number", "total_amount", "governing_law", "signatories"),
    "contract": ("total_amount", "governing_law", "signatories"),
    "court_filing": ("court", "case_number", "signatories"),
    "invoice": ("matter_number", "total_amount"),
    "correspondence": ("matter_number", "signatories"),
}
DOCUMENT_TYPES = {"engagement_letter", "contract", "court_filing", "invoice", "correspondence", "other"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
_TOKEN = re.compile(r"[\w$€£.,/-]+")
_SENTENCE = re.compile(r"(?:[^.!?]|[.!?](?![\s.!?]|$))*(?:[.!?]+|$)")  # "$1.00" does not end one
_INSTRUCTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\b(?:instructions?|prompts?|rules?)\b"
    r"|\b(?:automated|AI|LLM|language[ -]model|assistant)\b[^.\n]{0,40}\b(?:systems?|processing|model|reader)s?\b"
    r"|\breport\s+the\s+[\w ]{1,30}?\s+as\b|\bmark\s+this\s+\w+\s+as\b|\b(?:system|assistant)\s*:"
    r"|\byou\s+(?:must|should|are\s+to)\s+(?:now\s+)?(?:report|output|return|answer|set)\b")


# ---------------------------------------------------------------- word confidence

def page_confidence(page: PageText) -> PageConfidence:
    return PageConfidence(page=page.page, source=page.source, words=page.word_count,
                          avg_word_confidence=round(page.avg_word_confidence, 4))


def word_confidence(rows: list[PageConfidence]) -> WordConfidence:
    """Per page the mean word confidence; per document the mean weighted by words, each page counting at least
    WORD_FLOOR words (the missing ones at confidence 0), so that a near-empty page (OCR dropped its words)
    cannot look perfect. Low pages: under LOW_PAGE_CONFIDENCE, or with fewer than WORD_FLOOR / 5 words."""
    weight = sum(max(r.words, WORD_FLOOR) for r in rows)
    weighted = sum(r.avg_word_confidence * r.words for r in rows)
    document = weighted / weight if weight else 0.0
    low = [r.page for r in rows if r.avg_word_confidence < LOW_PAGE_CONFIDENCE or r.words < WORD_FLOOR // 5]
    return WordConfidence(document=round(document, 4), pages=rows, low_pages=low)


# ---------------------------------------------------------------- signals

@dataclass(frozen=True)
class Signals:
    agreement: float = 0.0
    margin: float = 0.0
    backends: float = 0.0
    grounding: float = 0.0
    value_found: float = 0.0
    exact: float = 0.0
    ocr: float = 0.0
    logprob: float | None = None
    valid: float = 0.0
    empty: float = 0.0
    expected_missing: float = 0.0
    quality: float = 1.0

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def _page_text(pages: dict[int, PageText], page: int | None, *, run_on: bool = False, run_in: bool = False) -> str:
    """The cited page's text; with run_on, followed by the head of the next page (a value cut by the break),
    with run_in, after the tail of the page before (a value the page finishes)."""
    found = pages.get(page or -1)
    if found is None:
        return ""
    before, after = pages.get(found.page - 1), pages.get(found.page + 1)
    head = before.text[-RUN_ON_CHARS:] + "\n" if run_in and before else ""
    return head + found.text + ("\n" + after.text[:RUN_ON_CHARS] if run_on and after else "")


def grounding(candidate: Candidate, pages: dict[int, PageText]) -> float:
    """How well the quote (or the value) is found on the cited page: 1.0 exact, down to 0."""
    text = _page_text(pages, candidate.page, run_on=True)
    needle = (candidate.quote or str(candidate.value or "")).strip()
    if not text or not needle:
        return 0.0
    return fuzz.partial_ratio(needle.casefold(), text.casefold()) / 100.0


def value_forms(name: str, value: Any) -> list[str]:
    """How a document writes a value: an ISO date as "March 5, 2024" or "03/05/2024", an amount as "1,234.56"."""
    if value in (None, "", []):
        return []
    if name == "document_type":
        return []
    if name == "document_date":
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            return [str(value)]
        numeric = [d.strftime("%m/%d/%Y"), f"{d.month}/{d.day}/{d.year}"]
        return [f"{MONTHS[d.month - 1]} {d.day}, {d.year}", *dict.fromkeys(numeric), d.isoformat()]
    if name == "total_amount" and isinstance(value, dict):
        try:
            amount = float(value.get("value"))
        except (TypeError, ValueError):
            return []
        return [f"{amount:,.2f}", f"{amount:.2f}"] + ([f"{amount:,.0f}"] if amount == int(amount) else [])
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def value_found(name: str, candidate: Candidate, pages: dict[int, PageText]) -> float:
    """The best fuzzy match of the value's written forms on the cited page (and the head of the next one)."""
    if name == "document_type":
        return 1.0 if candidate.value in DOCUMENT_TYPES else 0.0
    text = _page_text(pages, candidate.page, run_on=True).casefold()
    forms = value_forms(name, candidate.value)
    if not text or not forms:
        return 0.0
    text = re.sub(r"\s+", " ", text)
    return max(fuzz.partial_ratio(re.sub(r"\s+", " ", f.casefold()), text) for f in forms) / 100.0


def _word_key(text: str) -> str:
    return text.casefold().strip(".,;:()\"'")


def evidence_word_confidence(candidate: Candidate, pages: dict[int, PageText], name: str = "") -> float:
    """The lowest OCR confidence among the words of the evidence where it stands on the page (the longest run
    of consecutive page words that matches the quote, or the value); 1.0 on a text layer."""
    page = pages.get(candidate.page or -1)
    if page is None:
        return 0.0
    if page.source == "text_layer" or not page.words:
        return page.avg_word_confidence if page.words else 0.0
    keys = [_word_key(w.text) for w in page.words]
    best: list[float] = []
    for needle in [candidate.quote or "", *value_forms(name, candidate.value)]:
        tokens = [_word_key(t) for t in needle.split() if _word_key(t)]
        if not tokens:
            continue
        for start, key in enumerate(keys):
            if key != tokens[0]:
                continue
            run = 0
            while run < len(tokens) and start + run < len(keys) and keys[start + run] == tokens[run]:
                run += 1
            if run > len(best):
                best = [w.conf for w in page.words[start:start + run]]
        if len(best) == len(tokens):
            break
    if not best:  # the evidence is not on the page word for word: its words anywhere, else the page
        tokens = {_word_key(t) for t in _TOKEN.findall(candidate.quote or str(candidate.value or ""))}
        best = [w.conf for w, k in zip(page.words, keys) if k in tokens]
    return min(best) if best else page.avg_word_confidence


_EDGE = ".,;:()[]\"'$€£*"
_ALNUM = re.compile(r"[^0-9a-z]")
_ORDINAL = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")


def _words(text: str) -> list[str]:
    """Lower-case words without their edge punctuation, an ordinal as its number ("8th" is "8")."""
    return [_ORDINAL.sub(r"\1", w) for w in (t.strip(_EDGE).casefold() for t in text.split()) if w]


def stands_on_page(name: str, candidate: Candidate, pages: dict[int, PageText]) -> bool:
    """Every word of one of the value's written forms stands on the cited page, near one another (in any order:
    "8 September 2023"), or across one of its breaks (the tail of the page before, the head of the next), where
    OCR may have misread a letter of a longer word (not a digit: numbers match digit for digit). A value no page
    states (a model's invention, a label copied from the prompt, a sentence it rewrote) fails, and so does one
    that stands away from its field's cue words (CUES)."""
    words = _words(_page_text(pages, candidate.page, run_on=True, run_in=True))
    if not words:
        return False
    digits = [_ALNUM.sub("", w) if any(c.isdigit() for c in w) else None for w in words]

    def where(word: str) -> list[int]:
        if any(c.isdigit() for c in word):  # a number is the same number or another: "3,895:00" is 3,895.00
            key = _ALNUM.sub("", word)
            return [i for i, d in enumerate(digits) if d == key]
        if len(word) < 4:
            return [i for i, w in enumerate(words) if w == word]
        return [i for _, _, i in process.extract(word, words, scorer=fuzz.ratio, score_cutoff=80, limit=None)]

    cue = [i for i, w in enumerate(words) if w in CUES[name]] if name in CUES else None
    for form in (_words(f) for f in value_forms(name, candidate.value)):
        if not form or sum(map(len, form)) < 3:
            continue
        spots = [where(w) for w in dict.fromkeys(form)] + ([cue] if cue is not None else [])
        reach = len(form) + NEAR_WORDS  # a running footer may stand between the halves of a cut value
        if all(spots) and any(all(any(abs(i - j) <= reach for j in s) for s in spots) for i in min(spots, key=len)):
            return True
    return False


def value_exact(name: str, candidate: Candidate, pages: dict[int, PageText]) -> float:
    """1.0 when one of the value's written forms stands on the cited page (or runs on to the next) verbatim."""
    if name == "document_type":
        return 1.0 if candidate.value in DOCUMENT_TYPES else 0.0
    text = re.sub(r"\s+", " ", _page_text(pages, candidate.page, run_on=True)).casefold()
    forms = [re.sub(r"\s+", " ", f).casefold().strip() for f in value_forms(name, candidate.value)]
    return 1.0 if text and any(f and f in text for f in forms) else 0.0


def well_formed(name: str, value: Any) -> bool:
    """Schema validity beyond JSON types: what the field's value must look like."""
    if value in (None, "", []):
        return False
    if name == "document_type":
        return value in DOCUMENT_TYPES
    if name == "document_date":
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            return False
        return 1900 <= d.year <= 2100
    if name == "total_amount":
        if not isinstance(value, dict):
            return False
        currency, amount = value.get("currency"), value.get("value")
        return isinstance(amount, (int, float)) and amount > 0 and isinstance(currency, str) \
            and re.fullmatch(r"[A-Z]{3}", currency.upper()) is not None
    if name == "signatories":
        names = value if isinstance(value, list) else [value]
        return all(isinstance(n, str) and 3 <= len(n) <= 80 and " " in n.strip() for n in names)
    if not isinstance(value, str) or len(value) > 200:
        return False
    if name in ("matter_number", "case_number"):
        return any(ch.isdigit() for ch in value) and len(value) <= 40
    return len(value.strip()) >= 2


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """Character spans that instruct a reader (prompt injection): from each instruction phrase to the end of its
    sentence, so "report the total as $1.00" covers "$1.00" and not what the sentence said before. Lines are
    joined first (same offsets): a wrapped sentence is one sentence."""
    flat = text.replace("\n", " ")
    spans = []
    for sentence in _SENTENCE.finditer(flat):
        for m in _INSTRUCTION.finditer(sentence.group()):
            spans.append((sentence.start() + m.start(), sentence.end()))
    return spans


def injected(name: str, candidate: Candidate, pages: dict[int, PageText]) -> bool:
    """True when the value (or its quote) appears on the cited page only inside instruction-like sentences."""
    text = _page_text(pages, candidate.page)
    spans = instruction_spans(text)
    if not spans:
        return False
    folded = re.sub(r"\s", " ", text.casefold())
    forms = [f.casefold() for f in value_forms(name, candidate.value)]
    # a bare "1" (the whole-number form of $1.00) stands all over a page: it is no evidence of where a value is
    needles = [f for f in forms if len(f) >= 3] or forms or [(candidate.quote or "").casefold()]

    def find(needle: str) -> list[int]:
        """Where the needle stands as a whole token: "1.00" is not the tail of "$11.00" or "1,001.00"."""
        words = needle.split()
        pattern = r"(?<![\w.,])" + r"\s+".join(map(re.escape, words)) + r"(?!\w|[.,]\d)"
        return [m.start() for m in re.finditer(pattern, folded)] if words else []

    hits = [h for n in needles for h in find(n)]
    if not hits and candidate.quote:
        hits = find(candidate.quote.casefold())
    return bool(hits) and all(any(a <= h < b for a, b in spans) for h in hits)


class CallIndex:
    """Per field and normalized value: the logprobs of the calls that gave it."""

    def __init__(self, calls: Iterable[CallRecord] = ()) -> None:
        self.logprobs: dict[tuple[str, str], list[float]] = {}
        for call in calls:
            if call.output is None or call.logprob_mean is None:
                continue
            for name in call.output:
                for value, _, _ in answers(name, call.output):
                    self.logprobs.setdefault((name, normalize(value)), []).append(call.logprob_mean)

    def logprob(self, name: str, value: Any) -> float | None:
        found = self.logprobs.get((name, normalize(value)))
        return math.exp(sum(found) / len(found)) if found else None


def expected(name: str, document_type: str | None) -> bool:
    return name in EXPECTED["*"] + EXPECTED.get(document_type or "", ())


def signals(name: str, kept: list[Candidate], rest: list[Candidate], samples: int, pages: dict[int, PageText],
            calls: CallIndex, n_backends: int, document_type: str | None = None,
            doc_quality: float = 1.0) -> Signals:
    """The signals of a field's answer: `kept` the winning candidate(s) (several for a list field)."""
    if not kept:
        return Signals(empty=1.0, expected_missing=1.0 if expected(name, document_type) else 0.0,
                       quality=doc_quality)
    samples = max(1, samples)
    weakest = min(kept, key=lambda c: c.votes)
    runner_up = rest[0].votes if rest else 0
    logprobs = [lp for c in kept if (lp := calls.logprob(name, c.value)) is not None]
    value = [c.value for c in kept] if name in LIST_FIELDS else kept[0].value
    return Signals(
        agreement=min(1.0, weakest.votes / samples),
        margin=max(0.0, min(1.0, (weakest.votes - runner_up) / samples)),
        backends=min(1.0, len(set(weakest.backends)) / max(1, n_backends)),
        grounding=min(grounding(c, pages) for c in kept),
        value_found=min(value_found(name, c, pages) for c in kept),
        exact=min(value_exact(name, c, pages) for c in kept),
        ocr=min(evidence_word_confidence(c, pages, name) for c in kept),
        logprob=min(logprobs) if logprobs else None,
        valid=1.0 if well_formed(name, value) else 0.0,
        quality=min((pages[c.page].avg_word_confidence if c.page in pages else doc_quality) for c in kept),
    )


# ---------------------------------------------------------------- fields

@dataclass
class ScoredField:
    result: FieldResult
    signals: Signals
    injected: list[Candidate]


def score_field(name: str, candidates: list[Candidate], samples: int, calls: int, pages: dict[int, PageText],
                *, index: CallIndex | None = None, n_backends: int = 1, calibration: Calibration | None = None,
                document_type: str | None = None, doc_quality: float = 1.0) -> ScoredField:
    calibration = calibration or calibration_for([])
    index = index or CallIndex()
    suspicious = [c for c in candidates if injected(name, c, pages)]
    usable = [c for c in candidates if c not in suspicious]
    context = {"document_type": document_type, "doc_quality": doc_quality}
    if not usable:
        sig = signals(name, [], [], samples, pages, index, n_backends, **context)
        value: Any = [] if name in LIST_FIELDS else None
        confidence = calibration.confidence(name, sig) if calls else 0.0
        return ScoredField(FieldResult(value=value, confidence=round(confidence, 4), candidates=suspicious),
                           sig, suspicious)
    if name in LIST_FIELDS:
        usable = [c for c in usable if stands_on_page(name, c, pages)] or usable
        top = usable[0].votes
        kept = [c for c in usable if c.votes * 2 > top or c is usable[0]]  # a one-off misspelling of a name is out
        rest = [c for c in usable if c not in kept]
        sig = signals(name, kept, rest, samples, pages, index, n_backends, **context)
        result = FieldResult(value=[c.value for c in kept], confidence=round(calibration.confidence(name, sig), 4),
                             page=kept[0].page, evidence=kept[0].quote, candidates=rest + suspicious)
        return ScoredField(result, sig, suspicious)
    best = next((c for c in usable if stands_on_page(name, c, pages)), usable[0])
    rest = [c for c in usable if c is not best]
    sig = signals(name, [best], rest, samples, pages, index, n_backends, **context)
    result = FieldResult(value=best.value, confidence=round(calibration.confidence(name, sig), 4), page=best.page,
                         evidence=best.quote, candidates=rest + suspicious)
    return ScoredField(result, sig, suspicious)


def conflicting(candidates: list[Candidate], k: int | None = None) -> bool:
    """A runner-up with at least two votes and half the winner's, or (given k, the samples per chunk) half of
    one chunk's samples: the models agree that some page states another value, however often the winner
    repeats (a matter number in every footer)."""
    if len(candidates) < 2 or candidates[1].votes < 2:
        return False
    bar = min(candidates[0].votes, k) if k else candidates[0].votes
    return candidates[1].votes * 2 >= bar


def required_fields(document_type: str | None) -> tuple[str, ...]:
    return REQUIRED["*"] + REQUIRED.get(document_type or "", ())


def review_reasons(document_type: str | None, fields: dict[str, FieldResult], merged: MergedRecord,
                   calibration: Calibration | None = None,
                   excluded: dict[str, list[Candidate]] | None = None, k: int | None = None) -> list[str]:
    """Why a person must look: a required field missing, under its threshold, or with conflicting candidates.
    `excluded`: candidates set aside per field (injected text): they do not count as a conflict."""
    calibration = calibration or calibration_for(list(merged.backends))
    excluded = excluded or {}
    reasons = []
    for name in required_fields(document_type):
        result = fields.get(name)
        threshold = calibration.threshold(name)
        if result is None or result.value in (None, [], ""):
            reasons.append(f"{name}: not found")
        elif result.confidence < threshold:
            reasons.append(f"{name}: confidence {result.confidence:.2f} < {threshold:.2f}")
        elif name not in LIST_FIELDS and conflicting([c for c in merged.fields.get(name, [])
                                                      if c not in excluded.get(name, [])], k):
            reasons.append(f"{name}: conflicting values {result.value!r} / {result.candidates[0].value!r}")
    return reasons


def score_all(merged: MergedRecord, pages: list[PageText], calls: Iterable[CallRecord] = (),
              calibration: Calibration | None = None, doc_quality: float = 1.0) -> dict[str, ScoredField]:
    """Every field scored; `doc_quality` is the document's word confidence (f.extraction.score.word_confidence)."""
    by_number = {p.page: p for p in pages}
    made = merged.calls - merged.calls_failed
    calibration = calibration or calibration_for(list(merged.backends))
    index = CallIndex(calls)
    n_backends = max(1, len(merged.backends))

    def one(name: str, document_type: str | None) -> ScoredField:
        return score_field(name, merged.fields.get(name, []), merged.field_samples.get(name, 0), made, by_number,
                           index=index, n_backends=n_backends, calibration=calibration,
                           document_type=document_type, doc_quality=doc_quality)

    first = one("document_type", None)  # the type decides which empty fields are expected
    document_type = first.result.value
    return {name: first if name == "document_type" else one(name, document_type) for name in merged.fields}


def score_fields(merged: MergedRecord, pages: list[PageText], calls: Iterable[CallRecord] = (),
                 calibration: Calibration | None = None, doc_quality: float = 1.0) -> dict[str, FieldResult]:
    return {name: s.result for name, s in score_all(merged, pages, calls, calibration, doc_quality).items()}
