"""End to end: one `airflow standalone` (real scheduler, dag-processor, API server) for the module.

* ``aisec_catalog_check`` is unpaused and triggered through the REST API; its tasks must succeed and leave
  verifiable ``catalog.validate`` and ``dataset.inventory`` entries in the audit log, attributed to the run.
* ``aisec_dsr_erasure`` is triggered with ``aisec dsr submit --wait``, approved through the REST API
  (human in the loop), and must end with a certificate that verifies against the audit log, the subject
  gone from the lake, and no raw identifier of the subject in task logs, XCom or the audit log.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from e2e_standalone import (
    Standalone,
    _all_runs_finished,
    _audit_log,
    _poll,
    _run_state,
    _scheduler_healthy,
    explained,
    running_standalone,
)

DAG_ID = "aisec_catalog_check"
TASKS = {"validate_catalog", "inventory_lake"}

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, sample_lake_dir: Path) -> Iterator[Standalone]:
    """One healthy ``airflow standalone`` for the module, on a writable copy of the sample lake."""
    tmp = tmp_path_factory.mktemp("standalone")
    lake = tmp / "lake"
    shutil.copytree(sample_lake_dir, lake)
    with running_standalone(tmp, lake) as running, explained(running):
        _poll("a healthy scheduler", lambda: _scheduler_healthy(running.client), 120, running.proc)
        yield running


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
            # A person takes seconds to answer; answering within seconds of the task parking itself races
            # the executor's report of that try (Airflow then marks the task failed): 5 s was once not
            # enough on a loaded 2-core machine.
            time.sleep(15)
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
    # All admins: every caller is the simple auth manager's anonymous admin, held by the office's ADMIN role.
    decided_by = approvals[0]["details"]["decided_by"]
    assert decided_by == {"id": "Anonymous", "name": "Anonymous", "in_office": True}
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
