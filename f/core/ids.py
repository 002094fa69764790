"""Validation of matter, document and chunk ids: they become blob path segments."""

import re

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ID = re.compile(ID_PATTERN)


class InvalidId(ValueError):
    """An id that cannot be a single, safe path segment."""


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.fullmatch(value)) and ".." not in value


def check_id(value: str, kind: str = "id") -> str:
    """Return value if it is a safe path segment, else raise InvalidId naming the kind."""
    if not is_valid_id(value):
        shown = repr(value)[:80]
        raise InvalidId(
            f"invalid {kind} {shown}: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit, no '..'"
        )
    return value


def id_from_filename(name: str) -> str:
    """A document id derived from a user's file name: 'Engagement Letter (v2).pdf' -> 'Engagement-Letter-v2'."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    slug = re.sub(r"\.{2,}", ".", slug)[:64].strip("-._")
    return check_id(slug or "document", "document id")
