"""Destructive rewrites are all-or-nothing: the old file survives every failure, even a SIGKILL mid-write."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_aisec.exceptions import ConcurrentModificationError, DatasetIOError, VerificationError
from airflow_aisec.io import (
    FORMATS,
    Location,
    S3Options,
    atomic_write,
    delete_file,
    extension,
    list_files,
    read_file,
    sha256_file,
    stat_file,
    write_dataset_file,
)
from airflow_aisec.io import atomic as atomic_module
from airflow_aisec.io import staging as staging_module
from airflow_aisec.io.atomic import MIN_PART_SIZE, TEMP_MARKER
from airflow_aisec.io.storage import s3_client

TableFactory = Callable[..., pa.Table]


def _stored_bytes(location: Location) -> bytes:
    if location.is_s3:
        body = s3_client(location.s3).get_object(Bucket=location.bucket, Key=location.key)["Body"]  # type: ignore[arg-type]
        return bytes(body.read())
    return Path(location.path).read_bytes()


def _read_all(location: Location, fmt: str, schema: pa.Schema) -> pa.Table:
    batches = list(read_file(location, fmt, schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def _original(root: Location, fmt: str, table: pa.Table) -> Location:
    name = f"data{extension(fmt)}"
    write_dataset_file(root, fmt, table, name=name)
    return root.join(name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_atomic_rewrite_swaps_in_the_new_version_and_reports_its_digest(
    lake_root: Location, fmt: str, sample_table: TableFactory
) -> None:
    target = _original(lake_root, fmt, sample_table(200))
    before = stat_file(target)
    assert before is not None
    smaller = sample_table(200).filter(pa.array([i % 2 == 0 for i in range(200)]))

    with atomic_write(target, fmt, smaller.schema, expected_etag=before.etag) as writer:
        writer.write(smaller)
    result = writer.result

    stored = _stored_bytes(target)
    after = stat_file(target)
    assert result.sha256 == hashlib.sha256(stored).hexdigest() == sha256_file(target)
    assert (result.rows, result.bytes, result.uri) == (100, len(stored), target.uri)
    assert after is not None and result.etag == after.etag != before.etag
    assert _read_all(target, fmt, smaller.schema).equals(smaller)
    assert [i.location.name for i in list_files(lake_root, fmt)] == [target.name]


def test_exception_inside_the_block_leaves_the_original_and_no_temporary_file(
    tmp_path: Path, sample_table: TableFactory
) -> None:
    target = _original(Location.parse(tmp_path), "parquet", sample_table(50))
    digest = sha256_file(target)
    info = stat_file(target)
    assert info is not None

    with (
        pytest.raises(RuntimeError, match="masking failed"),
        atomic_write(target, "parquet", sample_table(1).schema, expected_etag=info.etag) as writer,
    ):
        writer.write(sample_table(10))
        raise RuntimeError("masking failed")

    assert sha256_file(target) == digest
    assert sorted(os.listdir(tmp_path)) == ["data.parquet"]
    with pytest.raises(DatasetIOError, match="not committed"):
        _ = writer.result


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import pyarrow as pa
    from airflow_aisec.io import Location, S3Options, atomic_write

    spec = json.loads(sys.argv[1])
    options = S3Options(**spec["s3"]) if spec["s3"] else None
    target = Location.parse(spec["uri"], options)
    schema = pa.schema([("id", pa.int64()), ("payload", pa.string())])
    batch = pa.record_batch({"id": list(range(20_000)), "payload": ["x" * 40] * 20_000}, schema=schema)
    with atomic_write(target, "parquet", schema, expected_etag=spec["etag"]) as writer:
        writer.write(batch)
        print("first batch written", flush=True)
        while True:  # a long rewrite, killed by the parent before it can finish
            writer.write(batch)
            time.sleep(0.01)
    """
)


