"""Coarse places: countries and the first-level regions of a country (US states, Canadian provinces, Indian
states, German Länder, the nations of the UK, ...), by their ISO 3166 names (``pycountry``).

A place that large says little about who someone is: the US HIPAA Safe Harbor rule, for one, keeps states
and removes only the geographic units below them. So "I'd like to live in Ukraine" or "where can I live in
New Jersey?" is no personal data to mask, while "I moved to Leeds" still is.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# First-level subdivision types that are regions, not towns (ISO 3166-2 calls some cities and
# municipalities first-level too: those stay places to mask).
_REGION_TYPES = frozenset(
    {
        "State", "Province", "Region", "Country", "Land", "Territory", "Union territory", "Autonomous region",
        "Autonomous community", "Metropolitan region", "Administrative region", "Autonomous republic",
    }
)  # fmt: skip
_BRACKETS = re.compile(r"\s*[\[(].*?[\])]")
_LEADING_THE = re.compile(r"^the\s+")


def normalize_place(name: str) -> str:
    """``name`` compared the way people write it: no accents, case or bracketed notes, no leading "the"."""
    plain = unicodedata.normalize("NFKD", _BRACKETS.sub("", name))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return _LEADING_THE.sub("", " ".join(plain.casefold().replace("-", " ").split()))


@functools.cache
def _coarse_places() -> frozenset[str]:
    import pycountry

    names: set[str] = set()
    for country in pycountry.countries:
        for attribute in ("name", "common_name", "official_name"):
            value = getattr(country, attribute, None)
            if value:
                names.add(normalize_place(value))
    for region in pycountry.subdivisions:
        if region.parent_code is None and region.type in _REGION_TYPES:
            names.add(normalize_place(region.name))
    return frozenset(names)


def coarse_place(value: str) -> bool:
    """Whether ``value`` names a country or a first-level region of one ("India", "new jersey")."""
    return normalize_place(value.strip(" \t\n.,;:!?")) in _coarse_places()
