"""Source B: form-like blocks, log lines, SMS-style messages, JSON-ish snippets and lower-cased text, filled
with mimesis' people of four locales (en, en-gb, de, fr). A template starting with ``~`` is lower-cased.

Templates alternate between the splits (even positions ``dev``, odd ``test``); each split has its own seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mimesis import Address, Internet, Payment, Person
from mimesis.enums import CardType
from mimesis.locales import Locale
from mimesis.random import Random

from benchmarks.pii_corpora import formats
from benchmarks.pii_corpora.compose import (
    ADDRESS,
    CARD,
    EMAIL,
    IBAN,
    IP,
    PERSON,
    PHONE,
    SSN,
    Filler,
    Piece,
    Sample,
    compose,
    plain,
)

NAME = "mimesis"
LOCALES = {Locale.EN: "US", Locale.EN_GB: "GB", Locale.DE: "DE", Locale.FR: "FR"}
TITLES = {
    Locale.EN: ("Mr. ", "Ms. ", "ms. ", "Dr ", "mrs "),
    Locale.EN_GB: ("Mr ", "Mrs ", "Miss ", "Dr ", "ms "),
    Locale.DE: ("Herr ", "Frau ", "Dr. ", "herr "),
    Locale.FR: ("M. ", "Mme ", "Mlle ", "mme "),
}
# Domestic account number (BBAN) layout per IBAN country: digits (``9``) and letters (``A``).
BBAN = {"US": ("GB", "AAAA99999999999999"), "GB": ("GB", "AAAA99999999999999"),
        "DE": ("DE", "999999999999999999"), "FR": ("FR", "99999999999999999999999")}  # fmt: skip
SEEDS = {"dev": 2201, "test": 2202}

TEMPLATES: tuple[str, ...] = (
    # form-like blocks
    "Name: {name}\nPhone: {phone}\nEmail: {email}",
    "Full name: {name}\nAddress: {address}\nTel: {phone}",
    "NAME {name}\nCARD {card}\nEXP 04/28",
    "Contact person: {tname}\nMobile: {phone}",
    "Account holder: {name}\nIBAN: {iban}",
    "Applicant: {name}\nSSN: {ssn}\nPhone: {phone}",
    "First name: {first}\nLast name: {last}\nE-mail: {email}",
    "Customer: {name}\nShipping: {address1}\nPayment: {card}",
    "Emergency contact: {name} ({phone})",
    "Patient: {tname}\nDOB: on file\nPhone (home): {phone}",
    "Name ........ {name}\nPhone ....... {phone}\nIBAN ........ {iban}",
    "From: {name} <{email}>\nSubject: invoice",
    # log lines
    "2024-03-11T10:22:01Z INFO login ok user={email} ip={ip}",
    'WARN payment declined card={card} customer="{name}"',
    "ERROR sms delivery failed to {phone} (retry 3)",
    "[auth] failed password for {email} from {ip} port 52144",
    'INFO shipment created dest="{address1}" recipient="{name}"',
    "DEBUG lookup phone={phone} -> customer {name}",
    "audit: {name} exported report, session from {ip}",
    "job=payout status=done iban={iban} amount=120.00",
    "kyc check ok ssn={ssn} name={name}",
    "GET /api/users?email={email} 200 12ms",
    # SMS-style short messages
    "{first} here, new no. {phone}",
    "pls call {phone} asap",
    "at {street}, ring twice",
    "my card {card} got blocked?!",
    "{first}: reach me at {phone} tonight",
    "ok {first}, see u at {address1}",
    "send 50 to {iban} thx",
    "its {name}, mobile {phone}",
    "dr appt w/ {tname} moved to 3pm",
    "email me: {email}",
    "fax it to {phone} pls",
    "{phone} is my work line",
    # JSON-ish snippets
    '{"name": "{name}", "phone": "{phone}"}',
    '{"customer": {"email": "{email}", "card": "{card}"}}',
    "{'contact': '{name}', 'tel': '{phone}', 'city': 'see address'}",
    '{"iban": "{iban}", "holder": "{name}"}',
    '{"ip": "{ip}", "user": "{email}"}',
    '{"ssn": "{ssn}", "name": "{name}"}',
    '{"address": "{address1}", "recipient": "{tname}"}',
    '{"notes": "called {phone} twice, no answer", "owner": "{name}"}',
    # lower-cased text
    "~hi my name is {name} and my number is {phone}",
    "~please send the parcel to {name}, {address1}",
    "~the card {card} belongs to {name}",
    "~{name} said to email {email} for the keys",
    "~transfer to {iban}, reference {first}",
    "~ask {tname} about the contract, mobile {phone}",
    "~my ssn is {ssn} and i live at {street}",
    "~login from {ip} by {name} looked odd",
    "~{name}\n{address}",
    "~can you phone {name} on {phone} tomorrow",
)


class MimesisFill:
    """The fillers of one mimesis locale; every value comes from the providers' shared random generator."""

    def __init__(self, locale: Locale, seed: int) -> None:
        self.locale = locale
        self.region = LOCALES[locale]
        self.rng = Random(seed)
        self.person = Person(locale, seed=seed)
        self.place = Address(locale, seed=seed + 1)
        self.payment = Payment(seed=seed + 2)
        self.internet = Internet(seed=seed + 3)

    def full_name(self) -> str:
        return f"{self.person.first_name()} {self.person.last_name()}"

    def titled(self) -> Sequence[Piece]:
        name = self.person.last_name() if self.rng.random() < 0.5 else self.full_name()
        return [plain(self.rng.choice(TITLES[self.locale])), Piece(PERSON, name)]

    def street(self) -> str:
        return str(self.place.address())

    def address(self, separator: str) -> Sequence[Piece]:
        town = f"{self.place.postal_code()} {self.place.city()}"
        if self.region in ("US", "GB"):
            town = f"{self.place.city()} {self.place.postal_code()}"
        return [Piece(ADDRESS, f"{self.street()}{separator}{town}")]

    def phone(self) -> Sequence[Piece]:
        number = self.person.phone_number() if self.rng.random() < 0.6 else self.person.telephone()
        return [Piece(PHONE, formats.phone(self.rng, number, self.region))]

    def card(self) -> Sequence[Piece]:
        kind = self.rng.choice(
            (CardType.VISA, CardType.MASTER_CARD, CardType.MASTER_CARD, CardType.AMERICAN_EXPRESS)
        )
        return [Piece(CARD, formats.card(self.rng, self.payment.credit_card_number(kind)))]

    def iban(self) -> Sequence[Piece]:
        country, layout = BBAN[self.region]
        bban = "".join(
            self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c == "A" else "0123456789") for c in layout
        )
        return [Piece(IBAN, formats.iban(self.rng, formats.iban_of(country, bban)))]

    def ssn(self) -> Sequence[Piece]:
        area = self.rng.choice([n for n in range(1, 900) if n != 666])
        number = f"{area:03d}-{self.rng.randint(1, 99):02d}-{self.rng.randint(1, 9999):04d}"
        return [Piece(SSN, number)]

    def fillers(self) -> dict[str, Filler]:
        """Slot name → filler."""
        p = self.person
        return {
            "name": lambda: [Piece(PERSON, self.full_name())],
            "first": lambda: [Piece(PERSON, p.first_name())],
            "last": lambda: [Piece(PERSON, p.last_name())],
            "tname": self.titled,
            "phone": self.phone,
            "card": self.card,
            "email": lambda: [Piece(EMAIL, p.email())],
            "iban": self.iban,
            "ssn": self.ssn,
            "ip": lambda: [
                Piece(IP, self.internet.ip_v4() if self.rng.random() < 0.85 else self.internet.ip_v6())
            ],
            "address": lambda: self.address("\n"),
            "address1": lambda: self.address(", "),
            "street": lambda: [Piece(ADDRESS, self.street())],
        }


def templates(split: str) -> tuple[str, ...]:
    """The templates of a split: even positions for ``dev``, odd for ``test``."""
    return TEMPLATES[0::2] if split == "dev" else TEMPLATES[1::2]


def samples(split: str, count: int) -> Iterator[Sample]:
    """``count`` labeled texts of ``split``, locales and templates taken in turn, reproducibly."""
    seed = SEEDS[split]
    fills = [MimesisFill(locale, seed * 10 + index) for index, locale in enumerate(LOCALES)]
    chosen = templates(split)
    order = Random(seed)
    for index in range(count):
        fill = fills[index % len(fills)]
        position = order.randrange(len(chosen))
        template = chosen[position]
        lower = template.startswith("~")
        yield compose(
            template.removeprefix("~"),
            fill.fillers(),
            source=NAME,
            name=f"{NAME}/{split}/{position}/{fill.locale.value}",
            lower=lower,
        )
