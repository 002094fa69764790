"""A simulated extraction model for the simulated LLM servers.

`answer()` reads the document text that is actually in the user message (the `<page>` blocks a chunk owns and
the `<context>` edges of its neighbours), finds the core fields with patterns tuned to the phrasings of
`embedded.samples` (and tolerant of OCR spacing and case), and returns a ChunkExtraction-shaped dict with, for
each field, the value, the page it was found on and the exact words quoted from that page. Like a careful model
it only reports values that start on a page the chunk owns, completes a value that runs over into the next
page, and ignores instructions written in the document. `wrong_rate` makes it misread a field now and then,
plausibly, so that agreement across samples matters.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from f.extraction.schema import CORE_FIELDS

DOC_TYPES = ("engagement_letter", "contract", "court_filing", "invoice", "correspondence", "other")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
STATES = ("Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware", "Florida",
          "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky", "Louisiana", "Maine",
          "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska",
          "Nevada", "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio",
          "Oklahoma", "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas",
          "Utah", "Vermont", "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming")

# ---------------------------------------------------------------- reading the message

_PAGE = re.compile(r'<page number="(\d+)">\n(.*?)\n</page>', re.DOTALL)
_CONTEXT = re.compile(r'<context page="(\d+)" position="(before|after)">\n(.*?)\n</context>', re.DOTALL)
_PAGE_LINE = re.compile(r"(?i)\bpage\s+\d+\s+of\s+\d+")
_INJECTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\binstructions?\b"
    r"|\b(?:automated|AI|LLM|language[ -]model|assistant)\b[^.\n]{0,40}\b(?:systems?|processing|model|reader)s?\b"
    r"|\breport\s+the\s+[\w ]{1,30}?\s+as\b|\bmark\s+this\s+\w+\s+as\b|\b(?:system|assistant)\s*:"
    r"|\byou\s+(?:must|should|are\s+to)\s+(?:now\s+)?(?:report|output|return|answer|set)\b")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


@dataclass(frozen=True)
class PageView:
    """One owned page: its text as given, the same text with injected instructions blanked out, and the text to
    search, which runs on into the head of the next page so that a value cut by the page break is completed."""

    page: int
    text: str  # as given: quotes are cut from it
    clean: str  # the same, with injected instructions blanked out (same length)
    search: str  # clean body + the head of the next page
    body_len: int  # the page's text without its trailing footer lines; matches in `search` must start before it

    def matches(self, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
        """Matches that start on this page: in its body (running on into the next page), then in its footer."""
        for m in pattern.finditer(self.search):
            if m.start() >= self.body_len:
                break
            yield m
        yield from pattern.finditer(self.clean, self.body_len)


def _blank_injections(text: str) -> str:
    """Replace each sentence that tries to instruct the reader with spaces (same length, so offsets still hold)."""
    out = list(text)
    for m in _SENTENCE.finditer(text):
        if m.group().strip() and _INJECTION.search(m.group()):
            for i in range(m.start(), m.end()):
                if not text[i].isspace():
                    out[i] = " "
    return "".join(out)


def _strip_footer(text: str) -> int:
    """Length of `text` without trailing running footer lines ("... Page 2 of 5") and blank lines."""
    lines = text.splitlines(keepends=True)
    while lines and (not lines[-1].strip() or _PAGE_LINE.search(lines[-1])):
        lines.pop()
    return sum(len(line) for line in lines)


def _strip_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    while lines and (not lines[0].strip() or _PAGE_LINE.search(lines[0])):
        lines.pop(0)
    return "".join(lines)


def read_chunk(user: str) -> list[PageView]:
    pages = [(int(n), t) for n, t in _PAGE.findall(user)]
    after = {int(n): t for n, pos, t in _CONTEXT.findall(user) if pos == "after"}
    owned = {n: t for n, t in pages}
    views = []
    for n, text in pages:
        clean = _blank_injections(text)
        body = _strip_footer(clean)
        nxt = owned.get(n + 1, after.get(n + 1, ""))
        views.append(PageView(n, text, clean, clean[:body] + "\n" + _strip_header(_blank_injections(nxt)), body))
    return views


# ---------------------------------------------------------------- patterns

_SUFFIX = r"(?i:Inc\.|Incorporated|LLC|L\.L\.C\.|LLP|L\.L\.P\.|Ltd\.|Corp\.|Corporation|Co\.|L\.P\.|PLC|GmbH|N\.A\.)"
_ROLE = r"(?:Plaintiffs?|Defendants?|Client|Customer|Provider|Vendor|The|This|By|And|Dear|Re|Our|Your|We|Between)\b"
_WORD = rf"(?!{_ROLE})(?:[A-Z][\w'-]*|&)"
_GAP = r"(?:[ \t]+|[ \t]*\r?\n[ \t]*)"  # a space, or one line break
NAME = rf"({_WORD}(?:{_GAP}{_WORD}){{0,5}}?,?{_GAP}{_SUFFIX})"
PERSON = r"((?:[A-Z][a-z]+)(?:\s+[A-Z]\.[\u2019'`]?)?\s+(?:(?:O'|Mc|Mac|De|Van\s)?[A-Z][a-z]+)(?:-[A-Z][a-z]+)?)"
_MONTH = (r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
DATE = rf"((?:{_MONTH})[.'\u2019`]?\s+\d{{1,2}}\s*[,.;:]?\s*\d{{4}}|\d{{1,2}}/\d{{1,2}}/\d{{4}})"  # OCR: "May' 13,2024"
AMOUNT = r"(?:USD\s*|US\$\s*|[$S]\s?)(\d{1,3}(?:,\d{3})+(?:\.\d{2})?|\d+(?:\.\d{2})?)\b"
_TOKEN = r"((?=[A-Za-z0-9./_-]*\d)[A-Za-z0-9][A-Za-z0-9./_-]*[A-Za-z0-9])"
_DESCRIBED = r"(?:,?\s+an?\s[^()\"\u201c]{0,250}?)?"  # ", a Delaware corporation with offices at ..."
_STATE = "(?:" + "|".join(s.replace(" ", r"\s+") for s in STATES) + ")"


def _c(p: str) -> re.Pattern[str]:
    return re.compile(p)


PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "matter_number": [_c(rf"(?i:matter\s*(?:no\.?|number|#))\s*[:#]?\s*{_TOKEN}"),
                      _c(rf"(?i:your\s+ref(?:erence)?\.?)\s*[:#]?\s*{_TOKEN}"),
                      _c(rf"(?i:(?:our\s+)?file(?:\s+no\.?)?)\s*[:#]\s*{_TOKEN}"),
                      _c(rf"(?i:our\s+ref(?:erence)?\.?)\s*[:#]?\s*{_TOKEN}")],
    "client_name": [_c(rf'{NAME}{_DESCRIBED}\s*\(\s*(?:the\s+)?["\u201c]?(?:Client|Customer|Plaintiff)\b'),
                    _c(rf"(?i:on\s+behalf\s+of\s+(?:our|your)\s+client),?\s+{NAME}"),
                    _c(rf"(?i:client|bill\s+to)\s*:\s*{NAME}"),
                    _c(rf"\bPlaintiff\s+{NAME}")],
    "counterparty": [_c(rf'{NAME}{_DESCRIBED}\s*\(\s*(?:the\s+)?["\u201c]?'
                        r"(?:Provider|Vendor|Supplier|Contractor|Defendant|Seller)\b"),
                     _c(rf"\bDefendant\s+{NAME}"),
                     _c(rf"(?i:we\s+represent)[\s.]+{NAME}"),
                     _c(rf"(?i:(?:dispute|agreement|contract)\s+with)\s+{NAME}"),
                     _c(rf"(?i:payable\s+to|remit\s+(?:payment\s+)?to)\s*:?\s*{NAME}")],
    "document_date": [_c(rf"(?i:invoice\s+date|date\s+of\s+invoice)\s*:?\s*{DATE}"),
                      _c(rf"Dated:\s*(?:[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?\s+)?{DATE}"),
                      _c(rf"(?i:entered\s+into\s+as\s+of|dated\s+as\s+of|effective\s+as\s+of)\s+{DATE}"),
                      _c(rf"(?m)^[^A-Za-z0-9\n]{{0,3}}{DATE}[^A-Za-z0-9\n]{{0,3}}\r?$")],  # a date line
    "total_amount": [_c(rf"(?i:total\s+(?:amount\s+)?(?:now\s+)?due|balance\s+due)[^$\d]{{0,40}}?{AMOUNT}"),
                     _c(rf"(?i:total\s+contract\s+value)[^$]{{0,80}}?{AMOUNT}"),
                     _c(rf"(?i:retainer(?:\s+deposit)?\s+of)\s+{AMOUNT}")],
    "court": [_c(r"(?m)^[ \t]*(UNITED STATES (?:DISTRICT|BANKRUPTCY) COURT)[ \t]*\r?\n[ \t]*((?:[A-Z]+[ \t]+)?DISTRICT"
                 r"[ \t]+OF[ \t]+[A-Z][A-Z \t]*?)[ \t]*\r?$"),
              _c(r"(United States (?:District|Bankruptcy) Court for the (?:[A-Z][a-z]+ )?District of "
                 rf"{_STATE})")],
    "case_number": [_c(rf"(?i:case\s+no\.?|civil\s+action\s+no\.?|index\s+no\.?|docket\s+no\.?)\s*[:#]?\s*{_TOKEN}"),
                    _c(r"(?m)^[ \t]*Case\s+(\d:\d{2}-[a-z]{2}-\d{3,6}(?:-[A-Z]{2,4})?)")],
    "governing_law": [_c(r"(?i:governed\s+by(?:\s+and\s+construed\s+in\s+accordance\s+with)?\s+the\s+laws?\s+of)\s+"
                         rf"(?:the\s+)?((?:State|Commonwealth)\s+of\s+{_STATE})\b")],
}
DOC_TYPE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("court_filing", _c(r"(?im)\b(?:case|civil\s+action|index)\s+no\.|^[ \t]*case\s+\d+:\d{2}-[a-z]{2}-\d+")),
    ("invoice", _c(r"(?i)\binvoice\s+(?:no\.?|number|date)\b")),
    ("engagement_letter", _c(r"(?i)\bengagement\s+letter\b|\bterms\s+of\s+(?:our|this)\s+engagement\b")),
    ("contract", _c(r"(?i)\bthis\s+(?:[a-z]+\s+){0,2}agreement\b|\bIN\s+WITNESS\s+WHEREOF\b|\bWHEREAS\b")),
    ("correspondence", _c(r"(?im)^[ \t]*dear\s+(?:mr|ms|mrs|dr)\.?\s|^[ \t]*(?:sincerely|very\s+truly\s+yours),?"
                          r"|^[ \t]*(?:your|our)\s+(?:ref|file)\b|\bwe\s+(?:write|represent)\b")),
]
_CLOSING = re.compile(r"(?im)^[ \t]*(?:sincerely|very truly yours|respectfully submitted|yours faithfully|"
                      r"best regards|in witness whereof)\b")
_SIGNED = re.compile(rf"(?m)/s[/il1|]\s*{PERSON}|^[^A-Za-z0-9\n]{{0,3}}Name\s*[:;]\s*{PERSON}")  # OCR: "/si", "_ Name;"
_LINE_PERSON = re.compile(rf"(?m)^[^A-Za-z0-9\n]{{0,3}}{PERSON}(?:,\s*(?:Esq\.|[A-Z][a-z]+(?:\s[A-Z][a-z]+){{0,3}}))?"
                          r"[^A-Za-z0-9\n]{0,3}\r?$")


# ---------------------------------------------------------------- values

@dataclass(frozen=True)
class Hit:
    page: int
    value: Any
    quote: str


def _squash(s: str) -> str:
    return " ".join(s.split())


def _quote(view: PageView, start: int, end: int) -> str:
    """The words on the page itself (a value running on into the next page is quoted up to the page's end)."""
    return view.text[start:end if start >= view.body_len else min(end, view.body_len)].strip()


def iso_date(text: str) -> str | None:
    """"April 5, 2024", "Apr. 5,2024", "04/05/2024" -> "2024-04-05"; None if it is not a real date."""
    text = _squash(text)
    if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text):
        month, day, year = int(m[1]), int(m[2]), int(m[3])
    elif m := re.fullmatch(r"([A-Za-z]+)[.'\u2019`]?\s+(\d{1,2})\s*[,.;:]?\s*(\d{4})", text):
        month = next((i + 1 for i, name in enumerate(MONTHS) if name.startswith(m[1].lower()[:3])), 0)
        day, year = int(m[2]), int(m[3])
    else:
        return None
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _title(s: str) -> str:
    small = {"of", "for", "the", "and"}
    words = _squash(s).lower().split()
    return " ".join(w if (w in small and i) else w.capitalize() for i, w in enumerate(words))


