"""Retention benchmark: a 200-file lake where 2 files hold expired rows, vs a naive rewrite of every file.

Ours: ``plan_dataset`` (Parquet statistics skip the files with nothing expired, unread) + ``apply_dataset``
(rewrites only the 2 files, atomically and verified, with audit entries). Baseline, on an identical copy of
the lake in the same run: read every file, drop the expired rows, write every file back
(``pyarrow.parquet``). Target: >= 20x faster. Both end states are checked to hold the same rows.

    python -m benchmarks retention                 # 200 files x 20,000 rows
    python -m benchmarks retention -- --rows 5000  # smaller files
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.retention import apply_dataset, plan_dataset

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
KEEP_FOR = "P3Y"
CUTOFF = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
TARGET = 20.0
CATALOG = """
version: 1
subjects: {identities: [customer_id], pseudonym_key: aisec-pseudonyms}
keys: {aisec-pseudonyms: {provider: local}}
datasets:
  events:
    uri: "{lake}/events"
    format: parquet
    identity: {customer_id: customer_id}
    columns: {event_id: {}, customer_id: {}, kind: {}, amount: {}, note: {}, created_at: {}}
    retention: {column: created_at, keep_for: P3Y}
"""


def make_lake(root: Path, files: int, rows: int, expired_files: int) -> None:
    """``files`` Parquet files; in the first ``expired_files``, half the rows are older than the cutoff."""
    folder = root / "events"
    folder.mkdir(parents=True)
    recent = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    for number in range(files):
        half_before = CUTOFF - dt.timedelta(minutes=10 * (rows // 2))
        start = half_before if number < expired_files else recent
        offsets = pc.multiply(pa.array(range(rows), pa.int64()), 600_000_000)  # 10 minutes apart, in us
        created = pc.add(pa.scalar(start, pa.timestamp("us", tz="UTC")), offsets.cast(pa.duration("us")))
        table = pa.table(
            {
                "event_id": pa.array(range(number * rows, (number + 1) * rows), pa.int64()),
                "customer_id": pa.array([f"C{(i * 7919) % 100_000:05d}" for i in range(rows)]),
                "kind": pa.array(["view", "click", "buy", "refund"] * (rows // 4) + ["view"] * (rows % 4)),
                "amount": pa.array([float(i % 500) for i in range(rows)]),
                "note": pa.array([f"event {i} of file {number}" for i in range(rows)]),
                "created_at": created,
            }
        )
        pq.write_table(table, folder / f"part-{number:04d}.parquet")


def ours(lake: Path, work: Path) -> tuple[float, int]:
    """plan + apply through the product, with the audit log; returns (seconds, rows removed)."""
    catalog_file = work / "catalog.yaml"
    catalog_file.write_text(CATALOG)
    catalog = load_catalog(catalog_file, {"lake": str(lake)})
    dataset = catalog.dataset("events")
    start = time.perf_counter()
    with AuditLog.open(f"sqlite:///{work / 'audit.db'}", keyring=str(work / "keys.json")) as log:
        plan = plan_dataset(catalog, dataset, AS_OF, pseudonymize=log.pseudonym)
        result = apply_dataset(plan, catalog, dataset, audit=log)
    return time.perf_counter() - start, result.rows_removed


def naive(lake: Path) -> tuple[float, int]:
    """Read every file, drop expired rows, write every file back; returns (seconds, rows removed)."""
    cutoff = pa.scalar(CUTOFF, pa.timestamp("us", tz="UTC"))
    removed = 0
    start = time.perf_counter()
    for path in sorted((lake / "events").glob("*.parquet")):
        table = pq.read_table(path)
        kept = table.filter(pc.greater_equal(table["created_at"], cutoff))
        removed += table.num_rows - kept.num_rows
        pq.write_table(kept, path)
    return time.perf_counter() - start, removed


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print both times, the ratio and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per file")
    parser.add_argument("--expired-files", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aisec-bench-retention-") as tmp:
        root = Path(tmp)
        make_lake(root / "ours", args.files, args.rows, args.expired_files)
        shutil.copytree(root / "ours", root / "naive")
        size = sum(p.stat().st_size for p in (root / "ours" / "events").glob("*")) / 2**20
        print(
            f"lake: {args.files} Parquet files x {args.rows:,} rows ({size:.1f} MiB); {args.expired_files} "
            f"files hold rows older than {KEEP_FOR} before {AS_OF.date()} (half of each is rewritten away)"
        )
        base_s, base_removed = naive(root / "naive")
        ours_s, ours_removed = ours(root / "ours", root)
        same = (
            pq.read_table(root / "ours" / "events")
            .sort_by("event_id")
            .equals(pq.read_table(root / "naive" / "events").sort_by("event_id"))
        )
        print(
            f"  naive rewrite of every file (pyarrow)        {base_s:8.2f} s   {base_removed:,} rows removed"
        )
        print(
            f"  aisec retention plan + apply (with audit)   {ours_s:8.2f} s   {ours_removed:,} rows removed"
        )
        ratio = base_s / ours_s
        verdict = "meets target" if ratio >= TARGET else "misses target"
        print(f"  -> {ratio:.1f}x faster (target >= {TARGET:.0f}x): {verdict}; same rows left: {same}")


if __name__ == "__main__":
    main()
