"""A governing law by its jurisdiction: the one state, province or country a value names.

"the laws of the State of Illinois", "Illinois" and "California Statutes 1927.03" are answers about one
jurisdiction each, and count as the same answer as every other that names it. A value that names none, or
several ("Delaware, except the conflict rules of New York"), is left as written. Names come from ISO 3166
(pycountry): the countries, and the states and provinces of the federations whose law a contract picks.
"""

import re
import unicodedata
from functools import lru_cache

import pycountry

FEDERATIONS = ("US", "CA", "AU")  # a contract names the state or province: "the laws of Ontario"
UK_NATIONS = ("GB-ENG", "GB-SCT", "GB-WLS", "GB-NIR")
ALIASES = {"England and Wales": "England and Wales",  # one legal system, named as two nations
           "Washington, D.C.": "District of Columbia", "Washington D.C.": "District of Columbia"}


def _fold(text: str) -> str:
    """Case and accents folded, spaces collapsed: "Québec" is "quebec"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(plain.split()).casefold()


@lru_cache(maxsize=1)
def _names() -> tuple[re.Pattern[str], dict[str, str]]:
    """A pattern for every name (longest first, so "West Virginia" is not "Virginia") and its canonical form."""
    canonical: dict[str, str] = {_fold(alias): name for alias, name in ALIASES.items()}
    for country in pycountry.countries:
        short = getattr(country, "common_name", None) or country.name
        for name in (country.name, short, getattr(country, "official_name", None)):
            if name and "," not in name:
                canonical.setdefault(_fold(name), short)
    divisions = [s for code in FEDERATIONS for s in pycountry.subdivisions.get(country_code=code) or []]
    divisions += [pycountry.subdivisions.get(code=code) for code in UK_NATIONS]
    for division in divisions:
        name = re.sub(r"\s*\[.*\]$", "", division.name)  # "Wales [Cymru GB-CYM]"
        canonical[_fold(name)] = name
    alternatives = "|".join(re.escape(n) for n in sorted(canonical, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"), canonical


def jurisdictions(text: str) -> list[str]:
    """The jurisdictions a text names, each once, in order."""
    pattern, canonical = _names()
    return list(dict.fromkeys(canonical[m.group()] for m in pattern.finditer(_fold(text))))


def jurisdiction(text: str) -> str | None:
    """The one jurisdiction a governing-law value names, else None."""
    named = jurisdictions(text)
    return named[0] if len(named) == 1 else None
