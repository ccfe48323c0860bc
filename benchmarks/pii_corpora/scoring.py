"""Scoring of a masking run against labeled samples, the same for every system compared.

- **recall** of an entity: the share of its labeled values no longer present verbatim in the masked text
  (what an outsider checks with ``value in masked``);
- **fully masked**: stricter, no piece of the value is left either: no run of 3 or more digits of the value,
  and for names and addresses no word of it (titles aside), still stands as a whole token in the masked text.
  A piece that also occurs in the text outside the value cannot be told apart and is not checked;
- **precision**: the share of masked spans (overlapping spans merged first) that overlap a labeled value, of
  any entity: masking a street as a person still hides PII. Per entity, spans are grouped by the entity the
  system gave them (``entity_group``);
- **false-positive rate** on PII-free text: the share of texts the masking changed at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from benchmarks.pii_corpora.compose import ADDRESS, ENTITIES, PERSON, PHONE, Label, Sample, has_context

# Entities a system may report, grouped under the labeled entity they mask; anything else is "other".
ENTITY_GROUPS = {"LOCATION": ADDRESS, "ADDRESS": ADDRESS, "GPE": ADDRESS, "STREET": ADDRESS}
OTHER = "other"
TITLES = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "prof",
        "sir",
        "herr",
        "frau",
        "fr",
        "m",
        "mme",
        "mlle",
        "monsieur",
        "madame",
        "shri",
        "smt",
    ]
)
WORDED = (PERSON, ADDRESS)

_DIGITS = re.compile(r"\d{3,}")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Found:
    """A span a system masked, in the original text's offsets, with the entity it reported."""

    start: int
    end: int
    entity: str


def entity_group(entity: str) -> str:
    """The labeled entity a reported entity masks (``LOCATION`` masks addresses), or ``other``."""
    if entity in ENTITIES:
        return entity
    return ENTITY_GROUPS.get(entity, OTHER)


def caught(label: Label, masked: str) -> bool:
    """Whether the labeled value no longer appears verbatim in the masked text."""
    return label.value not in masked


def pieces(label: Label) -> set[str]:
    """What must not survive of a value: its digit runs of 3+, and for names and addresses its words."""
    found = set(_DIGITS.findall(label.value))
    if label.entity in WORDED:
        found.update(
            word
            for word in _WORD.findall(label.value)
            if len(word) >= 2 and not word.isdigit() and word.lower() not in TITLES
        )
    return found


def _stands_in(piece: str, text: str) -> bool:
    """Whether ``piece`` occurs in ``text`` as a whole token (digits not inside a longer digit run)."""
    return re.search(rf"(?<![^\W_]){re.escape(piece)}(?![^\W_])", text) is not None


def fully_masked(label: Label, original: str, masked: str) -> bool:
    """Whether nothing identifying of the value is left in ``masked`` (see the module docstring)."""
    if not caught(label, masked):
        return False
    outside = original[: label.start] + " " + original[label.end :]
    return not any(_stands_in(p, masked) for p in pieces(label) if not _stands_in(p, outside))


def merge(found: Iterable[Found]) -> list[Found]:
    """Overlapping spans merged into one, sorted by position; a merged span keeps the entity of its longest
    part (the earliest of equally long ones).
    """
    merged: list[Found] = []
    longest: list[int] = []
    for span in sorted(found, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            entity = last.entity
            if span.end - span.start > longest[-1]:
                entity, longest[-1] = span.entity, span.end - span.start
            merged[-1] = Found(last.start, max(last.end, span.end), entity)
        else:
            merged.append(span)
            longest.append(span.end - span.start)
    return merged


def overlaps(span: Found, labels: Sequence[Label]) -> bool:
    """Whether a masked span shares at least one character with a labeled value."""
    return any(span.start < label.end and label.start < span.end for label in labels)


@dataclass
class Tally:
    """Counts of one entity (or bucket) for one system."""

    values: int = 0
    caught: int = 0
    full: int = 0
    spans: int = 0
    hits: int = 0

    def recall(self) -> float:
        return self.caught / self.values if self.values else float("nan")

    def fully(self) -> float:
        return self.full / self.values if self.values else float("nan")

    def precision(self) -> float:
        return self.hits / self.spans if self.spans else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        """The counts and their shares, for ``--json``."""
        return {
            "values": self.values,
            "caught": self.caught,
            "fully_masked": self.full,
            "spans": self.spans,
            "spans_on_pii": self.hits,
            "recall": self.recall(),
            "fully_masked_share": self.fully(),
            "precision": self.precision(),
        }


@dataclass
class Score:
    """A system's figures on one labeled source: per entity, overall, and phones with/without context."""

    entities: dict[str, Tally] = field(default_factory=dict)
    total: Tally = field(default_factory=Tally)
    phone_context: dict[str, Tally] = field(default_factory=dict)
    locales: dict[str, Tally] = field(default_factory=dict)  # by the locale ending the template name
    missed: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # value, masked, template

    def tally(self, entity: str) -> Tally:
        return self.entities.setdefault(entity, Tally())


def _count_value(score: Score, sample: Sample, label: Label, masked: str) -> None:
    hit, full = caught(label, masked), fully_masked(label, sample.text, masked)
    locale = score.locales.setdefault(sample.template.rsplit("/", 1)[-1], Tally())
    buckets = [score.tally(label.entity), score.total, locale]
    if label.entity == PHONE:
        context = "with context word" if has_context(sample.text, label) else "without context word"
        buckets.append(score.phone_context.setdefault(context, Tally()))
    for tally in buckets:
        tally.values += 1
        tally.caught += hit
        tally.full += full
    if not hit:
        score.missed.setdefault(label.entity, []).append((label.value, masked, sample.template))


def score(samples: Sequence[Sample], masked: Sequence[str], found: Sequence[Sequence[Found]]) -> Score:
    """Recall, full masking and precision of one system's output on labeled ``samples`` (same order)."""
    if not len(samples) == len(masked) == len(found):
        raise ValueError("samples, masked texts and spans must be of the same length")
    result = Score()
    for sample, text, spans in zip(samples, masked, found, strict=True):
        for label in sample.labels:
            _count_value(result, sample, label, text)
        for span in merge(spans):
            on_pii = overlaps(span, sample.labels)
            for tally in (result.tally(entity_group(span.entity)), result.total):
                tally.spans += 1
                tally.hits += on_pii
    return result


def false_positive_rate(originals: Sequence[str], masked: Sequence[str]) -> tuple[int, int]:
    """``(changed, total)`` over PII-free texts: a text counts when masking changed anything in it."""
    if len(originals) != len(masked):
        raise ValueError("originals and masked texts must be of the same length")
    return sum(a != b for a, b in zip(originals, masked, strict=True)), len(originals)
