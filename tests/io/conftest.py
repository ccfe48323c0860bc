"""Fixtures of the dataset I/O tests: sample tables, local folders and a real S3 API (moto) on loopback."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_aisec.io.storage import Location, S3Options, s3_client

# Dummy credentials: moto accepts any; the secret is distinctive so tests can prove it never leaks.
ACCESS_KEY = "AKIAAISECTESTACCESS0"
SECRET_KEY = "aisec-test-secret-DO-NOT-PRINT-6f1c2b"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Make sure boto3 and pyarrow never find real credentials nor reach AWS or a metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws_keys() -> tuple[str, str]:
    """The dummy (access key, secret key) every test uses; the secret must never appear in any output."""
    return ACCESS_KEY, SECRET_KEY


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real HTTP S3 API (moto) on 127.0.0.1, shared by the run; each test uses its own bucket."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_options(moto_endpoint: str) -> S3Options:
    """Options that reach the moto server with the dummy keys."""
    return S3Options(
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, region="us-east-1", endpoint_url=moto_endpoint
    )


@pytest.fixture
def bucket(s3_options: S3Options) -> str:
    """A fresh, empty bucket (DNS-style name) for one test."""
    name = f"aisec-test-lake-{uuid.uuid4().hex[:12]}"
    s3_client(s3_options).create_bucket(Bucket=name)
    return name


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
