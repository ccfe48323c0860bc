"""Labeled synthetic PII for the PII benchmarks: tables and support-ticket texts, with their ground truth.

Everything is drawn from ``random.Random(seed)``: the same arguments give the same data on every run. People
come from five locales (en-US, en-GB, de-DE, fr-FR, es-ES), each with its own names, street addresses and
phone formats; phone numbers are valid for libphonenumber, card numbers pass the Luhn check, e-mails use the
reserved example.com/.org/.net domains and IPv4 addresses the documentation ranges.

``table(rows, seed)`` returns a pyarrow Table of 6 PII columns (three of them with misleading names: ``col_7``
holds e-mails, ``ref`` phone numbers, ``notes_id`` card numbers) and 2 plain columns, about 3% nulls in each
PII column, plus ``{column: entity or None}``. ``texts(n, seed)`` returns short support tickets and, for each,
the ``(entity, value)`` pairs it mentions.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

NULL_SHARE = 0.03


@dataclass(frozen=True)
class Locale:
    """Names, places and phone formats of one locale (``#`` in a phone format is a random digit)."""

    code: str
    first: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (city, postcode pattern)
    address: str  # format with {number}, {street}, {city}, {postcode}
    phones: tuple[str, ...]


LOCALES: tuple[Locale, ...] = (
    Locale(
        "en-US",
        ("James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda", "William",
         "Elizabeth", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Karen", "Christopher", "Nancy"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
         "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Thompson", "Harris", "Clark", "Lewis"),
        ("Maple Street", "Oak Avenue", "Pine Road", "Cedar Lane", "Elm Street", "Washington Avenue"),
        (("Springfield, IL", "627##"), ("Austin, TX", "787##"), ("Denver, CO", "802##"),
         ("Portland, OR", "972##"), ("Columbus, OH", "432##"), ("Boston, MA", "021##")),
        "{number} {street}, {city} {postcode}",
        ("(212) 555-01##", "+1 415-555-01##", "312-555-01##", "+1 (646) 555-01##"),
    ),
    Locale(
        "en-GB",
        ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily", "Charlie", "Sophie",
         "Alfie", "Grace", "Oscar", "Lily", "Archie", "Freya"),
        ("Walker", "Wright", "Robinson", "Thompson", "Hughes", "Edwards", "Green", "Hall", "Wood",
         "Harrison", "Bennett", "Cooper", "Turner", "Patel", "Evans", "Roberts"),
        ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Park Road"),
        (("London", "SW1A #AA"), ("Leeds", "LS1 #AP"), ("Manchester", "M1 #AE"), ("Bristol", "BS1 #QQ"),
         ("Glasgow", "G1 #JX")),
        "{number} {street}, {city} {postcode}",
        ("+44 20 7946 0###", "020 7946 0###", "+44 113 496 0###", "0161 496 0###"),
    ),
    Locale(
        "de-DE",
        ("Lukas", "Anna", "Maximilian", "Lena", "Jonas", "Leonie", "Felix", "Hannah", "Paul", "Laura",
         "Jürgen", "Sabine", "Klaus", "Ursula", "Stefan", "Katrin"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
         "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf"),
        ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee", "Goethestraße"),
        (("Berlin", "101##"), ("München", "803##"), ("Hamburg", "203##"), ("Köln", "506##"),
         ("Frankfurt am Main", "603##")),
        "{street} {number}, {postcode} {city}",
        ("+49 30 ########", "030 ########", "+49 151 ########", "0151 ########", "+49 89 #######"),
    ),
    Locale(
        "fr-FR",
        ("Jean", "Marie", "Pierre", "Camille", "Louis", "Chloé", "Hugo", "Manon", "Lucas", "Léa",
         "Antoine", "Juliette", "Nicolas", "Inès", "Julien", "Élodie"),
        ("Martin", "Bernard", "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "Simon", "Michel",
         "Garcia", "Roux", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert"),
        ("rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue du Moulin", "place de la Gare"),
        (("Paris", "750##"), ("Lyon", "6900#"), ("Marseille", "130##"), ("Toulouse", "310##"),
         ("Bordeaux", "330##")),
        "{number} {street}, {postcode} {city}",
        ("+33 6 1# ## ## ##", "06 2# ## ## ##", "+33 1 ## ## ## ##", "01 ## ## ## ##"),
    ),
    Locale(
        "es-ES",
        ("Alejandro", "Lucía", "Daniel", "María", "Pablo", "Paula", "Javier", "Carmen", "Sergio",
         "Sofía", "Carlos", "Elena", "Manuel", "Laura", "Jorge", "Marta"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
         "Gómez", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Álvarez", "Romero"),
        ("Calle Mayor", "Avenida de la Constitución", "Calle Real", "Paseo del Prado", "Calle del Sol"),
        (("Madrid", "280##"), ("Barcelona", "080##"), ("Valencia", "460##"), ("Sevilla", "410##"),
         ("Bilbao", "480##")),
        "{street} {number}, {postcode} {city}",
        ("+34 6## ### ###", "+34 91 ### ## ##", "6## ## ## ##"),
    ),
)  # fmt: skip

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
# (prefix, length) of Visa, Mastercard and American Express numbers.
CARD_KINDS = (("4", 16), ("51", 16), ("53", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15))
# IPv4 documentation ranges (RFC 5737).
IP_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")
STATUSES = ("pending", "shipped", "delivered", "returned", "cancelled")


# ---------------------------------------------------------------------------------------------------------
# Values


def digits(rng: random.Random, pattern: str) -> str:
    """``pattern`` with every ``#`` replaced by a random digit."""
    return "".join(str(rng.randrange(10)) if char == "#" else char for char in pattern)


def ascii_fold(text: str) -> str:
    """Lower-case ASCII for e-mail local parts: Müller → mueller, Chloé → chloe."""
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if char.isascii() and char.isalnum())


@dataclass(frozen=True)
class Person:
    """One synthetic person of a locale."""

    locale: Locale
    first: str
    last: str

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first} {self.last}"


