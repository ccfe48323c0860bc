"""Fixtures of the dataset I/O tests: sample tables, local folders and a real S3 API (moto) on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_aisec.io.storage import Location, S3Options


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def lake_root(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """An empty dataset root, once in a local folder and once under an S3 prefix."""
    if request.param == "local":
        return Location.parse(tmp_path / "lake")
    bucket_name: str = request.getfixturevalue("bucket")
    options: S3Options = request.getfixturevalue("s3_options")
    return Location.parse(f"s3://{bucket_name}/lake", options)


SAMPLE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("score", pa.float64()),
        ("active", pa.bool_()),
        ("birth_date", pa.date32()),
        ("seen_at", pa.timestamp("us")),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("precise_at", pa.timestamp("ns", tz="Europe/Paris")),
    ]
)


def make_table(rows: int, start: int = 0) -> pa.Table:
    """A table of ``rows`` rows covering the types a lake holds, with unicode, quotes, newlines and nulls."""
    names = ["Zoë Müller", "東京 太郎", 'O\'Brien, "Jr"', "line\nbreak", "", "NA", "null", "🙂 emoji", None]
    base = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": ids,
            "name": [names[i % len(names)] for i in ids],
            "score": [None if i % 7 == 3 else (i * 1.25 - 3.5 if i % 5 else -0.0) for i in ids],
            "active": [None if i % 11 == 4 else i % 2 == 0 for i in ids],
            "birth_date": [
                None if i % 13 == 5 else dt.date(1900, 1, 1) + dt.timedelta(days=i * 37) for i in ids
            ],
            "seen_at": [None if i % 17 == 6 else base + dt.timedelta(minutes=i) for i in ids],
            "created_at": [base.replace(tzinfo=dt.UTC) - dt.timedelta(days=i) for i in ids],
            "precise_at": pa.array(
                [None if i % 19 == 7 else 1_700_000_000_123_456_789 + i for i in ids],
                pa.timestamp("ns", tz="Europe/Paris"),
            ),
        },
        schema=SAMPLE_SCHEMA,
    )


@pytest.fixture
def sample_table() -> Callable[..., pa.Table]:
    """Factory of sample tables: ``sample_table(rows, start=0)``."""
    return make_table
