"""Source A: customer-service messages, chats, e-mails with signatures, call notes and postal addresses,
filled with Faker's people of five locales (en_US, en_GB, de_DE, fr_FR, en_IN).

Templates alternate between the splits (even positions ``dev``, odd ``test``); each split has its own seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from faker import Faker

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

NAME = "faker"
LOCALES = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "en_IN": "IN"}
TITLES = {
    "en_US": ("Mr. ", "Mrs. ", "Ms. ", "ms. ", "Dr. ", "Dr ", "mr "),
    "en_GB": ("Mr ", "Mrs ", "Ms ", "Miss ", "Dr ", "ms. "),
    "de_DE": ("Herr ", "Frau ", "Dr. ", "Herr Dr. ", "Fr. "),
    "fr_FR": ("M. ", "Mme ", "Mme. ", "Mlle ", "Dr ", "Monsieur ", "Madame "),
    "en_IN": ("Mr. ", "Mrs. ", "Ms. ", "Dr. ", "Shri ", "Smt. "),
}
SEEDS = {"dev": 1301, "test": 1302}

TEMPLATES: tuple[str, ...] = (
    # customer service
    "Hello, my name is {name} and I was charged twice for order {order}.",
    "Hi, this is {name}. Can you call me back on {phone}? It's about my refund.",
    "Please update the card on file to {card}, expiry 09/29.",
    "I'd like to close my account. The refund should go to {iban}.",
    "My SSN is {ssn}, I need it removed from the application you sent to {email}.",
    "The parcel for {tname} never arrived at {address1}.",
    "{name} called about a late delivery, best number is {phone}.",
    "Customer {lname} asked why the card ending in {card} was declined.",
    "Could you send the invoice to {email} instead? Thanks, {first}",
    "Please change the delivery address to {address1} from {day} on.",
    "I paid {amount} with my card {card} but the order still shows as unpaid.",
    "My husband {name} will pick it up, his mobile is {phone}.",
    "Refund {amount} to account {iban} (holder: {name}).",
    "Wrong item again! Order {order}, ship a replacement to {street}.",
    "Ticket from {tname}: cannot log in, last login was from {ip}.",
    "Dear support, {name} here, reach me at {phone} after 5pm.",
    "My card {card} was stolen yesterday, please block it. {name}",
    "I moved, my new address is {address1}.",
    "Hi team, please remove {email} from your mailing list.",
    "Can someone phone {tname} on {phone} regarding the warranty claim?",
    # chat messages
    "hey it's {first}, text me on {phone}",
    "yo my email is {email} lol",
    "ok so my card number is {card} can u check",
    "{lname} here, can't find my order {order}",
    "sure, call {phone} anytime",
    "my number changed, it's {phone} now",
    "send it to {address1} pls",
    "is {name} still working there? need to talk to them",
    "im at {street} now, where r u",
    "ping me at {email} or {phone}",
    "my iban is {iban}, send the money there",
    "thx {first}! talk tomorrow",
    "ask {tname}, she knows the details",
    "here's my ssn {ssn} for the form",
    "my router shows {ip}, still no internet",
    "card {card} exp 11/27 cvv on the back",
    "lol {first} {last} just called me from {phone}",
    "can u ring me? {phone}",
    "new place: {address1}. come by saturday",
    "who is {lname}? she emailed me from {email}",
    # e-mails with signatures
    "Hi {first},\n\nThanks for the quick reply, the contract is attached.\n\nBest regards,\n{name}\n{phone}",
    "Dear {tname},\n\nPlease find the invoice attached.\n\nKind regards\n{name}\nTel: {phone}\n{email}",
    "Hello,\n\nI will be out of office until {day}.\n\n--\n{name}\nMobile: {phone}\nFax: {phone2}",
    "Hi all,\n\nMeeting moved to room 4.\n\nCheers,\n{first}\n\n{name} | {email} | {phone}",
    "Good morning {first},\n\nOur bank details for the transfer: {iban}.\n\nRegards,\n{name}",
    "Dear Sir or Madam,\n\nI am writing about my account.\n\nYours faithfully,\n{name}\n{address}",
    "Hi,\n\nplease ship the samples to:\n{name}\n{address}\n\nThanks!",
    "Hello {first},\n\ncould you call me back?\n\n{name}\nT: {phone}\nE: {email}",
    "Dear team,\n\nThe server {ip} is down again.\n\nThanks,\n{first}",
    "Hi {first},\n\nmy new card is {card}, please use it for the renewal.\n\nBest,\n{name}",
    "To whom it may concern,\n\nmy SSN {ssn} was used without consent.\n\nSincerely,\n{name}\n{phone}",
    "Hi,\n\nthe courier will deliver to {address1}.\n\n{name}\nOperations\nPhone {phone}",
    "Dear {tname},\n\nThank you for your order.\n\nWarm regards,\n{name}\nSales\n{phone} | {email}",
    "Hi {first},\n\nThe refund goes to IBAN {iban} tomorrow.\n\nThanks,\n{name}",
    "Hello,\n\nPlease contact my colleague {name} ({email}) while I am away.\n\n{first}",
    # call notes
    "Call note: {name} ({phone}) wants to upgrade the plan. Follow up {day}.",
    "Spoke to {tname}. Confirmed address {address1}. Will send forms.",
    "called from {phone}, customer {name} asked about a refund of {amount}",
    "Inbound call {phone}: {lname} reports a double charge on card {card}.",
    "Left voicemail for {name} at {phone}, no answer.",
    "Customer {name} verified with SSN {ssn}; account unlocked.",
    "Callback requested by {tname} on {phone} between 2 and 4pm.",
    "Note: {name} prefers e-mail ({email}), do not call.",
    "Caller {first} {last} gave card {card} for the deposit.",
    "They're not answering at {phone}, try the office line {phone2}.",
    "Visited {address1}, nobody home. Spoke to neighbour {name}.",
    "Escalated: {tname} says the refund to {iban} never arrived.",
    "Call with {name}: login issues from IP {ip}, reset password.",
    "Fax received from {phone}, signed by {name}.",
    "Ticket closed, {lname} confirmed via {email}.",
    # postal addresses
    "Ship to:\n{name}\n{address}",
    "Billing address:\n{address}\nCard: {card}",
    "Return label\nFrom: {name}\n{address}\nTo: Returns Dept., Unit 3",
    "Please forward my mail to\n{address}",
    "Delivery note\n{tname}\n{address}\nPhone: {phone}",
    "Registered office:\n{address}",
    "Recipient: {name}, {address1}",
    "{name}\n{address}\n{phone}",
    "Pickup from {address1} on {day}, contact {name} {phone}",
    "Address on file: {street}. Updated by {first} on request.",
)

ORDER_PREFIXES = ("#", "No. ", "ORD-", "", "A-")
DAYS = ("Monday", "Tuesday", "Friday", "next week", "tomorrow", "the 3rd")
CARD_TYPES = ("visa16", "mastercard", "mastercard", "amex", "visa16")


class FakerFill:
    """The fillers of one Faker locale; every value is drawn from ``fake``'s own random generator."""

    def __init__(self, locale: str, seed: int, us: Faker) -> None:
        self.locale = locale
        self.region = LOCALES[locale]
        self.fake = Faker(locale)
        self.fake.seed_instance(seed)
        self.rng: random.Random = self.fake.random
        self.us = us  # SSNs are US numbers whatever the locale

    def name(self) -> Sequence[Piece]:
        return [Piece(PERSON, f"{self.fake.first_name()} {self.fake.last_name()}")]

    def titled(self) -> Sequence[Piece]:
        name = self.fake.last_name() if self.rng.random() < 0.5 else self.name()[0].value
        return [plain(self.rng.choice(TITLES[self.locale])), Piece(PERSON, name)]

    def lower_name(self) -> Sequence[Piece]:
        return [Piece(PERSON, self.name()[0].value.lower())]

    def phone(self) -> Sequence[Piece]:
        return [Piece(PHONE, formats.phone(self.rng, self.fake.phone_number(), self.region))]

    def card(self) -> Sequence[Piece]:
        number = self.fake.credit_card_number(self.rng.choice(CARD_TYPES))
        return [Piece(CARD, formats.card(self.rng, number))]

    def address(self) -> Sequence[Piece]:
        return [Piece(ADDRESS, self.fake.address())]

    def address_line(self) -> Sequence[Piece]:
        return [Piece(ADDRESS, self.fake.address().replace("\n", ", "))]

    def order(self) -> Sequence[Piece]:
        return [plain(self.rng.choice(ORDER_PREFIXES) + str(self.rng.randint(10_000, 9_999_999)))]

    def amount(self) -> Sequence[Piece]:
        currency = self.rng.choice(("$", "£", "€", "EUR ", ""))
        return [plain(f"{currency}{self.rng.randint(5, 900)}.{self.rng.randint(0, 99):02d}")]

    def fillers(self) -> dict[str, Filler]:
        """Slot name → filler."""
        f = self.fake
        return {
            "name": self.name,
            "first": lambda: [Piece(PERSON, f.first_name())],
            "last": lambda: [Piece(PERSON, f.last_name())],
            "tname": self.titled,
            "lname": self.lower_name,
            "phone": self.phone,
            "phone2": self.phone,
            "card": self.card,
            "email": lambda: [Piece(EMAIL, f.email())],
            "iban": lambda: [Piece(IBAN, formats.iban(self.rng, f.iban()))],
            "ssn": lambda: [Piece(SSN, self.us.ssn())],
            "ip": lambda: [Piece(IP, f.ipv4_public() if self.rng.random() < 0.85 else f.ipv6())],
            "address": self.address,
            "address1": self.address_line,
            "street": lambda: [Piece(ADDRESS, f.street_address())],
            "order": self.order,
            "amount": self.amount,
            "day": lambda: [plain(self.rng.choice(DAYS))],
        }


def templates(split: str) -> tuple[str, ...]:
    """The templates of a split: even positions for ``dev``, odd for ``test``."""
    return TEMPLATES[0::2] if split == "dev" else TEMPLATES[1::2]


def samples(split: str, count: int) -> Iterator[Sample]:
    """``count`` labeled texts of ``split``, locales and templates taken in turn, reproducibly."""
    seed = SEEDS[split]
    us = Faker("en_US")
    us.seed_instance(seed)
    fills = [FakerFill(locale, seed + index, us) for index, locale in enumerate(LOCALES)]
    chosen = templates(split)
    order = random.Random(seed)
    for index in range(count):
        fill = fills[index % len(fills)]
        position = order.randrange(len(chosen))
        yield compose(
            chosen[position], fill.fillers(), source=NAME, name=f"{NAME}/{split}/{position}/{fill.locale}"
        )