def _kill_rewrite_midway(target: Location, etag: str, tmp_path: Path) -> None:
    spec: dict[str, Any] = {"uri": target.uri, "etag": etag, "s3": None}
    if target.is_s3 and target.s3 is not None:
        o = target.s3
        spec["s3"] = {k: getattr(o, k) for k in ("access_key", "secret_key", "region", "endpoint_url")}
    spool = tmp_path / "spool"
    spool.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(spool)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == b"first batch written\n", child.stderr.read() if child.stderr else b""
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_rewrite_killed_midway_leaves_original_intact(tmp_path: Path) -> None:
    root = Location.parse(tmp_path / "lake")
    original = pa.table({"id": list(range(500)), "payload": ["keep me"] * 500})
    target = _original(root, "parquet", original)
    info = stat_file(target)
    assert info is not None
    before = sha256_file(target)

    _kill_rewrite_midway(target, info.etag, tmp_path)

    leftovers = [n for n in os.listdir(root.path) if TEMP_MARKER in n]
    assert leftovers, "the child should have been killed while its temporary file existed"
    assert sha256_file(target) == before
    assert stat_file(target) == info
    assert _read_all(target, "parquet", original.schema).equals(original)
    assert [i.location.name for i in list_files(root, "parquet")] == ["data.parquet"]


@pytest.mark.integration
def test_s3_rewrite_killed_midway_leaves_original_object_intact(
    bucket: str, s3_options: S3Options, tmp_path: Path
) -> None:
    root = Location.parse(f"s3://{bucket}/lake", s3_options)
    original = pa.table({"id": list(range(500)), "payload": ["keep me"] * 500})
    target = _original(root, "parquet", original)
    info = stat_file(target)
    assert info is not None
    before = hashlib.sha256(_stored_bytes(target)).hexdigest()

    _kill_rewrite_midway(target, info.etag, tmp_path)

    after = stat_file(target)
    assert after is not None and after.etag == info.etag
    assert hashlib.sha256(_stored_bytes(target)).hexdigest() == before
    assert _read_all(target, "parquet", original.schema).equals(original)
    assert [i.location.name for i in list_files(root, "parquet")] == ["data.parquet"]
    # The object store never saw the partial data: it was only in the local spool file.
    assert s3_client(s3_options).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def _corrupting_open_writer(monkeypatch: pytest.MonkeyPatch, damage: Callable[[Any, str], None]) -> None:
    real_open_writer = atomic_module.open_writer

    def open_writer(fs: Any, path: str, fmt: str, schema: pa.Schema, *, label: str | None = None) -> Any:
        writer = real_open_writer(fs, path, fmt, schema, label=label)
        damage(writer, path)
        return writer

    monkeypatch.setattr(atomic_module, "open_writer", open_writer)


def _truncate_after_close(writer: Any, path: str) -> None:
    real_close = writer.close

    def close() -> None:
        real_close()
        size = os.path.getsize(path)
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)

    writer.close = close


