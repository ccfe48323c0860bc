"""The subject index: its Bloom filters never hide a subject; requests read only files that may hold one."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dsr_support import COPIES, SUBJECT, catalog_for, digests, raw_identifiers, run
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.dsr.index import INDEX_KEY, Bloom, SubjectIndex, keyed_digests, refresh_catalog
from airflow_aisec.dsr.resolve import Resolver
from airflow_aisec.dsr.scan import catalog_scanner

resolve_module = sys.modules["airflow_aisec.dsr.scan"]  # where the resolver searches Parquet files
KEY = b"k" * 32


@settings(max_examples=50, deadline=None)
@given(st.sets(st.text(min_size=1, max_size=40), min_size=1, max_size=300))
def test_a_bloom_filter_never_forgets_a_value(values: set[str]) -> None:
    bloom = Bloom.build(keyed_digests(KEY, sorted(values)))
    for value in values:
        assert bloom.may_contain(keyed_digests(KEY, [value]))
    assert bloom.may_contain(keyed_digests(KEY, sorted(values)[:20]))  # the array path agrees


def test_a_bloom_filter_has_about_one_percent_false_positives() -> None:
    bloom = Bloom.build(keyed_digests(KEY, [f"member-{i}" for i in range(5000)]))
    strangers = [f"stranger-{i}" for i in range(5000)]
    false = sum(bloom.may_contain(keyed_digests(KEY, [s])) for s in strangers)
    assert false < 5000 * 0.02
    assert bloom.may_contain(keyed_digests(KEY, strangers)) is True  # some stranger is a false positive


@pytest.fixture
def index(tmp_path: Path, ring: LocalKeyring) -> SubjectIndex:
    return SubjectIndex(str(tmp_path / "index"), ring)


def _read_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the Parquet files the resolver reads."""
    seen: list[str] = []
    real = resolve_module._search_parquet

    def counting(dataset: Any, files: Any, *args: Any) -> Any:
        seen.extend(i.location.name for i in files)
        return real(dataset, files, *args)

    monkeypatch.setattr(resolve_module, "_search_parquet", counting)
    return seen


def test_the_index_is_built_once_and_refreshed_only_for_changed_files(
    lake: Path, ring: LocalKeyring, index: SubjectIndex
) -> None:
    catalog = catalog_for(lake)
    scanner = catalog_scanner(KeySource(catalog, ring))
    first = {s.dataset: s for s in refresh_catalog(catalog, index, scanner)}
    assert set(first) == {"customers", "orders", "support_tickets", "chargebacks", *COPIES}
    assert [first.pop(n).files for n in COPIES] == [0, 0]  # declared, empty in the sample lake
    assert all(s.indexed == s.files > 0 and s.reused == 0 for s in first.values())

    again = {
        s.dataset: s for s in refresh_catalog(catalog, SubjectIndex(str(index.root.path), ring), scanner)
    }
    assert all(s.indexed == 0 and s.reused == s.files for s in again.values())

    changed = sorted((lake / "orders").glob("*.parquet"))[0]
    pq.write_table(pq.read_table(changed), changed)  # a new version of one file
    sorted((lake / "orders").glob("*.parquet"))[1].unlink()
    orders = SubjectIndex(str(index.root.path), ring).refresh(catalog.dataset("orders"), scanner)
    assert (orders.indexed, orders.dropped, orders.reused) == (1, 1, orders.files - 1)

    stored = (Path(index.root.path) / "customers.idx").read_bytes()
    assert not any(v.encode() in stored for v in raw_identifiers().values())  # bits of keyed hashes only


