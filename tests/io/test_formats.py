"""One file in, one file out: every format keeps every value, streams in bounded batches, and fails loudly."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io import FORMATS, Location, extension, open_writer, read_batches

TableFactory = Callable[..., pa.Table]


def _write(location: Location, fmt: str, table: pa.Table, batch_rows: int = 1000) -> None:
    fs = location.filesystem()
    if not location.is_s3:
        os.makedirs(location.parent.path, exist_ok=True)
    writer = open_writer(fs, location.path, fmt, table.schema)
    for batch in table.to_batches(max_chunksize=batch_rows):
        writer.write(batch)
    writer.close()
    assert writer.rows == table.num_rows


def _read(location: Location, fmt: str, schema: pa.Schema | None = None, **kwargs: object) -> pa.Table:
    batches = list(read_batches(location.filesystem(), location.path, fmt, schema=schema, **kwargs))  # type: ignore[arg-type]
    return pa.Table.from_batches(batches) if batches else pa.Table.from_batches([], schema=schema)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_text_numbers_nulls_dates_and_timestamps(
    lake_root: Location, fmt: str, sample_table: TableFactory
) -> None:
    table = sample_table(2500)
    target = lake_root.join(f"people{extension(fmt)}")
    _write(target, fmt, table)

    back = _read(target, fmt, table.schema)

    assert back.schema.equals(table.schema)
    for name in table.column_names:
        assert back[name].equals(table[name]), name


def test_csv_keeps_empty_text_apart_from_null_and_null_like_words(tmp_path: Path) -> None:
    table = pa.table({"note": ["", None, "NA", "null", "nan", "N/A", "NULL"]})
    target = Location.parse(tmp_path / "notes.csv")
    _write(target, "csv", table)

    assert _read(target, "csv", table.schema)["note"].to_pylist() == [
        "",
        None,
        "NA",
        "null",
        "nan",
        "N/A",
        "NULL",
    ]


def test_jsonl_writes_one_utf8_object_per_line_with_iso_8601_dates(tmp_path: Path) -> None:
    import datetime as dt

    table = pa.table(
        {
            "name": ["Zoë", None],
            "day": [dt.date(2024, 2, 29), None],
            "at": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None], pa.timestamp("us", "UTC")
            ),
            "local": [dt.datetime(2024, 1, 2, 3, 4, 5), None],
        }
    )
    target = Location.parse(tmp_path / "x.jsonl")
    _write(target, "jsonl", table)

    raw = Path(target.path).read_bytes()
    lines = raw.decode("utf-8").splitlines()
    assert "Zoë" in lines[0]  # not escaped as \u00eb
    assert json.loads(lines[0]) == {
        "name": "Zoë",
        "day": "2024-02-29",
        "at": "2024-01-02T03:04:05.000006Z",
        "local": "2024-01-02T03:04:05.000000",
    }
    assert json.loads(lines[1]) == {"name": None, "day": None, "at": None, "local": None}
    assert len(lines) == 2


def test_jsonl_refuses_nan_rather_than_writing_invalid_json_or_changing_the_value(tmp_path: Path) -> None:
    target = Location.parse(tmp_path / "x.jsonl")
    writer = open_writer(target.filesystem(), target.path, "jsonl", pa.schema([("v", pa.float64())]))
    with pytest.raises(DatasetIOError, match=r"x\.jsonl"):
        writer.write(pa.record_batch({"v": [1.0, float("nan")]}))
    writer.abort()


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_never_yields_more_rows_than_batch_size(
    tmp_path: Path, fmt: str, sample_table: TableFactory
) -> None:
    table = sample_table(1000)
    target = Location.parse(tmp_path / f"big{extension(fmt)}")
    _write(target, fmt, table, batch_rows=1000)

    sizes = [
        b.num_rows
        for b in read_batches(target.filesystem(), target.path, fmt, batch_size=64, schema=table.schema)
    ]

    assert max(sizes) <= 64
    assert sum(sizes) == 1000


@pytest.mark.parametrize("fmt", FORMATS)
def test_columns_selects_and_orders_the_requested_columns(
    tmp_path: Path, fmt: str, sample_table: TableFactory
) -> None:
    table = sample_table(50)
    target = Location.parse(tmp_path / f"t{extension(fmt)}")
    _write(target, fmt, table)

    back = _read(target, fmt, table.schema, columns=["created_at", "id"])

    assert back.column_names == ["created_at", "id"]
    assert back["id"].equals(table["id"])
    assert back["created_at"].equals(table["created_at"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_asking_for_a_missing_column_names_it(tmp_path: Path, fmt: str, sample_table: TableFactory) -> None:
    table = sample_table(5)
    target = Location.parse(tmp_path / f"t{extension(fmt)}")
    _write(target, fmt, table)

    with pytest.raises(DatasetIOError, match="no_such_column"):
        _read(target, fmt, None, columns=["id", "no_such_column"])


def test_corrupt_parquet_file_raises_dataset_io_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(os.urandom(4096))

    with pytest.raises(DatasetIOError, match=r"broken\.parquet"):
        list(read_batches(pafs.LocalFileSystem(), str(path), "parquet"))


def test_truncated_parquet_file_raises_dataset_io_error(tmp_path: Path, sample_table: TableFactory) -> None:
    target = Location.parse(tmp_path / "cut.parquet")
    _write(target, "parquet", sample_table(3000))
    data = Path(target.path).read_bytes()
    Path(target.path).write_bytes(data[: len(data) // 2])

    with pytest.raises(DatasetIOError, match=r"cut\.parquet"):
        _read(target, "parquet")


def test_unparseable_jsonl_raises_dataset_io_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": \x00\x01 not json\n')

    with pytest.raises(DatasetIOError, match=r"broken\.jsonl"):
        list(read_batches(pafs.LocalFileSystem(), str(path), "jsonl"))


def test_type_error_names_file_and_column_but_never_the_value(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id,email\n1,a@example.com\nalice@example.com,b@example.com\n", encoding="utf-8")
    schema = pa.schema([("id", pa.int64()), ("email", pa.string())])

    with pytest.raises(DatasetIOError) as caught:
        list(read_batches(pafs.LocalFileSystem(), str(path), "csv", schema=schema))

    assert "people.csv" in str(caught.value)
    assert "alice@example.com" not in str(caught.value)


def test_file_with_other_columns_than_the_schema_is_refused_not_silently_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": 1, "secret_extra": "x"}\n', encoding="utf-8")

    with pytest.raises(DatasetIOError, match=r"unexpected column.*secret_extra"):
        list(read_batches(pafs.LocalFileSystem(), str(path), "jsonl", schema=pa.schema([("id", pa.int64())])))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_empty_text_file_reads_as_no_rows(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"empty{extension(fmt)}"
    path.write_bytes(b"")

    assert list(read_batches(pafs.LocalFileSystem(), str(path), fmt)) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_written_with_no_rows_reads_back_with_no_rows(tmp_path: Path, fmt: str) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    target = Location.parse(tmp_path / f"none{extension(fmt)}")
    _write(target, fmt, schema.empty_table())

    assert _read(target, fmt, schema).num_rows == 0


def test_missing_file_raises_dataset_io_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetIOError, match="does not exist"):
        list(read_batches(pafs.LocalFileSystem(), str(tmp_path / "nope.parquet"), "parquet"))


def test_unknown_format_is_refused() -> None:
    with pytest.raises(DatasetIOError, match="unsupported dataset format 'xml'"):
        extension("xml")


def test_writer_casts_compatible_batches_and_refuses_other_columns(tmp_path: Path) -> None:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    target = Location.parse(tmp_path / "t.parquet")
    writer = open_writer(target.filesystem(), target.path, "parquet", schema)
    writer.write(pa.record_batch({"name": ["a"], "id": pa.array([1], pa.int32())}))
    with pytest.raises(DatasetIOError, match=r"missing column.*name"):
        writer.write(pa.record_batch({"id": [2]}))
    writer.close()

    assert _read(target, "parquet").to_pylist() == [{"id": 1, "name": "a"}]


def test_parquet_writer_groups_small_batches_into_large_row_groups(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64())])
    path = tmp_path / "grouped.parquet"
    writer = open_writer(pafs.LocalFileSystem(), str(path), "parquet", schema)
    for start in range(0, 10_000, 1_000):
        writer.write(pa.record_batch({"id": list(range(start, start + 1_000))}, schema=schema))
    writer.close()
    meta = pq.ParquetFile(path).metadata
    assert (meta.num_rows, meta.num_row_groups) == (10_000, 1)
    assert pq.read_table(path)["id"].to_pylist() == list(range(10_000))


# --- errors that say where: the file, the line and the reason, never the value ----------------------------


def _read_error(path: Path, fmt: str, schema: pa.Schema | None = None) -> str:
    with pytest.raises(DatasetIOError) as caught:
        list(read_batches(pafs.LocalFileSystem(), str(path), fmt, schema=schema))
    return str(caught.value)


PEOPLE = pa.schema([("id", pa.int64()), ("email", pa.string())])


@pytest.mark.parametrize("schema", [None, PEOPLE], ids=["inferred", "declared"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"id,email\n1,a@example.com\n2,bob@example.com,extra\n",
            "line 3: 3 field(s) where the header has 2",
        ),
        (b"id,email\n1,a@example.com\n2\n", "line 3: 1 field(s) where the header has 2"),
        (
            b'id,email\n1,"a@example.com\n2,bob@example.com\n3,"c",x\n',
            "line 2: 3 field(s) where the header has 2 "
            "(this row runs over lines 2-4: check for an unbalanced quote)",
        ),
        (
            b'id,email\n1,a@example.com\n2,"bob@example.com\n3,carol@example.com\n',
            "line 3: a quoted value opens here and is never closed (the file may be cut short)",
        ),
        (b"id,email\n1,a@example.com\n2,bob\xff\xfe@example.com\n", "line 3: bytes that are not UTF-8 text"),
    ],
    ids=["extra-field", "missing-field", "quote-swallows-rows", "quote-never-closed", "not-utf8"],
)
def test_malformed_csv_names_the_file_the_line_and_the_reason_never_the_value(
    tmp_path: Path, content: bytes, expected: str, schema: pa.Schema | None
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(content)

    message = _read_error(path, "csv", schema)

    assert message.startswith(f"{path}: {expected}"), message
    assert "bob" not in message and "example.com" not in message


def test_csv_value_that_does_not_parse_as_the_declared_type_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id,email\n1,a@example.com\nalice@example.com,b@example.com\n", encoding="utf-8")

    message = _read_error(path, "csv", PEOPLE)

    assert message == f"{path}: line 3: column 'id': a value that does not parse as int64"


def test_csv_error_line_counts_physical_lines_across_quoted_line_breaks(
    tmp_path: Path, sample_table: TableFactory
) -> None:
    # The sample holds values with line breaks, quotes, empty text and nulls: rows and lines differ.
    location = Location.parse(tmp_path / "sample.csv")
    _write(location, "csv", sample_table(5_000))
    lines = Path(location.path).read_bytes().count(b"\n")
    assert lines > 5_001
    with open(location.path, "a", encoding="utf-8") as handle:
        handle.write('12x,"Zoë",1.5,true,2000-01-01,2000-01-01 00:00:00,2000-01-01 00:00:00Z,\n')

    message = _read_error(Path(location.path), "csv", sample_table(1).schema)

    assert message == f"{location.path}: line {lines + 1}: column 'id': a value that does not parse as int64"


def test_csv_quote_inside_an_unquoted_value_is_read_as_text_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "heights.csv"
    path.write_text('id,height\n1,5\'11"\n2,"6\'0"""\n', encoding="utf-8")

    table = _read(Location.parse(path), "csv")

    assert table.column("height").to_pylist() == ["5'11\"", "6'0\""]


