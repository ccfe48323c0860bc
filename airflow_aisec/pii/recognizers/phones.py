"""Phone numbers as people write them: international or national, with extensions, short local numbers.

Presidio's phone recognizer runs libphonenumber's matcher once per region over the whole text (the costliest
step of pattern analysis) and rejects what is not a valid number of its eight regions: extensions, fictional
ranges, short local numbers, most of the world. Here one regular expression proposes runs of digits and
separators; each run is judged by its digit count and shape, libphonenumber's length rules (``+`` numbers)
and validity in ``PHONE_REGIONS`` (national ones), and context words before it. Dates, IP addresses,
thousands groupings and numbers after order/invoice/price words are not phones.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from airflow_aisec.pii.recognizers.common import Found, words

# ---------------------------------------------------------------------------------------------------------
# Phone numbers

# Words that say the number next to them is a phone number (en, de, fr, es, it, pt, nl). `_` stands for a
# space inside a phrase.
PHONE_CONTEXT = (
    "call called calling caller phone phoned phones telephone mobile mob cell cellphone tel tel. fax "
    "reach_me reach_him reach_her reach_us reach_them whatsapp text_me texted sms ring line answering "
    "rang landline contact dial dialled dialed hotline helpline voicemail "
    "telefon telefonnummer rufnummer handy mobil festnetz anrufen ruf durchwahl "
    "téléphone tél tél. portable appelez appeler numéro joindre "
    "teléfono telefono móvil movil llamar llame celular cellulare chiamare telemóvel telefoon bel"
)
# Context words that say "a number" but not which kind: they count only without an order/price word.
WEAK_PHONE_CONTEXT = "number no. nr. num nummer numéro número numero"
# Words that say a number is something else: an order, an invoice, an amount.
NOT_PHONE_CONTEXT = (
    "order invoice ticket ref reference case account acct iban sku serial version build release id "
    "tracking shipment parcel customer_no item batch lot po receipt transaction price total amount "
    "€ $ £ ¥ eur usd gbp chf isbn issn bestellung rechnung commande facture"
)
_PHONE_CONTEXT = re.compile(
    rf"(?<![\w])(?:{words(PHONE_CONTEXT)})(?![\w])|(?<![\w])(?:t|m|f|p|ph|mob|tel)\s*[:.]", re.IGNORECASE
)
_WEAK_PHONE_CONTEXT = re.compile(rf"(?<![\w])(?:{words(WEAK_PHONE_CONTEXT)})(?![\w])", re.IGNORECASE)
_NOT_PHONE_CONTEXT = re.compile(rf"(?<![\w])(?:{words(NOT_PHONE_CONTEXT)})|#\s*$", re.IGNORECASE)
CONTEXT_CHARS = 48

# A run of digits, separators and parentheses, with an optional extension. Validation decides the rest.
_PHONE_RUN = re.compile(
    r"(?<![\w@/+.,:-])"
    r"(?P<number>\+?\s?\(?\+?\d[\d\s().\-/\u2010-\u2013]{4,24}\d)"
    r"(?P<ext>\s*(?:x|ext\.?|extn\.?|extension|ext\.?\s*no\.?|poste|durchwahl|dw\.?|#)\s*\d{1,6})?"
    r"(?![\w@/]|[.,:\-]\d)",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[\s().\-/\u2010-\u2013]+")
_DATE_LIKE = re.compile(
    r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:\s+\d{1,2})?$|^\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})(?:\s+\d{1,2})?$"
)
_IP_LIKE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# Thousands grouping ("1 299 000", "12.500.000"): a number, not a phone, unless context says otherwise.
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .,]\d{3})+$")
_LOCAL_NANP = re.compile(r"^\d{3}[\s.\-]\d{4}$")
_DOUBLE_SEPARATOR = re.compile(r"[.\-/]{2}|\s{2,}|[.\-/]\s+[.\-/]")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "ES", "IT", "NL", "CH", "AT", "BE", "BR", "CA", "AU")

# Scores before context; context adds PHONE_CONTEXT_BOOST.
INTERNATIONAL_SCORE = 0.75
INTERNATIONAL_LOOSE_SCORE = 0.55
VALID_NATIONAL_SCORE = 0.65
FORMATTED_SCORE = 0.55
LOCAL_FORMAT_SCORE = 0.45
WEAK_PHONE_SCORE = 0.25
EXTENSION_BOOST = 0.1
PHONE_CONTEXT_BOOST = 0.35


def phone_context(text: str, start: int) -> bool:
    """Whether a phone context word stands before ``start`` (and no order/price word stands closer)."""
    before = text[max(0, start - CONTEXT_CHARS) : start]
    bad = [m.end() for m in _NOT_PHONE_CONTEXT.finditer(before)]
    good = [m.end() for m in _PHONE_CONTEXT.finditer(before)]
    if not bad:
        return bool(good) or _WEAK_PHONE_CONTEXT.search(before) is not None
    return bool(good) and max(good) >= max(bad)


def _negative_context(text: str, start: int) -> bool:
    before = text[max(0, start - 16) : start]
    return _NOT_PHONE_CONTEXT.search(before) is not None


def _ip_address(number: str) -> bool:
    return _IP_LIKE.match(number) is not None and all(int(part) <= 255 for part in number.split("."))


def _on_its_own_line(text: str, start: int, end: int) -> bool:
    """Whether the number opens a line and nothing but a separator ("|") follows it there (a signature)."""
    line_start = text.rfind("\n", 0, start) + 1
    rest = text[end:].split("\n", 1)[0].strip()
    return line_start > 0 and not text[line_start:start].strip() and (not rest or rest[0] in "|·•/,")


def _balanced(number: str) -> bool:
    depth = 0
    for char in number:
        depth += (char == "(") - (char == ")")
        if depth < 0 or depth > 1:
            return False
    return depth == 0


@functools.cache
def _phonenumbers() -> Any:
    import phonenumbers

    return phonenumbers


def _international_score(number: str, digits: str) -> float | None:
    phonenumbers = _phonenumbers()
    if number.startswith("+"):
        international = "+" + digits
    elif digits.startswith("011"):
        international = "+" + digits[3:]
    else:
        international = "+" + digits[2:]
    national = len(international) - 1
    if not 7 <= national <= 15:
        return None
    try:
        parsed = phonenumbers.parse(international, None)
    except phonenumbers.NumberParseException:
        return INTERNATIONAL_LOOSE_SCORE if national >= 8 else None
    if phonenumbers.is_possible_number(parsed):
        return INTERNATIONAL_SCORE
    return INTERNATIONAL_LOOSE_SCORE if national >= 8 else None


def _valid_in_a_region(digits: str) -> bool:
    phonenumbers = _phonenumbers()
    for region in PHONE_REGIONS:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(digits, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _national_score(number: str, digits: str, context: bool) -> float | None:
    separated = _SEPARATORS.search(number) is not None
    count = len(digits)
    if _THOUSANDS.match(number) and not context and not (count >= 9 and _valid_in_a_region(digits)):
        # "1 299 000" is an amount; "967 654 681" (nine digits, valid in Spain) is a phone.
        return None
    if count <= 8:
        if not separated:
            return WEAK_PHONE_SCORE if count >= 6 else None
        return LOCAL_FORMAT_SCORE if _LOCAL_NANP.match(number) else WEAK_PHONE_SCORE
    if count > 13:
        return WEAK_PHONE_SCORE if separated else None
    if separated:
        return VALID_NATIONAL_SCORE if _valid_in_a_region(digits) else FORMATTED_SCORE
    # Bare digits are as often account or order numbers: only a valid number of a usual length is a phone.
    return VALID_NATIONAL_SCORE if count <= 11 and _valid_in_a_region(digits) else WEAK_PHONE_SCORE


def phone_score(text: str, start: int, number: str, extension: bool) -> float | None:
    """The score of ``number`` (at ``start`` of ``text``) as a phone number, or None when it is not one."""
    number = number.strip()
    if not _balanced(number) or _DOUBLE_SEPARATOR.search(number):
        return None
    if _DATE_LIKE.match(number) or _ip_address(number):
        return None
    digits = "".join(char for char in number if char.isdigit())
    context = phone_context(text, start)
    international = number.startswith("+") or re.match(r"\(?(?:00|011)[\s.\-]?[1-9]", number) is not None
    context = context or _on_its_own_line(text, start, start + len(number))
    score = _international_score(number, digits) if international else None
    if score is None and not number.startswith("+"):
        # "00 ..." and "011 ..." that are no valid international number are national ones ("0117 256776").
        if len(digits) < 6 or (_negative_context(text, start) and not context):
            return None
        score = _national_score(number, digits, context)
    if score is None:
        return None
    if extension:
        score += EXTENSION_BOOST
    if context:
        score += PHONE_CONTEXT_BOOST
    return min(1.0, score)


def find_phones(text: str) -> Iterator[Found]:
    """Phone numbers in ``text``: international, national and (with context) local, with extensions."""
    if sum(char.isdigit() for char in text) < 6:
        return
    for match in _PHONE_RUN.finditer(text):
        number, start = match.group("number"), match.start("number")
        if number.startswith("(") and not _balanced(number):
            # "(+55-21 9885-0712)": the parenthesis belongs to the sentence, not to an area code.
            stripped = number.lstrip("( ")
            start, number = start + len(number) - len(stripped), stripped
        extension = match.group("ext") is not None
        score = phone_score(text, start, number, extension)
        if score is not None:
            yield Found("PHONE_NUMBER", start, match.end() if extension else start + len(number), score)
