"""Audit-log benchmark: append throughput (SQLite, PostgreSQL; single and batched), verify time, proofs and
filtered pages on a large log.

Targets on a 2-core machine: >= 5,000 batched appends/s on SQLite, verify of 1,000,000 entries <= 30 s,
inclusion proofs of at most ceil(log2 n) hashes built in <= 50 ms, and the first page of entries (50, any
filters) and the lineage and data-subject-requests pages in <= 200 ms. Baselines in the same run: a plain
INSERT of the same entry bytes into a table without hashing or chaining (appends), the proof built from
every leaf as before tiles (proofs), and the lineage read from every entry as before its search terms.

    python -m benchmarks audit                    # 1,000,000 entries for verify
    python -m benchmarks audit -- --entries 200000
    python -m benchmarks audit --quick            # 50,000 entries: a check in a minute or two
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from airflow_aisec.audit import AuditLog, EntryQuery, MerkleTree, canonical_json
from airflow_aisec.audit import log as audit_log_module
from airflow_aisec.audit.merkle import leaf_hash
from airflow_aisec.review.lineage import LakeLineage
from airflow_aisec.review.requests import request_rows

PG_ADMIN = os.environ.get("AISEC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RECORD = {
    "action": "pii.mask",
    "dataset": "customers",
    "inputs": [{"dataset": "customers", "uri": "s3://lake/customers/part-0001.parquet", "sha256": "ab" * 32}],
    "outputs": [
        {"dataset": "customers_masked", "uri": "s3://lake/masked/part-0001.parquet", "sha256": "cd" * 32}
    ],
    "rows": 50_000,
    "columns": ["email", "phone"],
}


def _varied(i: int) -> dict[str, object]:
    """Entry ``i`` of a lake of 200 datasets with 600 flows between them (each dataset feeds three), 50 DAGs
    with 20 runs each, and a DSR every 1,000 entries."""
    source, target = i % 200, (i % 200 + 1 + (i // 200) % 3) % 200
    record: dict[str, object] = {
        **RECORD,
        "dataset": f"dataset_{source}",
        "inputs": [{"dataset": f"dataset_{source}", "uri": f"s3://lake/{source}/part-{i}.parquet"}],
        "outputs": [{"dataset": f"dataset_{target}", "uri": f"s3://lake/{target}/part-{i}.parquet"}],
        "actor": {"kind": "airflow", "dag_id": f"dag_{i % 50}", "run_id": f"run_{i % 1000}", "task_id": "t"},
        "outcome": "failure" if i % 997 == 0 else "success",
    }
    if i % 1000 == 0:
        record.update(
            action="dsr.erasure",
            subject=f"subject-{i // 1000}",
            details={
                "request_id": f"req-{i // 1000}",
                "stage": "request",
                "type": "erasure",
                "received_at": "2026-11-01T00:00:00+00:00",
                "deadline": "2026-12-01T00:00:00+00:00",
            },
        )
    return record


@contextlib.contextmanager
def _writers_clocks() -> Iterator[None]:
    """Entry times as a lake writing two entries a second for days would give them, with one writer in 50
    whose clock is 90 s behind (times out of order, within the time filter's ``TIME_SKEW``)."""
    counter = itertools.count()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)

    def now() -> str:
        i = next(counter)
        late = dt.timedelta(seconds=90 if i % 50 == 0 else 0)
        return (start + dt.timedelta(seconds=i / 2) - late).isoformat(timespec="microseconds")

    real = audit_log_module.now
    audit_log_module.now = now
    try:
        yield
    finally:
        audit_log_module.now = real


