"""End to end: one `airflow standalone` (real scheduler, dag-processor, API server) for the module.

* ``aisec_catalog_check`` is unpaused and triggered through the REST API; its tasks must succeed and leave
  verifiable ``catalog.validate`` and ``dataset.inventory`` entries in the audit log, attributed to the run.
* ``aisec_dsr_erasure`` is triggered with ``aisec dsr submit --wait``, approved through the REST API
  (human in the loop), and must end with a certificate that verifies against the audit log, the subject
  gone from the lake, and no raw identifier of the subject in task logs, XCom or the audit log.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
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
            "AIRFLOW__AISEC__DSR_EXPORTS": str(home / "dsr-exports"),
            "AIRFLOW__AISEC__DSR_STATE": str(home / "dsr-state"),
            "AIRFLOW__AISEC__HOLDS": str(home / "holds.json"),
            # The request's free-text reason is masked with the same installed model as the tests use.
            "AIRFLOW__AISEC__SPACY_MODEL": os.environ["AIRFLOW__AISEC__SPACY_MODEL"],
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
def running_standalone(tmp_path: Path, lake: Path) -> Iterator[Standalone]:
    """A running ``airflow standalone`` in a fresh home, stopped (whole process group) on exit."""
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


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, sample_lake_dir: Path) -> Iterator[Standalone]:
    """One healthy ``airflow standalone`` for the module, on a writable copy of the sample lake."""
    tmp = tmp_path_factory.mktemp("standalone")
    lake = tmp / "lake"
    shutil.copytree(sample_lake_dir, lake)
    with running_standalone(tmp, lake) as running, explained(running):
        _poll("a healthy scheduler", lambda: _scheduler_healthy(running.client), 120, running.proc)
        yield running


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


def test_standalone_runs_catalog_check(airflow: Standalone) -> None:
    client, home, proc = airflow.client, airflow.home, airflow.proc
    with explained(airflow):
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
        # Unpausing also started the scheduled run of the latest interval: let it end before going on.
        _poll("no unfinished runs", lambda: _all_runs_finished(client, DAG_ID), 120, proc)

    with _audit_log(home) as log:
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


DSR_DAG = "aisec_dsr_erasure"


def _subject() -> Any:
    from airflow_aisec.samples import SampleLake

    lake = SampleLake(120, seed=3)
    held = {r["customer_id"] for r in lake.rows("chargebacks")}
    orders = {r["customer_id"] for r in lake.rows("orders")}
    return next(c for c in lake.customers if c.customer_id in held and c.customer_id in orders)


def test_erasure_submitted_with_the_cli_approved_through_the_api_and_certified(
    airflow: Standalone, tmp_path: Path
) -> None:
    from airflow_aisec.dsr.client import AirflowClient

    client, home, proc = airflow.client, airflow.home, airflow.proc
    subject = _subject()
    certificate = tmp_path / "certificate.json"
    api = AirflowClient(airflow.base_url)
    with explained(airflow):
        _poll(f"DAG {DSR_DAG}", lambda: client.get(f"/api/v2/dags/{DSR_DAG}").status_code == 200, 90, proc)
        client.patch(f"/api/v2/dags/{DSR_DAG}", json={"is_paused": False}).raise_for_status()
        aisec = str(Path(sys.executable).parent / "aisec")
        command = [
            aisec, "dsr", "submit", "--type", "erasure", "--identity", f"email={subject.email}",
            "--request-id", "e2e-erasure-1", "--reason", "ticket 4711", "--wait", "--timeout", "300",
            "--certificate", str(certificate), "--api-url", airflow.base_url,
        ]  # fmt: skip
        submit = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            run_id = _poll("the submitted run", lambda: _latest_run(client, DSR_DAG), 60, proc)
            _poll("the approval request", lambda: api.pending_approvals(DSR_DAG, run_id), 180, proc)
            # A person takes seconds to answer; answering within milliseconds of the task parking itself
            # races the executor's report of that try (Airflow then marks the task failed).
            time.sleep(5)
            api.approve(DSR_DAG, run_id)
            output, _ = submit.communicate(timeout=300)
        finally:
            if submit.poll() is None:
                submit.kill()
        assert submit.returncode == 0, output
        assert "e2e-erasure-1" in output and subject.email not in output and subject.customer_id not in output

    from airflow_aisec.dsr import verify_certificate
    from airflow_aisec.dsr.certificate import load

    document = load(certificate.read_text())
    assert document["certificate"]["status"] == "completed_with_holds"
    with _audit_log(home) as log:
        assert verify_certificate(document, log).ok
        entries = [e.data for e in log.entries()]
        assert log.verify().ok
    approvals = [e for e in entries if (e.get("details") or {}).get("stage") == "approval"]
    assert approvals and approvals[0]["details"]["decision"] == "approved"
    for path in (airflow.lake / "customers").glob("*.parquet"):
        assert subject.email.encode() not in path.read_bytes()
    # No raw identifier of the subject in task logs, XCom or the audit log.
    logs = "\n".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*.log"))
    assert "e2e-erasure-1" in logs
    xcoms = _xcoms(client, DSR_DAG, run_id)
    for text in (logs, json.dumps(entries), json.dumps(xcoms)):
        for raw in (subject.email, subject.customer_id, subject.phone):
            assert raw not in text


def _latest_run(client: httpx.Client, dag_id: str) -> str | None:
    runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns").raise_for_status().json()["dag_runs"]
    return runs[-1]["dag_run_id"] if runs else None


def _xcoms(client: httpx.Client, dag_id: str, run_id: str) -> list[Any]:
    """Every XCom value of the run, read through the REST API."""
    run_path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}"
    tis = client.get(f"{run_path}/taskInstances", params={"limit": 100}).raise_for_status().json()
    values = []
    for ti in tis["task_instances"]:
        task_path = f"{run_path}/taskInstances/{ti['task_id']}/xcomEntries"
        listed = client.get(task_path, params={"map_index": ti["map_index"]}).raise_for_status().json()
        for entry in listed["xcom_entries"]:
            one = client.get(
                f"{task_path}/{entry['key']}", params={"map_index": ti["map_index"], "deserialize": True}
            )
            values.append(one.raise_for_status().json().get("value"))
    assert values, "the run left no XCom to check"
    return values
