"""A dataset is a folder or prefix of files: listing, streaming reads, new files, and where it lives."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io import (
    Location,
    S3Options,
    list_files,
    read_dataset,
    read_file,
    stat_file,
    write_dataset_file,
)
from airflow_aisec.io.storage import s3_client

TableFactory = Callable[..., pa.Table]


def _put(root: Location, relative: str, data: bytes) -> None:
    target = root.join(relative)
    if target.is_s3:
        s3_client(target.s3).put_object(Bucket=target.bucket, Key=target.key, Body=data)  # type: ignore[arg-type]
    else:
        Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        Path(target.path).write_bytes(data)


def test_list_files_is_recursive_sorted_and_skips_hidden_temporary_and_other_format_files(
    lake_root: Location,
) -> None:
    for name in [
        "b.parquet",
        "a.parquet",
        "year=2024/c.parquet",
        "notes.csv",
        ".a.parquet.aisec-tmp-0123",
        "_SUCCESS",
        "_temporary/0/d.parquet",
        ".hidden/e.parquet",
        "year=2025/_f.parquet",
    ]:
        _put(lake_root, name, b"x")

    found = [info.location.relative_to(lake_root) for info in list_files(lake_root, "parquet")]

    assert found == ["a.parquet", "b.parquet", "year=2024/c.parquet"]


def test_list_files_gives_size_version_and_time(lake_root: Location) -> None:
    _put(lake_root, "a.csv", b"id\n1\n")

    [info] = list_files(lake_root, "csv")

    assert info.size == 5
    assert info.etag
    assert info.modified.tzinfo is not None
    assert info.uri == lake_root.join("a.csv").uri
    assert stat_file(info.location) == info


def test_list_files_of_a_missing_folder_is_empty(lake_root: Location) -> None:
    assert list_files(lake_root.join("never-written"), "parquet") == []


def test_list_files_of_a_single_file_location_returns_that_file(lake_root: Location) -> None:
    _put(lake_root, "only.jsonl", b'{"a":1}\n')
    _put(lake_root, "other.jsonl", b'{"a":2}\n')

    [info] = list_files(lake_root.join("only.jsonl"), "jsonl")

    assert info.location.name == "only.jsonl"


def test_folder_named_like_a_file_is_listed_as_a_folder(tmp_path: Path) -> None:
    # Spark writes datasets as folders named "events.parquet".
    root = Location.parse(tmp_path / "events.parquet")
    _put(root, "part-0.parquet", b"x")

    assert [i.location.name for i in list_files(root, "parquet")] == ["part-0.parquet"]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_read_dataset_streams_every_file_in_bounded_batches(
    lake_root: Location, fmt: str, sample_table: TableFactory
) -> None:
    tables = [sample_table(300, start=i * 300) for i in range(3)]
    for table in tables:
        write_dataset_file(lake_root, fmt, table)

    batches = list(read_dataset(lake_root, fmt, batch_size=50, schema=tables[0].schema))

    assert max(b.num_rows for b in batches) <= 50
    assert sorted(pa.Table.from_batches(batches)["id"].to_pylist()) == list(range(900))


def test_read_dataset_yields_first_batches_before_opening_later_files(tmp_path: Path) -> None:
    root = Location.parse(tmp_path / "ds")
    schema = pa.schema([("id", pa.int64())])
    write_dataset_file(root, "parquet", pa.table({"id": list(range(100))}), name="a.parquet")
    write_dataset_file(root, "parquet", pa.table({"id": [1]}), name="b.parquet")
    stream = read_dataset(root, "parquet", batch_size=10, schema=schema)

    first = next(stream)
    # b.parquet is broken only now; a reader that had loaded everything up front would not notice.
    Path(root.join("b.parquet").path).write_bytes(b"not parquet")

    assert first.num_rows == 10
    assert sum(b.num_rows for b in [next(stream) for _ in range(9)]) == 90
    with pytest.raises(DatasetIOError, match=r"b\.parquet"):
        next(stream)


def test_read_file_accepts_a_file_info(tmp_path: Path) -> None:
    root = Location.parse(tmp_path)
    write_dataset_file(root, "csv", pa.table({"id": [1, 2]}), name="x.csv")
    [info] = list_files(root, "csv")

    assert pa.Table.from_batches(list(read_file(info, "csv"))).to_pylist() == [{"id": 1}, {"id": 2}]


def test_write_dataset_file_creates_a_new_part_and_never_clobbers_one(tmp_path: Path) -> None:
    root = Location.parse(tmp_path / "ds")
    table = pa.table({"id": [1, 2, 3]})

    first = write_dataset_file(root, "parquet", table)
    write_dataset_file(root, "parquet", table, name="fixed.parquet")
    with pytest.raises(DatasetIOError, match="already exists"):
        write_dataset_file(root, "parquet", table, name="fixed.parquet")

    assert first.rows == 3
    assert Path(first.uri.removeprefix("file://")).name.startswith("part-")
    assert len(list_files(root, "parquet")) == 2


def test_write_dataset_file_refuses_names_the_dataset_would_not_see(tmp_path: Path) -> None:
    root = Location.parse(tmp_path)
    for name in ("_hidden.parquet", ".x.parquet", "data.csv"):
        with pytest.raises(DatasetIOError, match="would not be part of the dataset"):
            write_dataset_file(root, "parquet", pa.table({"id": [1]}), name=name)


def test_location_parse_accepts_paths_file_uris_and_s3_prefixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = S3Options(region="eu-west-1")

    relative = Location.parse("lake/customers")
    from_uri = Location.parse((tmp_path / "my lake").as_uri())
    s3 = Location.parse("s3://aisec-lake/raw/customers/", options)

    assert relative.path == str(tmp_path / "lake" / "customers")
    assert from_uri.path == str(tmp_path / "my lake")
    assert Location.parse(from_uri.uri) == from_uri
    assert (s3.bucket, s3.key, s3.uri) == ("aisec-lake", "raw/customers", "s3://aisec-lake/raw/customers")
    assert s3.join("year=2024", "a.parquet").key == "raw/customers/year=2024/a.parquet"
    assert s3.s3 is options


@pytest.mark.parametrize("bad", ["", "s3://", "s3:///key", "gs://bucket/x", "file://host/share/x"])
def test_location_parse_refuses_what_it_cannot_reach(bad: str) -> None:
    with pytest.raises(DatasetIOError):
        Location.parse(bad, S3Options())


def test_location_join_refuses_to_escape_the_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetIOError, match="escapes"):
        Location.parse(tmp_path).join("../etc/passwd")


def test_s3_options_repr_never_shows_keys(aws_keys: tuple[str, str]) -> None:
    access_key, secret_key = aws_keys
    options = S3Options(access_key=access_key, secret_key=secret_key, session_token="tok-SECRET-123")
    location = Location.parse("s3://b/k", options)

    for text in (repr(options), str(options), repr(location), str(location)):
        assert secret_key not in text
        assert "tok-SECRET-123" not in text
        assert access_key not in text


def test_s3_options_from_environment_uses_the_boto3_chain_and_endpoint_override(
    monkeypatch: pytest.MonkeyPatch, aws_keys: tuple[str, str]
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-tok")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")

    options = S3Options.from_environment()

    assert (options.access_key, options.secret_key, options.session_token) == (*aws_keys, "session-tok")
    assert options.region == "eu-central-1"
    assert options.endpoint_url == "http://127.0.0.1:9000"


@pytest.mark.integration
def test_s3_errors_name_the_location_but_never_a_secret(
    s3_options: S3Options, aws_keys: tuple[str, str]
) -> None:
    root = Location.parse("s3://aisec-no-such-bucket/data", s3_options)

    with pytest.raises(DatasetIOError) as caught:
        list_files(root, "parquet")

    text = "".join(traceback.format_exception(caught.value))
    assert "s3://aisec-no-such-bucket/data" in str(caught.value)
    assert aws_keys[1] not in text


@pytest.mark.integration
def test_s3_dataset_is_read_with_the_same_options_as_it_was_written(
    bucket: str, s3_options: S3Options, sample_table: TableFactory
) -> None:
    root = Location.parse(f"s3://{bucket}/customers", s3_options)
    write_dataset_file(root, "parquet", sample_table(10), name="a.parquet")
    write_dataset_file(root.join("year=2025"), "parquet", sample_table(5, start=10), name="b.parquet")
    # A sibling prefix that merely starts with the same text is another dataset.
    write_dataset_file(
        Location.parse(f"s3://{bucket}/customers-archive", s3_options), "parquet", sample_table(1)
    )

    ids = pa.Table.from_batches(list(read_dataset(root, "parquet")))["id"].to_pylist()

    assert ids == list(range(15))
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