def test_a_request_reads_only_the_files_the_index_cannot_rule_out(
    lake: Path, ring: LocalKeyring, index: SubjectIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_for(lake)
    refresh_catalog(catalog, index, catalog_scanner(KeySource(catalog, ring)))
    plain = Resolver(catalog, scanner=catalog_scanner(KeySource(catalog, ring))).resolve(
        "email", SUBJECT.email
    )
    read = _read_files(monkeypatch)
    indexed = Resolver(
        catalog,
        scanner=catalog_scanner(KeySource(catalog, ring)),
        index=SubjectIndex(str(index.root.path), ring),
    )
    fast = indexed.resolve("email", SUBJECT.email)

    def found(resolution: Any) -> dict[str, Any]:  # which files were read differs: that is the point
        return {
            n: {k: v for k, v in m.items() if k != "read"} for n, m in resolution.public()["datasets"].items()
        }

    assert found(fast) == found(plain)  # the same rows, files and counts
    assert all(set(m.read) < set(m.scanned) for n, m in fast.datasets.items() if n in ("customers", "orders"))
    holding = {Path(f["uri"]).name for m in fast.datasets.values() for f in m.as_dict()["files"]}
    parquet = {p.name for d in ("customers", "orders") for p in (lake / d).glob("*.parquet")}
    assert holding & parquet <= set(read)  # every file with the subject was read...
    assert len(set(read)) < len(parquet) / 2  # ...and most of the others were not


def test_an_erasure_with_the_index_ends_as_one_without_it_and_leaves_no_trace_in_it(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, index: SubjectIndex, sample_lake_dir: Path
) -> None:
    catalog = catalog_for(lake)
    refresh_catalog(catalog, index, catalog_scanner(KeySource(catalog, ring)))
    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="erase-indexed")
    document = run(catalog, request, ring, log, tmp_path, index=SubjectIndex(str(index.root.path), ring))
    assert verify_certificate(document, log).ok

    other = tmp_path / "other"
    other.mkdir()
    plain_lake = other / "lake"
    import shutil

    shutil.copytree(sample_lake_dir, plain_lake)
    plain_catalog = catalog_for(plain_lake)
    with AuditLog.open(f"sqlite:///{other / 'audit.db'}", keyring=ring) as plain_log:
        plain_request = make_request(
            plain_catalog, "erasure", "customer_id", SUBJECT.customer_id, request_id="x"
        )
        plain = run(plain_catalog, plain_request, ring, plain_log, other)
    assert document["certificate"]["summary"] == plain["certificate"]["summary"]
    changed = {Path(f["uri"]).name for d in document["certificate"]["datasets"] for f in d["files"]}
    assert changed and changed == {
        Path(f["uri"]).name for d in plain["certificate"]["datasets"] for f in d["files"]
    }

    entries = SubjectIndex(str(index.root.path), ring).entries("orders") or {}
    assert entries and not any(Path(uri).name in changed for uri, _ in entries)  # their filters were dropped


def test_a_file_changed_after_indexing_is_read_so_a_stale_index_hides_nobody(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, index: SubjectIndex
) -> None:
    catalog = catalog_for(lake)
    refresh_catalog(catalog, index, catalog_scanner(KeySource(catalog, ring)))
    # After indexing, an order of the subject lands in a file that held none of theirs.
    target = next(
        p for p in sorted((lake / "orders").glob("*.parquet"))
        if SUBJECT.customer_id not in pq.read_table(p, columns=["customer_id"])["customer_id"].to_pylist()
    )  # fmt: skip
    table = pq.read_table(target)
    when = pa.array([dt.datetime(2026, 10, 1, tzinfo=dt.UTC)], table.schema.field("ordered_at").type)
    extra = pa.table(
        {"order_id": ["O999999"], "customer_id": [SUBJECT.customer_id], "shipping_address": ["1 Elm Street"],
         "amount": [9.5], "ordered_at": when},
        schema=table.schema,
    )  # fmt: skip
    pq.write_table(pa.concat_tables([table, extra]), target)

    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-stale")
    document = run(catalog, request, ring, log, tmp_path, index=SubjectIndex(str(index.root.path), ring))
    orders = {d["dataset"]: d for d in document["certificate"]["datasets"]}["orders"]
    assert target.name in {Path(f["uri"]).name for f in orders["files"]}
    kept = pq.read_table(target)
    assert SUBJECT.customer_id not in kept["customer_id"].to_pylist()
    assert "O999999" in kept["order_id"].to_pylist()  # anonymized, not deleted (orders: anonymize)


def test_an_index_made_with_another_key_is_ignored(
    lake: Path, ring: LocalKeyring, index: SubjectIndex
) -> None:
    catalog = catalog_for(lake)
    refresh_catalog(catalog, index, catalog_scanner(KeySource(catalog, ring)))
    assert SubjectIndex(str(index.root.path), ring).entries("orders")
    ring.rotate(INDEX_KEY)
    assert SubjectIndex(str(index.root.path), ring).entries("orders") is None  # every file is read again


def test_cli_index_builds_then_reuses(lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_INDEX", str(tmp_path / "index"))
    catalog = str(Path(catalog_for(lake).source))
    args = ["--keyring", str(tmp_path / "ring.json"), "dsr", "index", "--catalog", catalog,
            "--var", f"lake={lake}", "--json"]  # fmt: skip
    before = digests(lake)
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    built = {d["dataset"]: d for d in json.loads(first.stdout)["datasets"]}
    assert built["orders"]["indexed"] == built["orders"]["files"] > 0
    second = CliRunner().invoke(app, [*args, "--dataset", "orders"])
    assert [d["reused"] for d in json.loads(second.stdout)["datasets"]] == [built["orders"]["files"]]
    assert digests(lake) == before  # indexing never writes to the lake
