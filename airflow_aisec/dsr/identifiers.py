"""The subject's identifiers, and how they travel between the steps of a request.

What resolution finds (identities, values the datasets link by, words their free text may mention them by)
is raw personal data and stays in memory (``Identifiers``); to hand it from one Airflow task to the next it
is sealed with a key of the request's own (``Identifiers.seal``/``unseal``, used by ``StateStore``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_aisec.exceptions import DsrError
from airflow_aisec.pii.strategies import IDENTIFIER_ENTITIES  # values that single a person out

MIN_MENTION = 4
"""Shorter identifiers are not searched for in free text: they would match unrelated words."""
MENTION_ENTITIES = IDENTIFIER_ENTITIES | {"PERSON", "PHONE_NUMBER"}
"""Entity types whose values in the subject's own rows are searched for in other rows' free text: the
identifier-like ones, and the subject's name (someone else's message quoting it is about them)."""


@dataclasses.dataclass
class Identifiers:
    """The subject's raw identifiers (in memory only): identities, linked values and text mentions."""

    identities: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    # (dataset, column) → values of that column in the subject's rows, for the datasets that reference it.
    linked: dict[tuple[str, str], set[str]] = dataclasses.field(default_factory=dict)
    mentions: set[str] = dataclasses.field(default_factory=set)

    def __repr__(self) -> str:  # raw personal data: never in logs or tracebacks
        return f"Identifiers({sum(len(v) for v in self.identities.values())} identities)"

    def add_identity(self, kind: str, values: Iterable[str]) -> bool:
        """Add identities of ``kind``; True when one is new."""
        known = self.identities.setdefault(kind, set())
        new = {v for v in values if v} - known
        known |= new
        self.mentions |= {v for v in new if len(v) >= MIN_MENTION}
        return bool(new)

    def mention_pattern(self) -> str | None:
        """A case-insensitive RE2 pattern matching any mention as a whole word, or None."""
        words = sorted(self.mentions, key=len, reverse=True)
        if not words:
            return None
        alternatives = "|".join(_mention_regex(w) for w in words)
        return rf"(?i)(?:^|[^0-9A-Za-z_])(?:{alternatives})(?:$|[^0-9A-Za-z_])"

    def mask_mentions(self, text: str, tag: str = "<REDACTED>") -> str:
        """``text`` with every whole-word mention of the subject replaced by ``tag``."""
        words = sorted(self.mentions, key=len, reverse=True)
        if not words:
            return text
        pattern = "|".join(_mention_regex(w) for w in words)
        return re.sub(rf"(?i)(?<![0-9A-Za-z_])(?:{pattern})(?![0-9A-Za-z_])", tag, text)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON form (raw values: seal it before it leaves the process)."""
        return {
            "identities": {k: sorted(v) for k, v in self.identities.items()},
            "linked": [[d, c, sorted(v)] for (d, c), v in sorted(self.linked.items())],
            "mentions": sorted(self.mentions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identifiers:
        """The inverse of ``as_json``."""
        return cls(
            {k: set(v) for k, v in data["identities"].items()},
            {(d, c): set(v) for d, c, v in data["linked"]},
            set(data["mentions"]),
        )

    def seal(self, key: bytes, associated: bytes) -> str:
        """AES-256-GCM ciphertext of these identifiers (URL-safe base64), authenticating ``associated``
        (what the identifiers belong to: request id, type, subject) with them."""
        nonce = secrets.token_bytes(12)
        body = json.dumps(self.as_json(), sort_keys=True).encode("utf-8")
        return base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, body, associated)).decode("ascii")

    @classmethod
    def unseal(cls, sealed: str, key: bytes, associated: bytes) -> Identifiers:
        """The identifiers ``seal`` sealed with the same key and ``associated``; ``DsrError`` otherwise."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            body = AESGCM(key).decrypt(raw[:12], raw[12:], associated)
        except (InvalidTag, ValueError):
            raise DsrError(
                "the sealed identifiers do not open: they belong to another request (request id, type or "
                "subject) or were altered"
            ) from None
        return cls.from_json(json.loads(body))


def _mention_regex(word: str) -> str:
    """``word`` as a regular expression (RE2 and Python alike) matching it with any run of white space
    between its parts: a name written "Oona  Quillfeather" or across a line break is still the name."""
    return r"\s+".join(re.escape(part) for part in word.split()) or re.escape(word)