def _convert(name: str, m: re.Match[str]) -> Any:
    if name == "document_date":
        return iso_date(m[1])
    if name == "total_amount":
        return {"value": float(m[1].replace(",", "")), "currency": "USD"}
    if name == "court" and m.lastindex == 2:
        return f"{_title(m[1])} for the {_title(m[2])}"
    return _squash(m[1]).rstrip(",")


def _first(name: str, views: list[PageView]) -> Hit | None:
    for pattern in PATTERNS[name]:
        for view in views:
            for m in view.matches(pattern):
                value = _convert(name, m)
                if value:
                    return Hit(view.page, value, _quote(view, m.start(), m.end()))
    return None


def _document_type(views: list[PageView]) -> Hit | None:
    for kind, pattern in DOC_TYPE_PATTERNS:
        for view in views:
            if m := pattern.search(view.clean):
                return Hit(view.page, kind, _quote(view, m.start(), m.end()))
    return None


def _signatories(views: list[PageView]) -> Hit | None:
    """Names signed "/s/", typed under "Name:", or on the first name line after a closing; page and quote are
    those of the first page with any."""
    names: list[str] = []
    first: Hit | None = None
    for view in views:
        text = view.clean
        spans: list[tuple[int, int, str]] = [(m.start(), m.end(), m[1] or m[2]) for m in _SIGNED.finditer(text)]
        for closing in _CLOSING.finditer(text):
            block = text[closing.end():closing.end() + 400]
            if not _SIGNED.search(block) and (m := _LINE_PERSON.search(block)):
                spans.append((closing.end() + m.start(1), closing.end() + m.end(1), m[1]))
        if spans and first is None:
            first = Hit(view.page, [], _quote(view, min(s for s, _, _ in spans), max(e for _, e, _ in spans)))
        names += [_squash(n) for _, _, n in sorted(spans)]
    return Hit(first.page, list(dict.fromkeys(names)), first.quote) if first else None


