"""End to end: `airflow standalone` (real scheduler, dag-processor, API server) runs `aisec_catalog_check`.

The DAG is unpaused and triggered through the REST API; its tasks must succeed and leave verifiable
``catalog.validate`` and ``dataset.inventory`` entries in the audit log, attributed to the triggered run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_ID = "aisec_catalog_check"
TASKS = {"validate_catalog", "inventory_lake"}

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_env(home: Path, lake: Path, port: int) -> dict[str, str]:
    """The environment of ``airflow standalone``: nothing inherited from the test run's Airflow setup."""
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
        }
    )
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


@contextlib.contextmanager
def running_standalone(tmp_path: Path, lake: Path) -> Iterator[Standalone]:
    """A running ``airflow standalone`` in a fresh home; stopped (whole process group) on exit, and its
    output and task logs printed when the block fails."""
    home = tmp_path / "airflow-home"
    home.mkdir()
    port = _free_port()
    log_path = tmp_path / "standalone.log"
    airflow = str(Path(sys.executable).parent / "airflow")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [airflow, "standalone"],
            env=_child_env(home, lake, port),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    failed = True
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0, trust_env=False) as client:
            yield Standalone(client, home, proc)
        failed = False
    finally:
        _stop_group(proc)
        if failed:
            print(f"\n--- tail of {log_path} ---\n{_tail(log_path)}")
            for task_log in sorted((home / "logs").rglob("*.log")):
                print(f"\n--- {task_log.relative_to(home)} ---\n{_tail(task_log, 40)}")


def _scheduler_healthy(client: httpx.Client) -> bool:
    response = client.get("/api/v2/monitor/health")
    return response.status_code == 200 and response.json()["scheduler"]["status"] == "healthy"


def _run_state(client: httpx.Client, run_path: str) -> str | None:
    state = client.get(run_path).raise_for_status().json()["state"]
    return state if state in ("success", "failed") else None


def _all_runs_finished(client: httpx.Client) -> bool:
    params = {"state": ["queued", "running"]}
    runs = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params=params).raise_for_status().json()
    return runs["total_entries"] == 0


def test_standalone_runs_catalog_check(tmp_path: Path, sample_lake_dir: Path) -> None:
    with running_standalone(tmp_path, sample_lake_dir) as airflow:
        client, home, proc = airflow
        _poll("a healthy scheduler", lambda: _scheduler_healthy(client), 120, proc)
        _poll(f"DAG {DAG_ID}", lambda: client.get(f"/api/v2/dags/{DAG_ID}").status_code == 200, 90, proc)

        client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        triggered = client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
        assert triggered.status_code == 200, triggered.text
        run_id = triggered.json()["dag_run_id"]
        run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"

        state = _poll(f"run {run_id} to finish", lambda: _run_state(client, run_path), 180, proc)
        tis = client.get(f"{run_path}/taskInstances").raise_for_status().json()["task_instances"]
        assert {ti["task_id"]: ti["state"] for ti in tis} == dict.fromkeys(TASKS, "success")
        assert state == "success"
        # Unpausing also started the scheduled run of the latest interval: let it end before Airflow stops.
        _poll("no unfinished runs", lambda: _all_runs_finished(client), 120, proc)

    from airflow_aisec.audit import AuditLog

    with AuditLog.open(f"sqlite:///{home / 'aisec_audit.db'}", keyring=str(home / "keyring.json")) as log:
        entries = [e.data for e in log.entries()]
        report = log.verify()
    ours = {
        e["action"]
        for e in entries
        if e.get("actor", {}).get("kind") == "airflow"
        and e["actor"].get("dag_id") == DAG_ID
        and e["actor"].get("run_id") == run_id
    }
    assert {"catalog.validate", "dataset.inventory"} <= ours, entries
    assert report.ok, report
