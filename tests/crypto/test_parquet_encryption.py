"""Parquet modular encryption: round trips, unreadable without keys, tamper and wrong-key errors with no
output, key rotation without rewriting data, fresh keys per file, crash consistency, no secrets in logs."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_aisec.catalog import load_catalog
from airflow_aisec.crypto import parquet as cp
from airflow_aisec.crypto.parquet import write as parquet_write
from airflow_aisec.crypto.providers import Context, LocalKeyProvider
from airflow_aisec.exceptions import (
    ConcurrentModificationError,
    DatasetIOError,
    EncryptionError,
    KeyringError,
)
from airflow_aisec.io import Location, list_files, read_file, sha256_file
from airflow_aisec.samples import SampleLake

ROOT = Path(__file__).resolve().parents[2]
KEY = "pii-columns"


@pytest.fixture
def provider(tmp_path: Path) -> LocalKeyProvider:
    """A local keyring with the dataset key (outside the data folder)."""
    (tmp_path / "keys").mkdir()
    keys = LocalKeyProvider(tmp_path / "keys" / "ring.json")
    keys.create(KEY)
    return keys


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def mixed_table(rows: int = 500) -> pa.Table:
    """Several types, with nulls: ints, floats, text, bools, dates, zoned timestamps, decimals, bytes,
    lists and structs."""
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "email": [f"user{i}@example.com" if i % 7 else None for i in range(rows)],
            "score": [i / 3 for i in range(rows)],
            "active": [i % 2 == 0 for i in range(rows)],
            "birth_date": [dt.date(1970, 1, 1) + dt.timedelta(days=i) for i in range(rows)],
            "seen_at": pa.array(
                [base + dt.timedelta(minutes=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "balance": pa.array([decimal.Decimal(i) / 100 for i in range(rows)], pa.decimal128(12, 2)),
            "token": [i.to_bytes(4, "big") for i in range(rows)],
            "tags": [[i, i + 1] for i in range(rows)],
            "address": [{"street": f"{i} Main St", "zip": f"{i:05d}"} for i in range(rows)],
        }
    )


def write_plain(path: Path, table: pa.Table) -> Location:
    pq.write_table(table, path)
    return Location.parse(path)


def read_all(location: Location, provider: Any, columns: list[str] | None = None) -> pa.Table:
    return pa.Table.from_batches(list(cp.read_encrypted_batches(location, provider, columns)))


def key_material(result: cp.EncryptedWriteResult) -> dict[str, dict[str, Any]]:
    """The key material file of a committed file, each entry parsed."""
    text = Path(Location.parse(result.key_material).path).read_text()
    return {name: json.loads(entry) for name, entry in json.loads(text).items()}


def encrypt(
    data: Path, provider: Any, table: pa.Table, columns: Any, name: str = "enc"
) -> tuple[Location, Any]:
    source = write_plain(data / f"{name}-plain.parquet", table)
    target = Location.parse(data / f"{name}.parquet")
    return target, cp.encrypt_parquet_file(source, target, provider, KEY, columns)


class RefusingProvider(LocalKeyProvider):
    """A provider that holds the footer key but may not use the PII column key (a restricted reader)."""

    def unwrap(self, key_name: str, wrapped: bytes, context: Context) -> bytes:
        if key_name == KEY:
            raise KeyringError(f"access to key {key_name!r} denied")
        return super().unwrap(key_name, wrapped, context)


# --- round trips ------------------------------------------------------------------------------------------


def test_round_trip_of_several_types(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table()
    columns = ["email", "birth_date", "balance", "token", "tags", "address"]
    target, result = encrypt(data, provider, table, columns)

    assert read_all(target, provider).equals(table)
    assert result.rows == table.num_rows
    assert result.sha256 == sha256_file(target) and result.bytes == os.path.getsize(target.path)
    assert result.master_keys == {KEY: 1}
    # The key material sits beside the file under the file's id, and the listing of the dataset skips it.
    km = Path(Location.parse(result.key_material).path)
    assert km.parent == data and km.name.startswith("_KEY_MATERIAL_FOR_enc.parquet.")
    assert cp.find_key_material(target) == Location.parse(km)
    assert [f.location.name for f in list_files(Location.parse(data), "parquet")] == [
        "enc-plain.parquet",
        "enc.parquet",
    ]
    entries = key_material(result)
    assert {e["masterKeyID"] for e in entries.values()} == {KEY}
    assert sum(e["isFooterKey"] for e in entries.values()) == 1 and len(entries) == len(columns) + 1
    assert cp.is_encrypted_parquet(pafs.LocalFileSystem(), target.path)
    assert not cp.is_encrypted_parquet(pafs.LocalFileSystem(), str(data / "enc-plain.parquet"))
    assert not any(name.startswith((".", "_TMP")) for name in os.listdir(data))


def test_column_selection_and_batch_size(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table(1000)
    target, _ = encrypt(data, provider, table, ["email"])
    batches = list(cp.read_encrypted_batches(target, provider, ["score", "email"], batch_size=300))
    assert [b.num_rows for b in batches] == [300, 300, 300, 100]
    assert pa.Table.from_batches(batches).equals(table.select(["score", "email"]))
    with pytest.raises(DatasetIOError, match="has no column"):
        list(cp.read_encrypted_batches(target, provider, ["nope"]))


def test_empty_file_round_trip(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table(0)
    target, result = encrypt(data, provider, table, ["email"])
    assert result.rows == 0 and cp.is_encrypted_parquet(pafs.LocalFileSystem(), target.path)
    assert list(cp.read_encrypted_batches(target, provider)) == []
    assert cp.encrypted_schema(target, provider).equals(table.schema)


def test_low_level_properties_follow_pyarrow_conventions(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table(50)
    fs = pafs.LocalFileSystem()
    path = str(data / "low.parquet")
    pq.write_table(
        table, path, encryption_properties=cp.encryption_properties(provider, KEY, ["email"], fs, path)
    )
    assert (data / "_KEY_MATERIAL_FOR_low.parquet.json").is_file()
    props = cp.decryption_properties(provider, fs, path)
    assert pq.read_table(path, decryption_properties=props).equals(table)
    provider.rotate(KEY)
    cp.rotate_file_keys(Location.parse(path), provider)
    provider.destroy(KEY, 1)
    assert read_all(Location.parse(path), provider).equals(table)


# --- confidentiality ----------------------------------------------------------------------------------------


def test_encrypted_file_is_unreadable_without_keys(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table()
    target, _ = encrypt(data, provider, table, ["email"])
    raw = Path(target.path).read_bytes()
    assert raw[:4] == raw[-4:] == b"PARE"
    assert b"@example.com" not in raw and b"birth_date" not in raw  # values and even the schema are hidden
    with pytest.raises(OSError, match="encrypted"):
        pq.read_table(target.path)
    with pytest.raises(OSError):
        pq.ParquetFile(target.path)
    with pytest.raises(DatasetIOError):
        list(read_file(target, "parquet"))


def test_unencrypted_columns_read_without_the_column_key(
    data: Path, provider: LocalKeyProvider, tmp_path: Path
) -> None:
    provider.create("footer")
    table = mixed_table(200)
    source = write_plain(data / "plain.parquet", table)
    target = Location.parse(data / "two-keys.parquet")
    result = cp.encrypt_parquet_file(source, target, provider, "footer", {KEY: ["email", "address"]})
    assert result.master_keys == {"footer": 1, KEY: 1}

    restricted = RefusingProvider(provider.keyring)
    assert read_all(target, restricted, ["id", "score"]).equals(table.select(["id", "score"]))
    with pytest.raises(EncryptionError, match=f"access to key '{KEY}' denied") as raised:
        read_all(target, restricted, ["id", "email"])
    assert target.path in str(raised.value)
    assert read_all(target, provider).equals(table)


def test_unknown_columns_are_named_and_nothing_is_written(data: Path, provider: LocalKeyProvider) -> None:
    source = write_plain(data / "plain.parquet", mixed_table(10))
    target = Location.parse(data / "enc.parquet")
    with pytest.raises(EncryptionError, match=r"unknown column\(s\) emial, ssn") as raised:
        cp.encrypt_parquet_file(source, target, provider, KEY, ["email", "emial", "ssn"])
    assert "plain.parquet" not in str(raised.value) and target.uri in str(raised.value)
    assert sorted(os.listdir(data)) == ["plain.parquet"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("email", "not the string"),
        ([], "non-empty"),
        ({KEY: ["email"], "other": ["email"]}, "assigned to master keys"),
    ],
)
def test_bad_column_specs(data: Path, provider: LocalKeyProvider, columns: Any, message: str) -> None:
    source = write_plain(data / "plain.parquet", mixed_table(10))
    with pytest.raises(EncryptionError, match=message):
        cp.encrypt_parquet_file(source, Location.parse(data / "enc.parquet"), provider, KEY, columns)


# --- integrity and wrong keys -------------------------------------------------------------------------------


def _assert_no_output(folder: Path, before: set[str]) -> None:
    assert set(os.listdir(folder)) == before


def test_wrong_keyring_is_a_clear_error_and_writes_nothing(
    data: Path, provider: LocalKeyProvider, tmp_path: Path
) -> None:
    target, _ = encrypt(data, provider, mixed_table(), ["email"])
    impostor = LocalKeyProvider(tmp_path / "keys" / "other.json")
    impostor.create(KEY)  # same name, different material
    empty = LocalKeyProvider(tmp_path / "keys" / "empty.json")
    out = Location.parse(data / "out.parquet")
    before = set(os.listdir(data))

    with pytest.raises(EncryptionError, match="wrong key or context") as wrong:
        cp.decrypt_parquet_file(target, out, impostor)
    with pytest.raises(EncryptionError, match=f"key '{KEY}' is not in keyring") as missing:
        cp.decrypt_parquet_file(target, out, empty)
    for raised in (wrong, missing):
        assert str(raised.value).startswith(f"cannot decrypt {target.path}")
    _assert_no_output(data, before)


@pytest.mark.parametrize("where", ["middle", "footer"])
def test_tampered_file_is_an_error_and_writes_nothing(
    data: Path, provider: LocalKeyProvider, where: str
) -> None:
    table = mixed_table(2000)
    target, _ = encrypt(data, provider, table, list(table.column_names))  # every column authenticated
    raw = bytearray(Path(target.path).read_bytes())
    position = len(raw) // 2 if where == "middle" else len(raw) - 40
    raw[position] ^= 0x01
    Path(target.path).write_bytes(bytes(raw))
    out = Location.parse(data / "out.parquet")
    before = set(os.listdir(data))

    with pytest.raises(EncryptionError, match=f"cannot decrypt {target.path}"):
        cp.decrypt_parquet_file(target, out, provider)
    with pytest.raises(EncryptionError):
        read_all(target, provider)
    _assert_no_output(data, before)


def test_missing_key_material_is_named(data: Path, provider: LocalKeyProvider) -> None:
    target, result = encrypt(data, provider, mixed_table(10), ["email"])
    Path(Location.parse(result.key_material).path).unlink()
    with pytest.raises(
        EncryptionError, match=r"key material _KEY_MATERIAL_FOR_enc\.parquet\.[0-9a-f]{32}\.json is missing"
    ):
        read_all(target, provider)


def test_plain_file_is_not_read_as_encrypted(data: Path, provider: LocalKeyProvider) -> None:
    plain = write_plain(data / "plain.parquet", mixed_table(10))
    with pytest.raises(EncryptionError, match="not an encrypted Parquet file"):
        read_all(plain, provider)
    with pytest.raises(DatasetIOError, match="does not exist"):
        read_all(Location.parse(data / "absent.parquet"), provider)


# --- keys: rotation, destruction, freshness -----------------------------------------------------------------


def test_rotation_rewraps_keys_without_rewriting_data(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table()
    target, result = encrypt(data, provider, table, ["email", "score"])
    other, _ = encrypt(data, provider, table, ["email"], name="not-rotated")
    before = key_material(result)
    digest = sha256_file(target)

    assert provider.rotate(KEY) == 2
    cp.rotate_file_keys(target, provider)
    after = key_material(result)  # same file name: the data file, hence its id, did not change
    assert sha256_file(target) == digest == result.sha256
    assert {e["wrappedKEK"][:16] for e in after.values()} != {e["wrappedKEK"][:16] for e in before.values()}
    for entry in after.values():  # the local provider's header names the master key version (2)
        assert base64.b64decode(entry["wrappedKEK"])[5:9] == (2).to_bytes(4, "big")

    assert provider.destroy(KEY, 1)
    assert read_all(target, provider).equals(table)
    with pytest.raises(EncryptionError, match=f"key '{KEY}' version 1 was destroyed"):
        read_all(other, provider)
    assert not [n for n in os.listdir(data) if n.startswith(".")]


def test_destroyed_master_key_is_a_clear_error(data: Path, provider: LocalKeyProvider) -> None:
    target, _ = encrypt(data, provider, mixed_table(), ["email"])
    assert provider.destroy(KEY)
    with pytest.raises(EncryptionError, match="was destroyed") as raised:
        read_all(target, provider)
    assert str(raised.value).startswith(f"cannot decrypt {target.path}")
    with pytest.raises(EncryptionError, match="no active version"):
        encrypt(data, provider, mixed_table(10), ["email"], name="new")
    with pytest.raises(EncryptionError, match="was destroyed"):
        cp.rotate_file_keys(target, provider)


def test_every_file_gets_fresh_data_keys(data: Path, provider: LocalKeyProvider) -> None:
    table = mixed_table(100)
    _, first = encrypt(data, provider, table, ["email"], name="a")
    _, second = encrypt(data, provider, table, ["email"], name="b")
    one, two = key_material(first), key_material(second)
    assert one.keys() == two.keys() == {"footerKey", "columnKey0"}
    wrapped = [e["wrappedDEK"] for e in (*one.values(), *two.values())]
    assert len(set(wrapped)) == 4  # footer and column keys differ, and differ between files
    assert {e["keyEncryptionKeyID"] for e in one.values()}.isdisjoint(
        {e["keyEncryptionKeyID"] for e in two.values()}
    )


# --- scale and concurrency ----------------------------------------------------------------------------------


def test_large_file_with_row_groups_reads_back_with_threads(data: Path, provider: LocalKeyProvider) -> None:
    rows = 40_000  # > 2**15
    table = mixed_table(rows)
    target = Location.parse(data / "big.parquet")
    with cp.atomic_write_encrypted(
        target, table.schema, provider, KEY, ["email", "address", "score"], row_group_rows=8_192
    ) as writer:
        for batch in table.to_batches(max_chunksize=3_000):
            writer.write(batch)
    assert writer.result.rows == rows

    props = cp.decryption_properties(provider, pafs.LocalFileSystem(), target.path)
    parquet = pq.ParquetFile(target.path, decryption_properties=props)
    assert parquet.metadata.num_row_groups == 5 and parquet.metadata.num_rows == rows
    assert pq.read_table(target.path, decryption_properties=props, use_threads=True).equals(table)

    def one_read(columns: list[str] | None) -> pa.Table:
        return pa.Table.from_batches(list(cp.read_encrypted_batches(target, provider, columns, 5_000)))

    selections: list[list[str] | None] = [None, ["email"], ["id", "address"], None, ["score", "tags"], None]
    with ThreadPoolExecutor(max_workers=4) as pool:
        tables = list(pool.map(one_read, selections))
    for columns, read in zip(selections, tables, strict=True):
        assert read.equals(table if columns is None else table.select(columns))


# --- the sample lake, per the catalog ----------------------------------------------------------------------


def test_sample_lake_customers_encrypted_per_catalog(data: Path, provider: LocalKeyProvider) -> None:
    catalog = load_catalog(ROOT / "dags" / "catalog.yaml", {"lake": str(data)})
    spec = catalog.datasets["customers"].encryption
    assert spec is not None and spec.key == KEY
    tables = SampleLake(customers=200).tables_by_year("customers")
    assert len(tables) > 1
    for year, table in tables.items():
        source = write_plain(data / f"plain-customers-{year}.parquet", table)
        target = Location.parse(data / "customers" / f"customers-{year}.parquet")
        result = cp.encrypt_parquet_file(source, target, provider, spec.key, spec.columns)
        assert result.rows == table.num_rows
        assert read_all(target, provider).equals(table)
        encrypted_columns = {e.get("masterKeyID") for e in key_material(result).values()}
        assert encrypted_columns == {KEY} and len(key_material(result)) == len(spec.columns) + 1
        raw = Path(target.path).read_bytes()
        first_email = table["email"][0].as_py().encode()
        assert first_email not in raw
    files = list_files(Location.parse(data / "customers"), "parquet")
    assert len(files) == len(tables)


# --- crash consistency --------------------------------------------------------------------------------------


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import pyarrow.parquet as pq
    from airflow_aisec.crypto.parquet import write as cp
    from airflow_aisec.crypto.providers import LocalKeyProvider
    from airflow_aisec.io import Location

    def crash(*args, **kwargs):
        os._exit(3)  # the process dies between the key material rename and the data swap

    cp.publish = crash
    provider = LocalKeyProvider(sys.argv[1])
    cp.encrypt_parquet_file(
        Location.parse(sys.argv[2]), Location.parse(sys.argv[3]), provider, "pii-columns", ["email", "score"],
        overwrite=True,
    )
    """
)