def extract(views: list[PageView]) -> dict[str, Hit | None]:
    """Every core field found in the chunk (None where the chunk does not state it)."""
    found: dict[str, Hit | None] = {name: _first(name, views) for name in PATTERNS}
    found["document_type"] = _document_type(views)
    found["signatories"] = _signatories(views)
    return found


# ---------------------------------------------------------------- mistakes

def _typo(s: str, rng: random.Random) -> str:
    idx = [i for i in range(len(s) - 1) if s[i].isalnum() and s[i + 1].isalnum() and s[i] != s[i + 1]]
    if not idx:
        return s + "x"
    i = rng.choice(idx)
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]


def _wrong_digit(s: str, rng: random.Random) -> str:
    idx = [i for i, ch in enumerate(s) if ch.isdigit()]
    if not idx:
        return _typo(s, rng)
    i = rng.choice(idx)
    return s[:i] + str((int(s[i]) + rng.randrange(1, 10)) % 10) + s[i + 1:]


def perturb(name: str, value: Any, rng: random.Random, text: str) -> Any:
    """A plausible misreading of `value`: a typo, a wrong digit, a neighbouring date, another name from the text."""
    others = lambda pattern: [_squash(x) for x in re.findall(pattern, text) if _squash(x) != value]
    if name == "document_type":
        return rng.choice([t for t in DOC_TYPES if t != value])
    if name == "document_date":
        d = date.fromisoformat(value) + timedelta(days=rng.choice((-3, -2, -1, 1, 2, 3, 30)))
        return d.isoformat()
    if name == "total_amount":
        v = value["value"]
        wrong = float(_wrong_digit(f"{v:.2f}", rng)) if rng.random() < 0.7 else v * rng.choice((0.1, 10))
        return {"value": round(wrong, 2), "currency": value["currency"]}
    if name == "signatories":
        names = list(value)
        pool = [p for p in others(PERSON) if p not in names]
        if pool and rng.random() < 0.5:
            names[rng.randrange(len(names))] = rng.choice(pool)
        elif len(names) > 1:
            names.pop(rng.randrange(len(names)))
        else:
            names = [_typo(names[0], rng)]
        return names
    if name in ("client_name", "counterparty") and (pool := others(NAME)) and rng.random() < 0.6:
        return rng.choice(pool)
    if name == "governing_law":
        return f"State of {rng.choice([s for s in STATES if s not in value])}"
    if name in ("matter_number", "case_number"):
        return _wrong_digit(value, rng)
    return _typo(value, rng)