@pytest.mark.parametrize("schema", [None, PEOPLE], ids=["inferred", "declared"])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b'{"id": 1, "email": "a@example.com"}\n{"id": 2, "email": "bob@example.com"\n',
            "line 2: not valid JSON (Expecting ',' delimiter at character 37)",
        ),
        (
            b'{"id": 1, "email": "a@example.com"}\n\n["bob@example.com"]\n',
            "line 3: an array where a JSON object",
        ),
        (
            b'{"id": 1, "email": "a@example.com"}\n{"id": 2, "email": "bob\xff@example.com"}\n',
            "line 2: bytes",
        ),
    ],
    ids=["invalid-json", "not-an-object", "not-utf8"],
)
def test_malformed_jsonl_names_the_file_the_line_and_the_reason_never_the_value(
    tmp_path: Path, content: bytes, expected: str, schema: pa.Schema | None
) -> None:
    path = tmp_path / "people.jsonl"
    path.write_bytes(content)

    message = _read_error(path, "jsonl", schema)

    assert message.startswith(f"{path}: {expected}"), message
    assert "bob" not in message and "example.com" not in message


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (None, "line 3: field 'id' is a string, but a number on line 1"),
        (PEOPLE, "line 3: field 'id' is a string, not a number as its type int64 requires"),
    ],
    ids=["inferred", "declared"],
)
def test_jsonl_field_of_another_type_names_the_line_and_the_field(
    tmp_path: Path, schema: pa.Schema | None, expected: str
) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text(
        '{"id": 1, "email": "a@example.com"}\n{"id": null, "email": null}\n'
        '{"id": "bob@example.com", "email": "b@example.com"}\n',
        encoding="utf-8",
    )

    message = _read_error(path, "jsonl", schema)

    assert message == f"{path}: {expected}"


def test_jsonl_lists_of_nulls_read_back_as_valid_arrays(tmp_path: Path) -> None:
    # A masked list of strings (`tags[]: redact`) is written as [null, null]; Arrow's JSON reader builds
    # such lists with a child array too short for their offsets, which fails validation unless repaired.
    rows = [
        {"id": 1, "tags": [None, None], "s": {"l": [None]}, "ls": [{"x": [None, None]}]},
        {"id": 2, "tags": None, "s": None, "ls": []},
        {"id": 3, "tags": [], "s": {"l": []}, "ls": None},
    ]
    path = tmp_path / "masked.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    batches = list(read_batches(pafs.LocalFileSystem(), str(path), "jsonl"))
    for batch in batches:
        batch.validate(full=True)
    assert pa.Table.from_batches(batches).to_pylist() == rows
