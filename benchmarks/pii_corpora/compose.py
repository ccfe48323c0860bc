"""Labeled texts built from templates: each ``{slot}`` is filled with pieces, PII or plain, and every PII
piece becomes a label with its exact offsets in the finished text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

PERSON = "PERSON"
PHONE = "PHONE_NUMBER"
CARD = "CREDIT_CARD"
EMAIL = "EMAIL_ADDRESS"
IBAN = "IBAN_CODE"
SSN = "US_SSN"
IP = "IP_ADDRESS"
ADDRESS = "STREET_ADDRESS"
ENTITIES = (PERSON, PHONE, CARD, EMAIL, IBAN, SSN, IP, ADDRESS)

# Words that, standing shortly before a phone number, tell a reader (and a context-aware recognizer) what
# it is. Judged on the finished text, so a template cannot claim context it does not show.
CONTEXT_WORDS = (
    "call", "called", "calling", "phone", "phoned", "mobile", "cell", "cellphone", "tel", "telephone", "fax",
    "reach me at", "reach him at", "reach her at", "ring", "rang", "number", "whatsapp", "text me", "sms",
    "landline", "contact", "dial", "dialled", "dialed", "handy", "telefon", "tél", "portable", "hotline",
)  # fmt: skip
# Letters that are context only as a label of a signature or form line ("T: ...", "Mob. ...", "Ph: ...").
CONTEXT_LABELS = ("t", "m", "f", "p", "ph", "mob", "no", "tél", "tel")
CONTEXT_WINDOW = 32
_CONTEXT = re.compile(
    r"(?<![\w'])(?:"
    + "|".join(re.escape(w) for w in sorted(CONTEXT_WORDS, key=len, reverse=True))
    + r")\b|(?<![\w'])(?:"
    + "|".join(re.escape(w) for w in sorted(CONTEXT_LABELS, key=len, reverse=True))
    + r")\s*[:.]",
    re.IGNORECASE,
)
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Label:
    """One PII value in a text: ``text[start:end] == value``, of kind ``entity``."""

    entity: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    """A text and the PII values it holds (none for PII-free text); ``template`` names where it came from."""

    text: str
    labels: tuple[Label, ...]
    source: str
    template: str


@dataclass(frozen=True)
class Piece:
    """Part of a filled slot: PII of kind ``entity``, or plain text when ``entity`` is None."""

    entity: str | None
    value: str


Filler = Callable[[], Sequence[Piece]]


def plain(value: str) -> Piece:
    """A piece of text that is not PII (a title, a separator)."""
    return Piece(None, value)


def compose(
    template: str,
    fillers: Mapping[str, Filler],
    *,
    source: str,
    name: str,
    lower: bool = False,
) -> Sample:
    """Fill every ``{slot}`` of ``template`` from ``fillers``; ``lower`` lower-cases the whole text.

    Lower-casing is applied piece by piece, so offsets stay exact even where it changes a length.
    """
    parts = _SLOT.split(template)
    pieces: list[Piece] = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            pieces.append(plain(part))
        else:
            if part not in fillers:
                raise KeyError(f"template {name!r} has an unknown slot {{{part}}}")
            pieces.extend(fillers[part]())
    text: list[str] = []
    labels: list[Label] = []
    offset = 0
    for piece in pieces:
        value = piece.value.lower() if lower else piece.value
        if piece.entity is not None and value:
            labels.append(Label(piece.entity, value, offset, offset + len(value)))
        text.append(value)
        offset += len(value)
    return Sample("".join(text), tuple(labels), source, name)


def has_context(text: str, label: Label) -> bool:
    """Whether a phone-context word stands in the ``CONTEXT_WINDOW`` characters before ``label``."""
    return _CONTEXT.search(text[max(0, label.start - CONTEXT_WINDOW) : label.start]) is not None


def check(samples: Iterable[Sample]) -> None:
    """Refuse a sample whose labels do not match its text (a bug of a source, never of the engine)."""
    for sample in samples:
        for label in sample.labels:
            if sample.text[label.start : label.end] != label.value or label.entity not in ENTITIES:
                raise ValueError(f"label {label} does not match template {sample.template!r}")