def _drop_every_other_batch(writer: Any, path: str) -> None:
    real_write = writer._write
    calls = {"n": 0}

    def write(batch: pa.RecordBatch) -> None:
        calls["n"] += 1
        if calls["n"] % 2:
            real_write(batch)

    writer._write = write


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("damage", [_truncate_after_close, _drop_every_other_batch])
def test_new_version_that_does_not_read_back_as_written_is_rejected_and_original_kept(
    lake_root: Location,
    fmt: str,
    damage: Callable[[Any, str], None],
    sample_table: TableFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = sample_table(3000)
    target = _original(lake_root, fmt, table)
    info = stat_file(target)
    assert info is not None
    before = hashlib.sha256(_stored_bytes(target)).hexdigest()
    _corrupting_open_writer(monkeypatch, damage)

    with (
        pytest.raises(VerificationError, match="original is untouched"),
        atomic_write(target, fmt, table.schema, expected_etag=info.etag) as writer,
    ):
        for batch in table.to_batches(max_chunksize=500):
            writer.write(batch)

    assert hashlib.sha256(_stored_bytes(target)).hexdigest() == before
    assert stat_file(target) == info
    assert [i.location.name for i in list_files(lake_root, fmt)] == [target.name]


def test_local_rewrite_refuses_a_file_changed_since_it_was_read(tmp_path: Path) -> None:
    root = Location.parse(tmp_path)
    target = _original(root, "csv", pa.table({"id": [1]}))
    info = stat_file(target)
    assert info is not None
    write_dataset_file(root, "csv", pa.table({"id": [2]}), name="data.csv", overwrite=True)

    with (
        pytest.raises(ConcurrentModificationError, match="changed since it was read"),
        atomic_write(target, "csv", pa.schema([("id", pa.int64())]), expected_etag=info.etag) as writer,
    ):
        writer.write(pa.table({"id": [3]}))

    assert _read_all(target, "csv", pa.schema([("id", pa.int64())]))["id"].to_pylist() == [2]


def test_local_rewrite_checks_the_version_again_just_before_the_swap(tmp_path: Path) -> None:
    root = Location.parse(tmp_path)
    schema = pa.schema([("id", pa.int64())])
    target = _original(root, "parquet", pa.table({"id": [1]}))
    info = stat_file(target)
    assert info is not None

    with (
        pytest.raises(ConcurrentModificationError),
        atomic_write(target, "parquet", schema, expected_etag=info.etag) as writer,
    ):
        writer.write(pa.table({"id": [3]}))
        # Another process replaces the file while this rewrite is still running.
        write_dataset_file(root, "parquet", pa.table({"id": [2]}), name="data.parquet", overwrite=True)

    assert _read_all(target, "parquet", schema)["id"].to_pylist() == [2]
    assert sorted(os.listdir(tmp_path)) == ["data.parquet"]


def test_rewrite_keeps_the_permissions_of_the_file_it_replaces(tmp_path: Path) -> None:
    target = _original(Location.parse(tmp_path), "parquet", pa.table({"id": [1]}))
    os.chmod(target.path, 0o600)
    info = stat_file(target)
    assert info is not None

    with atomic_write(target, "parquet", pa.schema([("id", pa.int64())]), expected_etag=info.etag) as writer:
        writer.write(pa.table({"id": [2]}))

    assert stat.S_IMODE(os.stat(target.path).st_mode) == 0o600


def test_creating_refuses_an_existing_file_unless_overwrite(tmp_path: Path) -> None:
    target = _original(Location.parse(tmp_path), "jsonl", pa.table({"id": [1]}))
    schema = pa.schema([("id", pa.int64())])

    with (
        pytest.raises(ConcurrentModificationError, match="already exists"),
        atomic_write(target, "jsonl", schema) as writer,
    ):
        writer.write(pa.table({"id": [2]}))
    with atomic_write(target, "jsonl", schema, overwrite=True) as writer:
        writer.write(pa.table({"id": [3]}))

    assert Path(target.path).read_text(encoding="utf-8") == '{"id":3}\n'


@pytest.mark.integration
@pytest.mark.parametrize("threshold", [None, 1], ids=["single-put", "multipart"])
def test_s3_rewrite_uploads_verified_bytes_with_their_sha256(
    bucket: str, s3_options: S3Options, threshold: int | None
) -> None:
    target = Location.parse(f"s3://{bucket}/lake/blob.parquet", s3_options)
    # Random bytes do not compress, so the file is a little over one minimum part when multipart is forced.
    rows = (MIN_PART_SIZE + (1 << 20)) // 1024
    table = pa.table({"id": list(range(rows)), "blob": [os.urandom(1024) for _ in range(rows)]})
    options: dict[str, Any] = (
        {"multipart_threshold": threshold, "part_size": MIN_PART_SIZE} if threshold else {}
    )

    with atomic_write(target, "parquet", table.schema, **options) as writer:
        for batch in table.to_batches(max_chunksize=2048):
            writer.write(batch)
    result = writer.result

    stored = _stored_bytes(target)
    head = s3_client(s3_options).head_object(Bucket=bucket, Key=target.key, ChecksumMode="ENABLED")
    assert result.sha256 == hashlib.sha256(stored).hexdigest() == sha256_file(target)
    assert result.bytes == len(stored) > MIN_PART_SIZE
    assert result.etag == head["ETag"]
    assert result.etag.strip('"').endswith("-2") == (threshold == 1)
    if threshold is None:  # a single PUT carries the whole-object checksum, which S3 verified on receipt
        assert base64.b64decode(head["ChecksumSHA256"]) == bytes.fromhex(result.sha256)
    assert _read_all(target, "parquet", table.schema)["id"].equals(table["id"])


@pytest.mark.integration
@pytest.mark.parametrize("threshold", [None, 1], ids=["single-put", "multipart"])
def test_s3_rewrite_refuses_an_object_changed_since_it_was_read_and_keeps_the_other_writers_content(
    bucket: str, s3_options: S3Options, threshold: int | None
) -> None:
    root = Location.parse(f"s3://{bucket}/lake", s3_options)
    schema = pa.schema([("id", pa.int64())])
    target = _original(root, "parquet", pa.table({"id": [1]}))
    info = stat_file(target)
    assert info is not None
    write_dataset_file(root, "parquet", pa.table({"id": [2]}), name="data.parquet", overwrite=True)
    theirs = _stored_bytes(target)
    options: dict[str, Any] = {"multipart_threshold": threshold} if threshold else {}

    with (
        pytest.raises(ConcurrentModificationError, match="changed since it was read") as caught,
        atomic_write(target, "parquet", schema, expected_etag=info.etag, **options) as writer,
    ):
        writer.write(pa.table({"id": [3]}))

    assert _stored_bytes(target) == theirs
    assert s3_options.secret_key is not None
    assert s3_options.secret_key not in "".join(traceback.format_exception(caught.value))


@pytest.mark.integration
def test_s3_conditional_put_catches_a_change_made_after_the_last_check(
    bucket: str, s3_options: S3Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Location.parse(f"s3://{bucket}/lake", s3_options)
    schema = pa.schema([("id", pa.int64())])
    target = _original(root, "parquet", pa.table({"id": [1]}))
    info = stat_file(target)
    assert info is not None
    real_check = staging_module._check_version
    calls = {"n": 0}

    def check_then_lose_the_race(plan: Any) -> None:
        real_check(plan)
        calls["n"] += 1
        if calls["n"] == 2:  # the last check before the upload: another writer gets in right after it
            write_dataset_file(root, "parquet", pa.table({"id": [2]}), name="data.parquet", overwrite=True)

    monkeypatch.setattr(staging_module, "_check_version", check_then_lose_the_race)

    with (
        pytest.raises(ConcurrentModificationError),
        atomic_write(target, "parquet", schema, expected_etag=info.etag) as writer,
    ):
        writer.write(pa.table({"id": [3]}))

    assert _read_all(target, "parquet", schema)["id"].to_pylist() == [2]


@pytest.mark.integration
def test_s3_create_refuses_an_existing_object(bucket: str, s3_options: S3Options) -> None:
    root = Location.parse(f"s3://{bucket}/lake", s3_options)
    target = _original(root, "csv", pa.table({"id": [1]}))

    with (
        pytest.raises(ConcurrentModificationError, match="already exists"),
        atomic_write(target, "csv", pa.schema([("id", pa.int64())])) as writer,
    ):
        writer.write(pa.table({"id": [2]}))


def test_delete_file_is_idempotent_and_respects_the_version(lake_root: Location) -> None:
    target = _original(lake_root, "parquet", pa.table({"id": [1]}))
    info = stat_file(target)
    assert info is not None

    with pytest.raises(ConcurrentModificationError, match="not deleted"):
        delete_file(target, expected_etag='"0123-stale"')
    assert delete_file(target, expected_etag=info.etag) is True
    assert delete_file(target) is False
    assert stat_file(target) is None
    assert list_files(lake_root, "parquet") == []


def test_sha256_file_of_a_missing_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetIOError, match="does not exist"):
        sha256_file(Location.parse(tmp_path / "nope.parquet"))