def _pages(log: AuditLog) -> None:
    size = log.size()
    times = [log.store.entry(size // 4), log.store.entry(size // 2)]
    since, until = (json.loads(e.body)["time"] for e in times if e is not None)
    queries = {
        "no filter": EntryQuery(),
        "action": EntryQuery(action="pii.mask"),
        "dataset": EntryQuery(dataset="dataset_17"),
        "dag + run": EntryQuery(dag_id="dag_3", run_id="run_503"),
        "request id": EntryQuery(request_id=f"req-{size // 3000}"),
        "action prefix + outcome": EntryQuery(action="dsr.", outcome="failure"),
        "subject": EntryQuery(subject=log.pseudonym(f"subject-{size // 2000}")),
        "time window + dataset": EntryQuery(since=since, until=until, dataset="dataset_5"),
        "rare pair (failure, dataset)": EntryQuery(outcome="failure", dataset="dataset_3"),
    }
    worst = 0.0
    for name, query in queries.items():
        elapsed = []
        for _ in range(3):
            start = time.perf_counter()
            page = log.search(query, limit=50)
            elapsed.append(time.perf_counter() - start)
        best = min(elapsed) * 1000
        worst = max(worst, best)
        print(f"  first page, {name}: {len(page.entries)} entries in {best:.1f} ms")
    verdict = _verdict(worst <= 200)
    print(f"first page of {size:,} entries, worst filter: {worst:.1f} ms -> {verdict} (<= 200 ms)")


def _views(log: AuditLog) -> None:
    """The lineage and data-subject-requests pages' server time (view model, layout included), read
    through the search terms, against reading every entry as before."""
    size = log.size()
    timed = {
        "lineage (whole lake)": lambda: LakeLineage.from_log(log).view(),
        "lineage (around one dataset)": lambda: LakeLineage.from_log(log).view("dataset_17", 2),
        "requests": lambda: request_rows(log),
    }
    worst = 0.0
    for name, view in timed.items():
        elapsed = []
        for _ in range(3):
            start = time.perf_counter()
            shown = view()
            elapsed.append(time.perf_counter() - start)
        best = min(elapsed) * 1000
        worst = max(worst, best)
        what = f"{len(shown)} requests" if isinstance(shown, list) else f"{len(shown.edges)} flows"
        print(f"  {name} page: {what} in {best:.1f} ms")
    start = time.perf_counter()
    LakeLineage.from_entries(log.entries()).view()
    baseline = (time.perf_counter() - start) * 1000
    print(
        f"lineage and requests pages of {size:,} entries, worst: {worst:.1f} ms (baseline, lineage from "
        f"every entry: {baseline:,.0f} ms) -> {_verdict(worst <= 200)} (<= 200 ms)"
    )


def _proofs(log: AuditLog, size: int) -> None:
    index = size // 3
    start = time.perf_counter()
    proof = log.prove(index)
    tiled = time.perf_counter() - start
    start = time.perf_counter()
    full = MerkleTree.from_leaf_hashes(leaf_hash(e.body) for e in log.store.entries(0, proof["size"]))
    baseline_proof = full.inclusion_proof(index, proof["size"])
    baseline = time.perf_counter() - start
    assert [bytes.fromhex(h) for h in proof["proof"]] == baseline_proof
    bound = math.ceil(math.log2(proof["size"]))
    print(
        f"inclusion proof of entry {index:,} in {proof['size']:,}: {len(proof['proof'])} hashes "
        f"({32 * len(proof['proof'])} bytes) -> {_verdict(len(proof['proof']) <= bound)} "
        f"(<= ceil(log2 n) = {bound})"
    )
    print(
        f"  built from tiles in {tiled * 1000:.1f} ms (baseline, every leaf read: {baseline * 1000:,.0f} ms, "
        f"ratio {baseline / tiled:,.0f}x) -> {_verdict(tiled <= 0.05)} (<= 50 ms)"
    )


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "misses target"


def _appends(log: AuditLog, single: int, batch: int, batches: int) -> tuple[float, float]:
    start = time.perf_counter()
    for _ in range(single):
        log.append(**RECORD)
    single_rate = single / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(batches):
        log.append_many([RECORD] * batch)
    batched_rate = batch * batches / (time.perf_counter() - start)
    return single_rate, batched_rate


def _plain_sqlite_inserts(path: Path, count: int) -> float:
    body = canonical_json({**RECORD, "index": 0, "prev": "00" * 32, "time": "2026-11-26T00:00:00+00:00"})
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (idx INTEGER PRIMARY KEY, body BLOB)")
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO t VALUES (?, ?)", ((i, body) for i in range(count)))
    conn.execute("COMMIT")
    rate = count / (time.perf_counter() - start)
    conn.close()
    return rate


def bench_sqlite(home: Path, entries: int) -> None:
    uri = f"sqlite:///{home / 'audit.db'}"
    clock = _writers_clocks()
    with clock, AuditLog.open(uri, keyring=str(home / "keys.json"), checkpoint_every=10_000) as log:
        single, batched = _appends(log, single=2_000, batch=1_000, batches=20)
        baseline = _plain_sqlite_inserts(home / "plain.db", 20_000)
        print(
            f"sqlite appends: single {single:,.0f}/s, batched {batched:,.0f}/s "
            f"(plain INSERT baseline {baseline:,.0f}/s, ratio {batched / baseline:.2f}) "
            f"-> {_verdict(batched >= 5_000)} (>= 5,000 batched/s)"
        )
        remaining = entries - log.size()
        start = time.perf_counter()
        while remaining > 0:
            first = log.size()
            log.append_many([_varied(first + i) for i in range(min(10_000, remaining))])
            remaining = entries - log.size()
        print(f"filled to {log.size():,} entries in {time.perf_counter() - start:.1f} s")
    with AuditLog.open(uri, keyring=str(home / "keys.json")) as log:
        start = time.perf_counter()
        report = log.verify()
        elapsed = time.perf_counter() - start
        assert report.ok, report.findings
        print(
            f"verify {report.size:,} entries, {report.checkpoints} checkpoints: {elapsed:.1f} s "
            f"-> {_verdict(elapsed <= 30 * report.size / 1_000_000)} (<= 30 s per 1M)"
        )
        _proofs(log, report.size)
        _pages(log)
        _views(log)


def bench_postgres(home: Path, entries: int = 90_000) -> None:
    try:
        import psycopg

        name = f"aisec_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
    except Exception as e:  # no server: say so instead of failing the whole run
        print(f"postgresql: skipped ({e.__class__.__name__})")
        return
    uri = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        clock = _writers_clocks()
        with clock, AuditLog.open(uri, keyring=str(home / "keys.json"), checkpoint_every=10_000) as log:
            single, batched = _appends(log, single=1_000, batch=1_000, batches=10)
            print(f"postgresql appends: single {single:,.0f}/s, batched {batched:,.0f}/s")
            for first in range(0, entries, 10_000):
                log.append_many([_varied(first + i) for i in range(min(10_000, entries - first))])
            with psycopg.connect(uri, autocommit=True) as conn:
                # What autovacuum does to an insert-only table this size soon after: the figures below then
                # do not depend on whether it has run yet (index-only scans need the visibility map).
                conn.execute("VACUUM (ANALYZE) aisec_terms")
            _proofs(log, log.size())
            _pages(log)
            _views(log)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(argv: list[str] | None = None) -> None:
    """Run the audit-log benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=None, help="log size (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="a 50,000-entry log, and PostgreSQL 20,000")
    args = parser.parse_args(argv)
    entries = args.entries or (50_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="aisec-bench-audit-") as tmp:
        bench_sqlite(Path(tmp), entries)
        bench_postgres(Path(tmp), 20_000 if args.quick else 90_000)


if __name__ == "__main__":
    main()