def person(rng: random.Random) -> Person:
    """A person of a random locale."""
    locale = rng.choice(LOCALES)
    return Person(locale, rng.choice(locale.first), rng.choice(locale.last))


def email(rng: random.Random, who: Person) -> str:
    """An e-mail address derived from the person's name, at an example domain."""
    first, last = ascii_fold(who.first), ascii_fold(who.last)
    style = rng.randrange(4)
    local = (
        f"{first}.{last}",
        f"{first[0]}{last}",
        f"{first}{last}{rng.randrange(1, 100)}",
        f"{last}.{first}{rng.randrange(1950, 2006)}",
    )[style]
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def phone(rng: random.Random, who: Person) -> str:
    """A phone number in one of the person's locale formats (national or international)."""
    return digits(rng, rng.choice(who.locale.phones))


def us_phone_number(rng: random.Random) -> int:
    """A US phone number as a plain integer (area code, 555 exchange, 01xx line), e.g. 2125550147."""
    return int(f"{rng.choice((212, 312, 415, 617, 646, 720))}55501{rng.randrange(100):02d}")


def address(rng: random.Random, who: Person) -> str:
    """A street address in the person's locale format."""
    locale = who.locale
    city, postcode = rng.choice(locale.cities)
    return locale.address.format(
        number=rng.randrange(1, 200),
        street=rng.choice(locale.streets),
        city=city,
        postcode=digits(rng, postcode),
    )


def luhn_digit(partial: str) -> str:
    """The check digit that makes ``partial`` + digit pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:  # doubled: these positions are odd counting from the check digit
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether the digits of ``number`` pass the Luhn check."""
    only = [c for c in number if c.isdigit()]
    return luhn_digit("".join(only[:-1])) == only[-1]


def card_number(rng: random.Random) -> str:
    """A Luhn-valid Visa/Mastercard/Amex number, grouped by spaces or dashes or not at all."""
    prefix, length = rng.choice(CARD_KINDS)
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    style = rng.randrange(3)
    if style == 0:
        return number
    groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    parts, start = [], 0
    for size in groups:
        parts.append(number[start : start + size])
        start += size
    return (" " if style == 1 else "-").join(parts)


def ipv4(rng: random.Random) -> str:
    """An IPv4 address of a documentation range."""
    return f"{rng.choice(IP_PREFIXES)}.{rng.randrange(1, 255)}"


def birth_date(rng: random.Random) -> dt.date:
    """A date of birth between 1940 and 2005."""
    return dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 65))


def iban_de(rng: random.Random) -> str:
    """A German IBAN with valid check digits (ISO 13616 mod 97), grouped by four."""
    bban = digits(rng, "#" * 18)
    numeric = int(bban + "131400")  # D=13, E=14, then "00"
    check = 98 - numeric % 97
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


# ---------------------------------------------------------------------------------------------------------
# Table


TABLE_TRUTH: dict[str, str | None] = {
    "order_id": None,
    "full_name": "PERSON",
    "col_7": "EMAIL_ADDRESS",
    "ref": "PHONE_NUMBER",
    "address": "LOCATION",
    "notes_id": "CREDIT_CARD",
    "birth_date": "DATE_TIME",
    "status": None,
}


def _nullable(rng: random.Random, make: Callable[[], object]) -> object:
    return None if rng.random() < NULL_SHARE else make()


def _row(rng: random.Random, numeric_phone: bool) -> dict[str, object]:
    who = person(rng)
    return {
        "full_name": _nullable(rng, lambda: who.name),
        "col_7": _nullable(rng, lambda: email(rng, who)),
        "ref": _nullable(rng, lambda: us_phone_number(rng) if numeric_phone else phone(rng, who)),
        "address": _nullable(rng, lambda: address(rng, who)),
        "notes_id": _nullable(rng, lambda: card_number(rng)),
        "birth_date": _nullable(rng, lambda: birth_date(rng)),
        "status": rng.choice(STATUSES),
    }


