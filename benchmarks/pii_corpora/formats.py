"""How people write numbers: phones, cards and IBANs rewritten the many ways they appear in real messages.

The digits come from each source's own generator; these functions only choose how a person would write
them (groupings, separators, international prefixes, extensions, a local number without its area code).
"""

from __future__ import annotations

import random
import string

import phonenumbers

CALLING_CODES = {"US": "1", "GB": "44", "DE": "49", "FR": "33", "IN": "91"}
EXTENSIONS = (" x{}", " ext. {}", " ext {}", " Ext.{}", " extension {}", "x{}", " #{}")


def national_number(number: str, region: str) -> str | None:
    """The national significant digits of a generated phone number, or None if it cannot be parsed."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    digits = phonenumbers.national_significant_number(parsed)
    return digits if 6 <= len(digits) <= 12 else None


def _chunks(rng: random.Random, digits: str, first: int) -> list[str]:
    """``digits`` as an area code of ``first`` digits, then the rest in one of the ways people group it:
    one block, two halves, pairs, or threes (ending on a group of 2 to 4).
    """
    rest = digits[first:]
    options = [[rest[: len(rest) // 2], rest[len(rest) // 2 :]]]
    if len(rest) <= 8:
        options.append([rest])
    if len(rest) % 2 == 0:
        options.append([rest[i : i + 2] for i in range(0, len(rest), 2)])
    threes = [rest[i : i + 3] for i in range(0, len(rest), 3)]
    if len(threes) > 1 and len(threes[-1]) == 1:
        threes[-2:] = [threes[-2] + threes[-1]]
    options.append(threes)
    return [digits[:first], *(group for group in rng.choice(options) if group)]


def _groups(rng: random.Random, digits: str, region: str) -> list[str]:
    """The digit groups a person of ``region`` would write."""
    if region == "US" and len(digits) == 10:
        return [digits[:3], digits[3:6], digits[6:]]
    if region == "FR" and len(digits) == 9:
        return [digits[0], *(digits[i : i + 2] for i in range(1, 9, 2))]
    return _chunks(rng, digits, rng.choice((2, 3, 4)) if len(digits) > 7 else 3)


def _national(rng: random.Random, digits: str, region: str) -> str:
    groups = _groups(rng, digits, region)
    if region == "US":
        return rng.choice(
            (
                f"({groups[0]}) {'-'.join(groups[1:])}",
                "-".join(groups),
                ".".join(groups),
                " ".join(groups),
                f"({groups[0]}){'-'.join(groups[1:])}",
                f"1-{'-'.join(groups)}",
            )
        )
    groups[0] = "0" + groups[0]
    separator = rng.choice((" ", " ", "-", ".", "/", ""))
    if rng.random() < 0.25:
        return f"({groups[0]}) {separator.join(groups[1:])}".replace("  ", " ")
    return separator.join(groups)


def _international(rng: random.Random, digits: str, region: str) -> str:
    code = CALLING_CODES[region]
    groups = _groups(rng, digits, region)
    separator = rng.choice((" ", " ", "-", ".")) if region == "US" else rng.choice((" ", " ", "-"))
    body = separator.join(groups)
    prefix = rng.choice((f"+{code} ", f"+{code} ", f"00{code} ", f"00 {code} ", f"+{code}-", f"+{code}"))
    if region == "US":
        prefix = rng.choice((f"+{code} ", f"+{code}-", f"00{code}-", "001 ", f"+{code} "))
        if rng.random() < 0.3:
            body = f"({groups[0]}) {'-'.join(groups[1:])}"
    elif region in ("GB", "DE") and rng.random() < 0.25:
        prefix = f"+{code} (0)"
    return prefix + body


def _local(rng: random.Random, digits: str) -> str:
    """The subscriber part alone, as in a note among neighbours: the last 6 or 7 digits."""
    tail = digits[-7:] if len(digits) >= 9 and rng.random() < 0.7 else digits[-6:]
    cut = 3 if len(tail) in (6, 7) else 4
    return rng.choice((" ", "-", "", ".")).join((tail[:cut], tail[cut:]))


def phone(rng: random.Random, number: str, region: str) -> str:
    """A generated phone number as a person writes it: the generator's own format or a regrouping of its
    digits (national, international with ``+``/``00``/``00 ``, local without area code), sometimes with an
    extension.
    """
    digits = national_number(number, region)
    roll = rng.random()
    if digits is None or roll < 0.3:
        written = number
    elif roll < 0.6:
        written = _national(rng, digits, region)
    elif roll < 0.9:
        written = _international(rng, digits, region)
    else:
        written = _local(rng, digits)
    if rng.random() < 0.15 and "x" not in written.lower():
        written += rng.choice(EXTENSIONS).format(rng.randint(1, 9999))
    return written


def luhn_completed(prefix: str, length: int, rng: random.Random) -> str:
    """A card number of ``length`` digits starting with ``prefix``, its last digit the Luhn check digit."""
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


def card(rng: random.Random, number: str) -> str:
    """A card number as written on a form or in a message: grouped by spaces or dashes, or run together."""
    digits = "".join(char for char in number if char.isdigit())
    if len(digits) == 15:
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return rng.choice((" ", " ", "-", "", "")).join(groups)


def iban_of(country: str, bban: str) -> str:
    """The IBAN of a country code and a domestic account number (BBAN), with its ISO 13616 check digits."""
    rearranged = bban + country + "00"
    numeric = "".join(str(int(char, 36)) for char in rearranged.upper())
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def iban(rng: random.Random, value: str) -> str:
    """An IBAN compact, or in the groups of four it is printed in."""
    compact = value.replace(" ", "")
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