# ---------------------------------------------------------------- the answer

def _user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # OpenAI content parts
                return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def unwrap_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema itself, from a bare schema, a `json_schema` spec, or a whole `response_format`."""
    if isinstance(schema.get("json_schema"), dict):
        schema = schema["json_schema"]
    if "properties" not in schema and isinstance(schema.get("schema"), dict):
        schema = schema["schema"]
    return schema


def minimal(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A small valid instance of a JSON schema: defaults where given, else null where allowed, else empties."""
    root = root or schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return minimal(target, root)
    if "default" in schema:
        return copy.deepcopy(schema["default"])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return None if None in schema["enum"] else schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = schema[key]
            if any(o.get("type") == "null" for o in options):
                return None
            return minimal(options[0], root)
    if "allOf" in schema:
        return minimal(schema["allOf"][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        if "null" in kind:
            return None
        kind = kind[0]
    if kind == "object":
        required = set(schema.get("required", ()))
        out = {}
        for name, sub in schema.get("properties", {}).items():
            if name in required or "default" in sub or _nullable(sub, root):
                out[name] = minimal(sub, root)
        return out
    if kind == "array":
        return [minimal(schema.get("items", {}), root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("number", "integer"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def _nullable(schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return False
    kinds = schema.get("type")
    return kinds == "null" or (isinstance(kinds, list) and "null" in kinds) or any(
        o.get("type") == "null" for o in schema.get("anyOf", []) + schema.get("oneOf", []))


def _field(name: str, hit: Hit | None) -> dict[str, Any]:
    if hit is None:
        return {"value": [] if name == "signatories" else None, "page": None, "quote": None}
    return {"value": hit.value, "page": hit.page, "quote": hit.quote}


def answer(messages: list[dict[str, Any]], schema: dict[str, Any], rng: random.Random, *,
           wrong_rate: float = 0.0) -> dict[str, Any]:
    """The model's JSON reply to one chunk's messages, for the given response schema."""
    schema = unwrap_schema(schema)
    properties: dict[str, Any] = schema.get("properties", {})
    core = [name for name in properties if name in CORE_FIELDS]
    if not core:
        return minimal(schema)
    views = read_chunk(_user_text(messages))
    found = extract(views)
    text = "\n".join(v.clean for v in views)
    out: dict[str, Any] = {}
    for name, sub in properties.items():
        if name not in core:
            out[name] = minimal(sub, schema)
            continue
        hit = found.get(name)
        if hit is not None and wrong_rate and rng.random() < wrong_rate:
            hit = Hit(hit.page, perturb(name, hit.value, rng, text), hit.quote)
        out[name] = _field(name, hit)
    return out

