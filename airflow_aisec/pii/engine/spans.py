"""From Presidio's results to spans: long texts cut into windows, implausible findings dropped, overlaps
resolved."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_aisec.pii.engine.config import DATE_NUMBER_DISCOUNT, WINDOW_CHARS, WINDOW_OVERLAP
from airflow_aisec.pii.types import Span

# Entities whose recognizer validates a checksum or structure (Luhn, IBAN check digits, public suffix): a
# validated match is trusted over a weak one of the same text.
VALIDATED_ENTITIES = frozenset(
    {"CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "IP_ADDRESS", "CRYPTO", "MAC_ADDRESS", "UK_NHS"}
)
# Entities whose patterns match many plain numbers and words: they lose every tie.
WEAK_ENTITIES = frozenset(
    {"US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_PASSPORT", "US_ITIN", "DATE_TIME", "MEDICAL_LICENSE", "NRP"}
)


def entity_rank(entity: str) -> int:
    """0 for checksum-validated entities, 2 for weak ones, 1 otherwise: lower wins a tie."""
    if entity in VALIDATED_ENTITIES:
        return 0
    return 2 if entity in WEAK_ENTITIES else 1


def windows(text: str) -> list[tuple[int, str]]:
    """``(offset, piece)`` windows covering ``text``: the text itself unless longer than ``WINDOW_CHARS``.

    Windows overlap by ``WINDOW_OVERLAP`` characters and end at whitespace where possible, so an entity cut
    by one window's end is whole in the next.
    """
    if len(text) <= WINDOW_CHARS:
        return [(0, text)]
    result: list[tuple[int, str]] = []
    start = 0
    while True:
        end = min(start + WINDOW_CHARS, len(text))
        if end < len(text):
            # End at the last whitespace of the window's tail, so fewer entities are cut at all.
            tail = end - WINDOW_OVERLAP // 2
            cut = max(text.rfind(" ", tail, end), text.rfind("\n", tail, end))
            end = cut if cut > start else end
        result.append((start, text[start:end]))
        if end >= len(text):
            return result
        start = end - WINDOW_OVERLAP


@dataclass(frozen=True)
class Window:
    """``piece`` is ``text[offset:offset + len(piece)]`` of a text ``total`` characters long."""

    offset: int
    piece: str
    total: int

    def spans(self, results: Iterable[Any], threshold: float) -> Iterator[Span]:
        """Presidio's results as spans of the whole text, less truncated, implausible and discounted ones."""
        from airflow_aisec.pii import recognizers

        cut_before = self.offset > 0
        cut_after = self.offset + len(self.piece) < self.total
        for result in results:
            start, end = int(result.start), int(result.end)
            # A span touching a cut edge may be a truncated entity; the overlapping window holds it whole.
            if (cut_before and start == 0) or (cut_after and end == len(self.piece)):
                continue
            if not 0 <= start < end <= len(self.piece):
                continue
            entity = str(result.entity_type)
            if not recognizers.from_ours(result) and not recognizers.plausible(
                entity, self.piece, start, end
            ):
                continue
            score = min(1.0, max(0.0, float(result.score)))
            if entity == "DATE_TIME" and _bare_number(self.piece[start:end]):
                # spaCy tags long bare numbers (phone, account, card numbers) as DATE: keep them only when
                # nothing better claims them, and not at all below the threshold.
                score *= DATE_NUMBER_DISCOUNT
                if score < threshold:
                    continue
            yield Span(entity, start + self.offset, end + self.offset, score)


def _bare_number(text: str) -> bool:
    digits = text.replace(" ", "")
    return len(digits) >= 5 and digits.isdigit()


def resolve_overlaps(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Non-overlapping spans sorted by start: highest score wins, then the longest, then ``entity_rank``."""
    ranked = sorted(
        set(spans), key=lambda s: (-s.score, s.start - s.end, entity_rank(s.entity), s.start, s.entity)
    )
    starts: list[int] = []
    kept: list[Span] = []
    for span in ranked:
        i = bisect.bisect_right(starts, span.start)
        # kept is sorted by start and non-overlapping: only the neighbours can overlap the new span.
        if i > 0 and kept[i - 1].end > span.start:
            continue
        if i < len(kept) and kept[i].start < span.end:
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return tuple(kept)