def test_crash_between_key_material_and_data_swap_keeps_the_file_readable(
    data: Path, provider: LocalKeyProvider
) -> None:
    table = mixed_table(300)
    target, result = encrypt(data, provider, table, ["email"])
    changed = write_plain(data / "changed.parquet", table.slice(0, 100))
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(provider.keyring.path), changed.path, target.path],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr.decode()
    # The visible file is still the old version, with its own key material.
    assert sha256_file(target) == result.sha256
    assert read_all(target, provider).equals(table)
    # What the crash left behind is hidden from dataset listings.
    leftovers = sorted(set(os.listdir(data)) - {"enc.parquet", "enc-plain.parquet", "changed.parquet"})
    assert leftovers and all(name.startswith((".", "_")) for name in leftovers)
    assert [f.location.name for f in list_files(Location.parse(data), "parquet")] == [
        "changed.parquet",
        "enc-plain.parquet",
        "enc.parquet",
    ]


def test_replacing_an_encrypted_file_replaces_its_key_material(
    data: Path, provider: LocalKeyProvider
) -> None:
    table = mixed_table(100)
    target, first = encrypt(data, provider, table, ["email"])
    second = cp.encrypt_parquet_file(target, target, provider, KEY, ["email", "score"], overwrite=True)
    assert second.key_material != first.key_material
    assert [n for n in os.listdir(data) if n.startswith("_KEY_MATERIAL")] == [
        Path(Location.parse(second.key_material).path).name
    ]
    assert len(key_material(second)) == 3 and read_all(target, provider).equals(table)

    plain = cp.decrypt_parquet_file(target, target, provider, overwrite=True)
    assert pq.read_table(target.path).equals(table) and plain.sha256 == sha256_file(target)
    assert not [n for n in os.listdir(data) if n.startswith("_KEY_MATERIAL")]


