"""IBANs by their ISO 13616 check digits alone, whatever the length of the country's account part.

Presidio's IBAN recognizer also checks each country's BBAN length and layout, so an IBAN with a valid
checksum but an unusual length (as test generators and some national formats produce) is dropped. A
country code, two check digits and 11-30 letters or digits, in groups of four or not, with a valid
mod-97 checksum, is an IBAN here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from airflow_aisec.pii.recognizers.common import Found

_IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,4})?(?![\w])")
# Below Presidio's validated 1.0, so its match (with the country's layout checked) wins a tie of length.
IBAN_SCORE = 0.95


def iban_valid(value: str) -> bool:
    """Whether ``value`` (spaces allowed, any case) has valid IBAN check digits (ISO 7064 mod 97-10)."""
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def find_ibans(text: str) -> Iterator[Found]:
    """IBANs with valid check digits."""
    for match in _IBAN.finditer(text):
        if iban_valid(match.group()):
            yield Found("IBAN_CODE", match.start(), match.end(), IBAN_SCORE)
