"""Card numbers: every Luhn-valid number of 13-19 digits, grouped any way with single spaces or dashes.

Presidio's card pattern knows only some issuer prefixes (no Mastercard 2-series 2221-2720) and the 4-4-4-4
grouping family (not Amex's 4-6-5 with spaces); a 2-series number then reaches the engine only as spaCy's
DATE, discounted as a bare number. Here a number with a major network's prefix and length is trusted
outright once Luhn-valid; another Luhn-valid number of 13-19 digits scores lower, and higher with a card
word ("card", "visa", ...) before it; 12-digit Maestro numbers need that word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from airflow_aisec.pii.recognizers.common import Found

CONTEXT_CHARS = 40

_CARD_RUN = re.compile(r"(?<![\w.,/+-])\d{1,19}(?:[ -]\d{1,8}){0,7}(?![\w]|[.,/-]\d)")
CARD_CONTEXT = re.compile(
    r"(?<![\w])(?:credit|debit|card|carte|karte|kreditkarte|tarjeta|visa|mastercard|master card|amex|"
    r"american express|discover|jcb|diners|maestro|unionpay|cc|cvv|pan|paid with|pay with)(?![\w])",
    re.IGNORECASE,
)
# Issuer prefixes (first digits) and lengths of the card networks.
_ISSUERS = (
    (re.compile(r"^4"), (13, 16, 19)),  # Visa
    (re.compile(r"^(?:5[1-5]|222[1-9]|22[3-9]\d|2[3-6]\d\d|27[01]\d|2720)"), (16,)),  # Mastercard
    (re.compile(r"^3[47]"), (15,)),  # American Express
    (re.compile(r"^(?:6011|65|64[4-9]|622)"), (16, 17, 18, 19)),  # Discover
    (re.compile(r"^35(?:2[89]|[3-8]\d)"), (16, 17, 18, 19)),  # JCB
    (re.compile(r"^3(?:0[0-5]|095|6|8|9)"), (14, 15, 16, 17, 18, 19)),  # Diners Club
    (re.compile(r"^(?:5[06-9]|6\d)"), (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro
    (re.compile(r"^62"), (16, 17, 18, 19)),  # UnionPay
)
ISSUER_CARD_SCORE = 1.0
LUHN_CARD_SCORE = 0.5
# 12-digit Maestro numbers: as long as many order and account numbers.
SHORT_CARD_SCORE = 0.4
CARD_CONTEXT_BOOST = 0.35


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn checksum of card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def known_issuer(digits: str) -> bool:
    """Whether ``digits`` starts like a card of a major network and has one of its lengths."""
    return any(prefix.match(digits) and len(digits) in lengths for prefix, lengths in _ISSUERS)


def card_score(text: str, start: int, digits: str) -> float | None:
    """The score of ``digits`` as a card number, or None when it fails Luhn or has no card's length."""
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits) or len(set(digits)) == 1:
        return None
    context = CARD_CONTEXT.search(text[max(0, start - CONTEXT_CHARS) : start]) is not None
    boost = CARD_CONTEXT_BOOST if context else 0.0
    if known_issuer(digits):
        return ISSUER_CARD_SCORE if len(digits) >= 13 else SHORT_CARD_SCORE + boost
    if len(digits) < 13 or digits.startswith("0"):
        return None
    return LUHN_CARD_SCORE + boost


def find_cards(text: str) -> Iterator[Found]:
    """Luhn-valid card numbers of 12-19 digits, in groups separated by single spaces or dashes."""
    for match in _CARD_RUN.finditer(text):
        groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", match.group())]
        base = match.start()
        yield from _cards_in_groups(text, base, match.group(), groups)


def _cards_in_groups(text: str, base: int, run: str, groups: Sequence[tuple[int, int]]) -> Iterator[Found]:
    first = 0
    while first < len(groups):
        for last in range(len(groups) - 1, first - 1, -1):
            start, end = groups[first][0], groups[last][1]
            digits = re.sub(r"\D", "", run[start:end])
            if len(digits) > 19:
                continue
            if len(digits) < 12:
                break
            score = card_score(text, base + start, digits)
            if score is not None:
                yield Found("CREDIT_CARD", base + start, base + end, score)
                first = last
                break
        first += 1
