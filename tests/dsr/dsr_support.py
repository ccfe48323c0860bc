"""Helpers of the data-subject-request tests: the subject, running a request, and ways to look at every byte
and every decoded cell of a lake (the example catalog, the sample lake and file digests come from
``tests/builders.py``)."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from builders import EXAMPLE, ROOT, SAMPLE, catalog_for, digests, visible  # noqa: F401 (tests import them here)

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import DsrRequest, StateStore, run_request
from airflow_aisec.io import Location, read_dataset
from airflow_aisec.samples import FORMATS, Customer

HOLD_REASON = "litigation 2026-17"  # the chargebacks' legal hold in the example catalog
# The example pipeline's landing and masked copies: declared in the catalog, empty in the sample lake.
COPIES = ("support_tickets_landing", "support_tickets_masked")
EXTENSIONS = {"parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv"}


def _pick_subject() -> Customer:
    """A customer with orders, a chargeback and a ticket quoting their name, whose phone and name are unique
    (so whatever remains of them after an erasure can only be someone else's data if the erasure failed)."""
    count = collections.Counter
    phones = count(c.phone for c in SAMPLE.customers)
    names = count(c.full_name for c in SAMPLE.customers)
    orders = count(str(r["customer_id"]) for r in SAMPLE.rows("orders"))
    charged = count(str(r["customer_id"]) for r in SAMPLE.rows("chargebacks"))
    tickets = list(SAMPLE.rows("support_tickets"))
    for customer in SAMPLE.customers:
        own = [str(t["body"]) for t in tickets if t["customer_id"] == customer.customer_id]
        if (
            orders[customer.customer_id] >= 2
            and charged[customer.customer_id]
            and any(customer.full_name in body for body in own)
            and any(customer.email in body for body in own)
            and phones[customer.phone] == 1
            and names[customer.full_name] == 1
        ):
            return customer
    raise AssertionError("the sample lake has no suitable subject")


SUBJECT = _pick_subject()
OTHER = next(  # a customer sharing nothing with the subject, used as the author of crafted tickets
    c for c in SAMPLE.customers if c.customer_id != SUBJECT.customer_id and c.email != SUBJECT.email
)


def raw_identifiers(customer: Customer = SUBJECT) -> dict[str, str]:
    """The subject's identifiers that must disappear on erasure."""
    return {"customer_id": customer.customer_id, "email": customer.email, "phone": customer.phone}


def run(
    catalog: Catalog, request: DsrRequest, ring: LocalKeyring, log: AuditLog, tmp_path: Path, **options: Any
) -> dict[str, Any]:
    """``run_request`` with a state folder and an exports folder in ``tmp_path``."""
    return run_request(
        catalog, request, keyring=ring, audit=log, state=StateStore(tmp_path / "state", ring),
        exports=str(tmp_path / "exports"), **options,
    )  # fmt: skip


def by_dataset(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The certificate's datasets by name."""
    return {d["dataset"]: d for d in document["certificate"]["datasets"]}


# --- looking at a lake ----------------------------------------------------------------------------------


def file_format(path: Path) -> str:
    """The format of a lake file, from its extension."""
    return next(fmt for fmt, ext in EXTENSIONS.items() if path.name.endswith(ext))


def decode(path: Path) -> pa.Table:
    """Every row of one plain lake file (CSV read as text, as it is written)."""
    fmt = file_format(path)
    if fmt == "csv":
        names = path.read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",")
        options = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
        return pacsv.read_csv(path, convert_options=options)
    return pa.Table.from_batches(list(read_dataset(Location.parse(path), fmt)))


def dataset_table(root: Path, dataset: str) -> pa.Table:
    """Every row of one dataset of the lake below ``root``, in file order."""
    tables = [decode(p) for p in visible(root / dataset)]
    return pa.concat_tables(tables) if tables else pa.table({})


def strings(table: pa.Table) -> Iterator[str]:
    """Every non-null cell of ``table`` as text (free text included)."""
    for column in table.columns:
        for value in column.to_pylist():
            if value is not None:
                yield str(value)


def leaks(root: Path, needles: Iterable[str]) -> dict[str, set[str]]:
    """File (relative to ``root``) → the needles found in it, in its raw bytes or in any decoded cell.

    Every file is searched raw (hidden ones and key material too); data files are also decoded, as Parquet
    pages may be compressed.
    """
    wanted = [n for n in needles if n]
    found: dict[str, set[str]] = {}
    data = set(visible(root))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        hits = {n for n in wanted if n.encode("utf-8") in raw}
        if path in data:
            cells = list(strings(decode(path)))
            hits |= {n for n in wanted if any(n.lower() in cell.lower() for cell in cells)}
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def customer_rows(table: pa.Table, customer_id: str) -> pa.Table:
    """The rows of ``table`` whose ``customer_id`` is ``customer_id``."""
    return table.filter(pc.fill_null(pc.equal(table.column("customer_id"), customer_id), False))


def others(table: pa.Table, customer_id: str = SUBJECT.customer_id) -> pa.Table:
    """The rows of ``table`` that are not ``customer_id``'s (rows without a customer are kept)."""
    return table.filter(pc.fill_null(pc.not_equal(table.column("customer_id"), customer_id), True))


def per_customer(root: Path) -> dict[str, collections.Counter[str]]:
    """Dataset → rows per customer id (None for rows without one)."""
    return {
        name: collections.Counter(str(v) for v in dataset_table(root, name).column("customer_id").to_pylist())
        for name in FORMATS
    }


def audit_text(log: AuditLog) -> str:
    """Every entry of the log as JSON text, one a line."""
    return "\n".join(json.dumps(e.data, ensure_ascii=False) for e in log.entries())
