"""Running `airflow standalone` for the end-to-end tests: a fresh home, a free port, the whole process group
stopped afterwards, and Airflow's output and task logs printed when a test fails."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(home: Path, lake: Path, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of ``airflow standalone``: nothing inherited from the test run's Airflow setup;
    ``extra`` settings last."""
    dropped = ("AIRFLOW", "AISEC_", "OPENLINEAGE", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    bin_dir = str(Path(sys.executable).parent)
    base_url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW__AISEC__CATALOG": str(DAGS / "catalog.yaml"),
            "AIRFLOW__AISEC__CATALOG_VARS": f"lake={lake}",
            "AIRFLOW__AISEC__AUDIT_LOG": f"sqlite:///{home / 'aisec_audit.db'}",
            "AISEC_KEYRING": str(home / "keyring.json"),
            "AIRFLOW__AISEC__DSR_EXPORTS": str(home / "dsr-exports"),
            "AIRFLOW__AISEC__DSR_STATE": str(home / "dsr-state"),
            "AIRFLOW__AISEC__HOLDS": str(home / "holds.json"),
            # The request's free-text reason is masked with the same installed model as the tests use.
            "AIRFLOW__AISEC__SPACY_MODEL": os.environ["AIRFLOW__AISEC__SPACY_MODEL"],
        }
    )
    env.update(extra or {})
    return env


def _group_alive(pgid: int) -> bool:
    """Whether any process (zombies aside) of the process group is still running."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after 30 s."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                return
            time.sleep(0.2)
    proc.poll()


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"<{path}: {e}>"


def _poll(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[bytes]) -> Any:
    """Call ``check`` until it returns something truthy; fail when the deadline passes or Airflow exits."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"airflow standalone exited ({proc.returncode}) while waiting for {what}")
        try:
            last = check()
        except httpx.HTTPError as e:  # the API server is not up yet
            last = e
        else:
            if last:
                return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class Standalone(NamedTuple):
    client: httpx.Client
    home: Path
    proc: subprocess.Popen[bytes]
    lake: Path
    log_path: Path
    base_url: str

    def diagnostics(self) -> str:
        """The tail of Airflow's output and of every task log, for a failing test."""
        parts = [f"--- tail of {self.log_path} ---\n{_tail(self.log_path)}"]
        for task_log in sorted((self.home / "logs").rglob("*.log")):
            parts.append(f"--- {task_log.relative_to(self.home)} ---\n{_tail(task_log, 40)}")
        return "\n".join(parts)


@contextlib.contextmanager
def running_standalone(
    tmp_path: Path, lake: Path, env: Mapping[str, str] | None = None
) -> Iterator[Standalone]:
    """A running ``airflow standalone`` in a fresh home (``env``: settings over the defaults), stopped (whole
    process group) on exit."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    port = _free_port()
    log_path = tmp_path / "standalone.log"
    airflow = str(Path(sys.executable).parent / "airflow")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [airflow, "standalone"],
            env=_child_env(home, lake, port, env),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=10.0, trust_env=False) as client:
            yield Standalone(client, home, proc, lake, log_path, base_url)
    finally:
        _stop_group(proc)


@contextlib.contextmanager
def explained(airflow: Standalone) -> Iterator[None]:
    """Print Airflow's output and task logs when the block fails."""
    try:
        yield
    except BaseException:
        print(airflow.diagnostics())
        raise


def _scheduler_healthy(client: httpx.Client) -> bool:
    response = client.get("/api/v2/monitor/health")
    return response.status_code == 200 and response.json()["scheduler"]["status"] == "healthy"


def _run_state(client: httpx.Client, run_path: str) -> str | None:
    state = client.get(run_path).raise_for_status().json()["state"]
    return state if state in ("success", "failed") else None


def _all_runs_finished(client: httpx.Client, dag_id: str) -> bool:
    params = {"state": ["queued", "running"]}
    runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params=params).raise_for_status().json()
    return runs["total_entries"] == 0


def _audit_log(home: Path) -> Any:
    from airflow_aisec.audit import AuditLog

    return AuditLog.open(f"sqlite:///{home / 'aisec_audit.db'}", keyring=str(home / "keyring.json"))
