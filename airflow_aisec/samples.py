"""A deterministic sample lake matching the example catalog, for demos, tests and benchmarks.

Every name, email and phone number is synthetic: emails use the reserved ``example.*`` domains and phone
numbers come from ranges set aside for fiction. Creation dates spread over ten years before ``end`` so
retention rules have work to do; each dataset is split into one file per year, as a lake usually is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Iterator

import pyarrow as pa

from airflow_aisec.io.atomic import atomic_write
from airflow_aisec.io.formats import extension
from airflow_aisec.io.storage import Location, S3Options

FIRST_NAMES = (
    "Alice", "Bob", "Carla", "Dmitri", "Emma", "Farid", "Grace", "Hiroshi", "Ines", "José", "Karin",
    "Liam", "Mei", "Noah", "Olga", "Priya", "Quentin", "Rosa", "Søren", "Tariq", "Uma", "Valentina",
    "Wei", "Xavier", "Yasmin", "Zoë", "Łukasz", "Amélie", "Björn", "Chiara",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Baker", "Castillo", "Dubois", "Eriksson", "Fischer", "García", "Hughes", "Ivanova",
    "Jensen", "Kowalski", "Lambert", "Moreau", "Nakamura", "O'Brien", "Patel", "Quinn", "Rossi",
    "Schmidt", "Tanaka", "Urban", "Varga", "Walsh", "Yilmaz", "Zimmermann", "Müller", "Novák",
)  # fmt: skip
STREETS = ("Maple", "Oak", "High", "Station", "Church", "Mill", "Park", "Elm", "Harbour", "Bridge")
CITIES = ("Springfield", "Riverton", "Lakeside", "Fairview", "Brookfield", "Hillcrest", "Kingsbury")
DOMAINS = ("example.com", "example.org", "example.net")
CHARGEBACK_REASONS = ("fraudulent", "product not received", "duplicate charge", "not as described")
TICKET_TEMPLATES = (
    "Hi, this is {name}. Please call me back on {phone} about my last order.",
    "My email {email} stopped receiving invoices. Can you resend them?",
    "Order {order} arrived damaged. {name} here, you can reach me at {email}.",
    "Please update my phone number to {phone}. Thanks, {name}",
    "I was charged twice for order {order}. Contact {email} or {phone}.",
    "How do I change my delivery address?",
    "Great service, thank you! - {name}",
)

SCHEMAS = {
    "customers": pa.schema(
        [
            ("customer_id", pa.string()),
            ("full_name", pa.string()),
            ("email", pa.string()),
            ("phone", pa.string()),
            ("birth_date", pa.date32()),
            ("created_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("shipping_address", pa.string()),
            ("amount", pa.float64()),
            ("ordered_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    "support_tickets": pa.schema(
        [
            ("ticket_id", pa.string()),
            ("customer_id", pa.string()),
            ("body", pa.string()),
            ("opened_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    "chargebacks": pa.schema(
        [("customer_id", pa.string()), ("reason", pa.string()), ("filed_at", pa.timestamp("us", tz="UTC"))]
    ),
}
FORMATS = {"customers": "parquet", "orders": "parquet", "support_tickets": "jsonl", "chargebacks": "csv"}
TIME_COLUMNS = {
    "customers": "created_at",
    "orders": "ordered_at",
    "support_tickets": "opened_at",
    "chargebacks": "filed_at",
}
DEFAULT_END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
YEARS = 10


@dataclasses.dataclass(frozen=True)
class Customer:
    """One synthetic data subject."""

    customer_id: str
    full_name: str
    email: str
    phone: str
    birth_date: dt.date
    created_at: dt.datetime


class SampleLake:
    """Generates the rows of each dataset; the same seed and size always give the same rows."""

    def __init__(self, customers: int = 1000, seed: int = 7, end: dt.datetime = DEFAULT_END) -> None:
        if customers < 1:
            raise ValueError(f"customers must be at least 1, got {customers}")
        self.size = customers
        self.seed = seed
        self.end = end
        self.start = end.replace(year=end.year - YEARS)
        self.customers = self._customers()

    def _rng(self, dataset: str) -> random.Random:
        # One stream per dataset so adding rows to one never shifts the values of another.
        return random.Random(f"{self.seed}:{dataset}")  # nosec B311 # deterministic sample data, not a secret

    def _moment(self, rng: random.Random, after: dt.datetime) -> dt.datetime:
        span = int((self.end - after).total_seconds())
        return after + dt.timedelta(seconds=rng.randrange(max(span, 1)))

    def _customers(self) -> list[Customer]:
        rng = self._rng("customers")
        result = []
        for i in range(1, self.size + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = f"{first}.{last}".lower().replace("'", "").replace(" ", "")
            result.append(
                Customer(
                    customer_id=f"C{i:04d}",
                    full_name=f"{first} {last}",
                    email=f"{_ascii(local)}{i}@{rng.choice(DOMAINS)}",
                    phone=_phone(rng),
                    birth_date=dt.date(rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)),
                    created_at=self._moment(rng, self.start),
                )
            )
        return result

    def rows(self, dataset: str) -> Iterator[dict[str, object]]:
        """The rows of ``dataset`` as dicts, in a stable order."""
        generators: dict[str, Callable[[], Iterator[dict[str, object]]]] = {
            "customers": lambda: (dataclasses.asdict(c) for c in self.customers),
            "orders": self._orders,
            "support_tickets": self._tickets,
            "chargebacks": self._chargebacks,
        }
        return generators[dataset]()

    def _orders(self) -> Iterator[dict[str, object]]:
        rng = self._rng("orders")
        number = 0
        for customer in self.customers:
            for _ in range(rng.randint(0, 4)):
                number += 1
                yield {
                    "order_id": f"O{number:06d}",
                    "customer_id": customer.customer_id,
                    "shipping_address": _address(rng),
                    "amount": round(rng.uniform(5, 500), 2),
                    "ordered_at": self._moment(rng, customer.created_at),
                }

    def _tickets(self) -> Iterator[dict[str, object]]:
        rng = self._rng("support_tickets")
        number = 0
        for customer in self.customers:
            for _ in range(rng.randint(0, 2)):
                number += 1
                body = rng.choice(TICKET_TEMPLATES).format(
                    name=customer.full_name,
                    email=customer.email,
                    phone=customer.phone,
                    order=f"O{rng.randint(1, max(self.size, 1)):06d}",
                )
                yield {
                    "ticket_id": f"T{number:06d}",
                    "customer_id": customer.customer_id,
                    "body": body,
                    "opened_at": self._moment(rng, customer.created_at),
                }

    def _chargebacks(self) -> Iterator[dict[str, object]]:
        rng = self._rng("chargebacks")
        for customer in self.customers:
            if rng.random() < 0.08:
                yield {
                    "customer_id": customer.customer_id,
                    "reason": rng.choice(CHARGEBACK_REASONS),
                    "filed_at": self._moment(rng, customer.created_at),
                }

    def tables_by_year(self, dataset: str) -> dict[int, pa.Table]:
        """The rows of ``dataset`` grouped into one table per year of its time column."""
        column = TIME_COLUMNS[dataset]
        groups: dict[int, list[dict[str, object]]] = {}
        for row in self.rows(dataset):
            moment = row[column]
            assert isinstance(moment, dt.datetime)
            groups.setdefault(moment.year, []).append(row)
        schema = SCHEMAS[dataset]
        return {year: pa.Table.from_pylist(rows, schema=schema) for year, rows in sorted(groups.items())}


def _ascii(text: str) -> str:
    table = str.maketrans("éëøłüáóíñçšžő", "eeoluaoincszo")
    return text.translate(table).encode("ascii", "ignore").decode()


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"+1 {rng.choice(('212', '312', '415', '617'))}-555-01{rng.randint(0, 99):02d}"
    return f"+44 20 7946 0{rng.randint(0, 999):03d}"


def _address(rng: random.Random) -> str:
    return f"{rng.randint(1, 250)} {rng.choice(STREETS)} Street, {rng.choice(CITIES)}"


@dataclasses.dataclass(frozen=True)
class WrittenFile:
    """One file of the sample lake as written: its dataset, location, rows and SHA-256 digest."""

    dataset: str
    uri: str
    rows: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form."""
        return dataclasses.asdict(self)


def write_sample_lake(
    lake: SampleLake,
    out: str,
    *,
    s3: S3Options | None = None,
    on_file: Callable[[WrittenFile], None] | None = None,
) -> list[WrittenFile]:
    """Write every dataset of ``lake`` below ``out`` (a folder or ``s3://`` prefix), one file per year.

    Each file is written atomically and verified; existing files of the same name are replaced.
    """
    root = Location.parse(out, s3)
    written: list[WrittenFile] = []
    for dataset, fmt in FORMATS.items():
        for year, table in lake.tables_by_year(dataset).items():
            target = root.join(dataset, f"{dataset}-{year}{extension(fmt)}")
            with atomic_write(target, fmt, table.schema, overwrite=True) as writer:
                writer.write(table)
            result = writer.result
            written.append(WrittenFile(dataset, result.uri, result.rows, result.sha256))
            if on_file is not None:
                on_file(written[-1])
    return written