def table(rows: int, seed: int = 0, *, numeric_phone: bool = False) -> tuple[pa.Table, dict[str, str | None]]:
    """``rows`` labeled rows and the ground truth ``{column: entity or None}``.

    Columns: ``order_id`` (int64, plain), ``full_name`` (PERSON), ``col_7`` (EMAIL_ADDRESS), ``ref``
    (PHONE_NUMBER; int64 US numbers with ``numeric_phone``), ``address`` (LOCATION), ``notes_id``
    (CREDIT_CARD), ``birth_date`` (date32, DATE_TIME), ``status`` (plain). PII columns have ~3% nulls.
    """
    rng = random.Random(seed)
    data: dict[str, list[object]] = {name: [] for name in TABLE_TRUTH if name != "order_id"}
    for _ in range(rows):
        for name, value in _row(rng, numeric_phone).items():
            data[name].append(value)
    types = {"ref": pa.int64() if numeric_phone else pa.string(), "birth_date": pa.date32()}
    arrays = {"order_id": pa.array(range(1, rows + 1), pa.int64())}
    arrays |= {name: pa.array(values, types.get(name, pa.string())) for name, values in data.items()}
    return pa.table({name: arrays[name] for name in TABLE_TRUTH}), dict(TABLE_TRUTH)


# ---------------------------------------------------------------------------------------------------------
# Free text

Truth = list[tuple[str, str]]

NO_PII_TICKETS = (
    "The nightly export failed again with a timeout error.",
    "How do I change the delivery address on an open order?",
    "The invoice PDF is blank when I open it in the mobile app. Is this a known issue?",
    "Please cancel my subscription at the end of the current billing period.",
    "The discount code from the newsletter is not accepted at checkout.",
    "Your website is very slow today. Pages take ages to load.",
    "I was charged twice for the same order. Can you refund the duplicate payment?",
    "The tracking page still says pending after five days.",
)
OPENERS = ("Hi,", "Hello,", "Good morning,", "Dear support,", "Hey team,", "")
PROBLEMS = (
    "I cannot log in to my account since yesterday.",
    "my parcel never arrived.",
    "the app crashes when I open my orders.",
    "I was charged twice this month.",
    "the password reset link has expired.",
    "my invoice shows the wrong amount.",
)


def _name_and_email(rng: random.Random, who: Person, mail: str) -> tuple[str, Truth]:
    order = rng.randrange(10_000, 99_999)
    template = rng.choice(
        (
            "{opener} this is {name}: {problem} Please reply to {email}.",
            "{opener} {problem} Order {order}. You can reach me at {email}. Thanks, {name}",
            "Customer {name} ({email}) reports that {problem}",
        )
    )
    text = template.format(
        opener=rng.choice(OPENERS), name=who.name, email=mail, problem=rng.choice(PROBLEMS), order=order
    )
    return text.strip(), [("PERSON", who.name), ("EMAIL_ADDRESS", mail)]


def _name_and_phone(rng: random.Random, who: Person, number: str) -> tuple[str, Truth]:
    template = rng.choice(
        (
            "{opener} {problem} Please call me back on {phone}. {name}",
            "{name} called from {phone} about a refund. Please follow up today.",
            "Call back requested by {name} at {phone}, {problem}",
        )
    )
    text = template.format(
        opener=rng.choice(OPENERS), name=who.name, phone=number, problem=rng.choice(PROBLEMS)
    )
    return text.strip(), [("PERSON", who.name), ("PHONE_NUMBER", number)]


def _email_and_phone(rng: random.Random, mail: str, number: str) -> tuple[str, Truth]:
    template = rng.choice(
        (
            "Please update my contact details: e-mail {email}, phone {phone}.",
            "{opener} {problem} My number is {phone} and my e-mail is {email}.",
        )
    )
    text = template.format(opener=rng.choice(OPENERS), email=mail, phone=number, problem=rng.choice(PROBLEMS))
    return text.strip(), [("EMAIL_ADDRESS", mail), ("PHONE_NUMBER", number)]


def _with_ip(rng: random.Random, who: Person, address_ip: str) -> tuple[str, Truth]:
    text = f"{who.name} says logins from {address_ip} were blocked. Can you check the firewall rules?"
    return text, [("PERSON", who.name), ("IP_ADDRESS", address_ip)]


def ticket(rng: random.Random) -> tuple[str, Truth]:
    """One support ticket of one to three sentences and the PII it mentions."""
    text, truth = _ticket(rng)
    return text[0].upper() + text[1:], truth


def _ticket(rng: random.Random) -> tuple[str, Truth]:
    kind = rng.random()
    if kind < 0.12:
        return rng.choice(NO_PII_TICKETS), []
    who = person(rng)
    if kind < 0.42:
        return _name_and_email(rng, who, email(rng, who))
    if kind < 0.72:
        return _name_and_phone(rng, who, phone(rng, who))
    if kind < 0.92:
        return _email_and_phone(rng, email(rng, who), phone(rng, who))
    return _with_ip(rng, who, ipv4(rng))


def texts(n: int, seed: int = 0) -> tuple[list[str], list[Truth]]:
    """``n`` support tickets and, for each, the ``(entity, value)`` pairs it mentions (none for ~12%)."""
    rng = random.Random(seed)
    tickets = [ticket(rng) for _ in range(n)]
    return [text for text, _ in tickets], [truth for _, truth in tickets]
