"""What a column's name suggests about its content (``email``, ``first_name``, ``birth_date``): hints a scan
weighs against the sampled values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Hint:
    """What a column's name suggests: ``needs_values`` hints count only when values support them."""

    entity: str
    needs_values: bool
    numeric: bool = False


_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_HINT_WORDS: tuple[tuple[frozenset[str], Hint], ...] = (
    (frozenset({"email", "mail", "emailaddress", "emails"}), Hint("EMAIL_ADDRESS", True)),
    (frozenset({"ip", "ipaddress", "ipv4", "ipv6"}), Hint("IP_ADDRESS", True)),
    (
        frozenset({"phone", "tel", "telephone", "mobile", "cell", "cellphone", "fax", "msisdn", "phones"}),
        Hint("PHONE_NUMBER", True, numeric=True),
    ),
    (frozenset({"card", "cc", "pan", "creditcard", "cardnumber"}), Hint("CREDIT_CARD", True, numeric=True)),
    (frozenset({"ssn", "socialsecurity"}), Hint("US_SSN", True, numeric=True)),
    (frozenset({"iban"}), Hint("IBAN_CODE", True)),
    (
        frozenset({"zip", "zipcode", "postcode", "postal", "postalcode"}),
        Hint("LOCATION", False, numeric=True),
    ),
    (frozenset({"address", "addr", "street", "city", "town", "addressline"}), Hint("LOCATION", False)),
)
_PERSON_WORDS = frozenset(
    {"surname", "firstname", "lastname", "fullname", "forename", "givenname", "familyname", "middlename"}
)
# Words that, next to "name", make it a person's name (customer_name, first_name), unlike product_name.
_PERSON_QUALIFIERS = frozenset(
    {"first", "last", "full", "given", "family", "middle", "maiden", "sur", "customer", "contact", "person",
     "user", "employee", "patient", "holder", "cardholder", "owner", "recipient", "sender", "display"}
)  # fmt: skip
_BIRTH_WORDS = frozenset({"dob", "birth", "birthday", "birthdate", "born"})
# Columns recording when something happened to a record, not to a person.
_EVENT_WORDS = frozenset(
    {"at", "created", "updated", "modified", "inserted", "deleted", "timestamp", "ts", "opened", "closed",
     "filed", "ordered", "shipped", "loaded", "ingested", "processed", "received", "sent", "expires",
     "expiry", "expired", "started", "ended", "since", "until", "logged", "seen", "event", "effective",
     "valid"}
)  # fmt: skip


def name_tokens(path: str) -> list[str]:
    return [token.lower() for token in _TOKEN.findall(path)]


def name_hint(path: str) -> Hint | None:
    tokens = name_tokens(path)
    words = set(tokens) | {"".join(tokens)}
    for hint_words, hint in _HINT_WORDS:
        if words & hint_words:
            return hint
    if words & _PERSON_WORDS or ("name" in words and words & _PERSON_QUALIFIERS):
        return Hint("PERSON", False)
    if tokens == ["name"]:
        return Hint("PERSON", True)  # a bare `name` may name anything: products, files, teams
    return None


def date_hint(path: str) -> Literal["birth", "event"] | None:
    tokens = name_tokens(path)
    if set(tokens) & _BIRTH_WORDS or "birth" in "".join(tokens):
        return "birth"
    if tokens and (tokens[-1] == "at" or set(tokens) & _EVENT_WORDS):
        return "event"
    return None