def test_a_failed_swap_leaves_the_old_version_and_no_key_material(
    data: Path, provider: LocalKeyProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = mixed_table(50)
    target, first = encrypt(data, provider, table, ["email"])
    before = set(os.listdir(data))

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConcurrentModificationError(f"{target.uri} changed since it was read; it was not replaced")

    monkeypatch.setattr(parquet_write, "publish", refuse)  # where the writer publishes
    with pytest.raises(ConcurrentModificationError):
        cp.encrypt_parquet_file(target, target, provider, KEY, ["email", "score"], overwrite=True)
    _assert_no_output(data, before)
    assert sha256_file(target) == first.sha256 and read_all(target, provider).equals(table)
    with pytest.raises(ConcurrentModificationError, match="already exists"):
        cp.encrypt_parquet_file(target, target, provider, KEY, ["email"])
    _assert_no_output(data, before)


# --- secrets stay out of logs and messages -----------------------------------------------------------------


def _secrets(provider: LocalKeyProvider, km_texts: list[str]) -> Iterator[str]:
    ring = json.loads(Path(provider.keyring.path).read_text())
    for entry in ring["keys"].values():
        for version in entry["versions"]:
            if version.get("material"):
                yield version["material"]
                yield base64.b64decode(version["material"]).hex()
    for text in km_texts:
        for entry in json.loads(text).values():
            parsed = json.loads(entry)
            yield parsed["wrappedDEK"]
            yield parsed["wrappedKEK"]


def test_no_key_material_in_logs_or_errors(
    data: Path, provider: LocalKeyProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    table = mixed_table(100)
    messages: list[str] = []
    target, result = encrypt(data, provider, table, ["email"])
    provider.rotate(KEY)
    cp.rotate_file_keys(target, provider)
    impostor = LocalKeyProvider(tmp_path / "keys" / "impostor.json")
    impostor.create(KEY)
    for attempt in (
        lambda: read_all(target, impostor),
        lambda: cp.decrypt_parquet_file(target, Location.parse(data / "x.parquet"), impostor),
        lambda: cp.rotate_file_keys(target, impostor),
    ):
        with pytest.raises(EncryptionError) as raised:
            attempt()
        messages.append(str(raised.value))
        messages.append(repr(raised.value))
    cp.decrypt_parquet_file(target, Location.parse(data / "clear.parquet"), provider)

    assert "encrypted" in caplog.text and "re-wrapped" in caplog.text
    km_text = Path(Location.parse(result.key_material).path).read_text()
    haystack = caplog.text + "\n".join(messages)
    secrets = [s for s in _secrets(provider, [km_text]) if s] + list(_secrets(impostor, []))
    assert secrets
    for secret in secrets:
        assert secret not in haystack


# --- S3 ---------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Location]:
    """An empty prefix in a fresh bucket of a moto S3 server on loopback (dummy credentials)."""
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    from airflow_aisec.io.storage import S3Options, s3_client

    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAAISECTESTACCESS0",
        "AWS_SECRET_ACCESS_KEY": "aisec-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = S3Options(
            "AKIAAISECTESTACCESS0", "aisec-test-secret", None, "us-east-1", f"http://{host}:{port}"
        )
        s3_client(options).create_bucket(Bucket="aisec-enc")
        yield Location.parse("s3://aisec-enc/lake", options)
    finally:
        server.stop()


@pytest.mark.integration
def test_s3_round_trip_and_rotation(data: Path, provider: LocalKeyProvider, s3_root: Location) -> None:
    table = mixed_table(300)
    source = write_plain(data / "plain.parquet", table)
    target = s3_root.join("customers", "part-0.parquet")
    result = cp.encrypt_parquet_file(source, target, provider, KEY, ["email"])
    assert result.key_material.startswith("s3://aisec-enc/lake/customers/_KEY_MATERIAL_FOR_part-0.parquet.")
    assert read_all(target, provider).equals(table)
    assert cp.is_encrypted_parquet(target.filesystem(), target.path)
    digest = sha256_file(target)
    provider.rotate(KEY)
    cp.rotate_file_keys(target, provider)
    provider.destroy(KEY, 1)
    assert sha256_file(target) == digest and read_all(target, provider).equals(table)
    assert [f.location.name for f in list_files(s3_root, "parquet")] == ["part-0.parquet"]
    out = Location.parse(data / "back.parquet")
    cp.decrypt_parquet_file(target, out, provider)
    assert pq.read_table(out.path).equals(table)
    assert hashlib.sha256(Path(out.path).read_bytes()).hexdigest() == sha256_file(out)
