"""The data-subject-request DAGs run by Airflow with dag.test() on a copy of the sample lake.

Approval is turned off (``[aisec] dsr_approval = False``) for dag.test(); the human-in-the-loop approval is
exercised end to end with a real scheduler in tests/e2e.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from builders import DAGS, SAMPLE, lake_copy
from dag_runs import dag_from
from dag_runs import xcoms as _xcoms

from airflow_aisec.audit import AuditLog
from airflow_aisec.dsr import verify_certificate
from airflow_aisec.dsr.contract import INDEX_DAG_ID, dag_id_for

REQUEST = {"identity_type": "email", "identity_value": "x@example.com", "request_id": "r1", "reason": "r"}


def _dag(request_type: str) -> Any:
    return dag_from(DAGS / f"{dag_id_for(request_type)}.py")


def _subject() -> Any:
    held = {r["customer_id"] for r in SAMPLE.rows("chargebacks")}
    orders = {r["customer_id"] for r in SAMPLE.rows("orders")}
    return next(c for c in SAMPLE.customers if c.customer_id in held and c.customer_id in orders)


@pytest.fixture
def lake(sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = lake_copy(sample_lake_dir, tmp_path)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={copy}")
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_APPROVAL", "False")
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("AIRFLOW__AISEC__HOLDS", str(tmp_path / "holds.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_INDEX", str(tmp_path / "index"))
    return copy


def test_dsr_dags_have_the_documented_shape(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    erasure = _dag("erasure")
    assert set(erasure.task_ids) == {"register", "process_dataset", "complete"}
    assert erasure.params.get_param("identity_type").schema["enum"] == ["customer_id", "email"]
    assert "changes" in _dag("rectification").params and "export_key" in _dag("access").params
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_APPROVAL", "True")
    assert {"approve"} <= set(_dag("erasure").task_ids)


@pytest.mark.parametrize("request_type", ["access", "erasure", "rectification"])
def test_dsr_dags_are_manual_only_and_start_unpaused(lake: Path, request_type: str) -> None:
    dag = _dag(request_type)
    assert dag.timetable.can_be_scheduled is False  # schedule=None: runs only when a request is triggered
    assert dag.is_paused_upon_creation is False


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({**REQUEST, "identity_type": "ssn"}, "identity_type"),
        ({**REQUEST, "identity_value": ""}, "identity_value"),
        ({**REQUEST, "request_id": "bad id!"}, "request_id"),
        ({k: v for k, v in REQUEST.items() if k != "reason"}, "reason"),
    ],
)
def test_bad_request_is_rejected_at_trigger_time(lake: Path, conf: dict[str, str], field: str) -> None:
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    params = copy.deepcopy(_dag("erasure").params)
    with pytest.raises(ParamValidationError, match=field):
        params.update(conf)
        params.validate()


@pytest.mark.integration
def test_erasure_dag_erases_verifies_and_certifies(
    airflow_db: Path, lake: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    subject = _subject()
    conf = {
        "identity_type": "email",
        "identity_value": subject.email,
        "request_id": "dag-erasure-1",
        "reason": "ticket 4711",
    }
    run = _dag("erasure").test(run_conf=conf)
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    assert len([k for k in states if k[0] == "process_dataset"]) == 6  # one mapped task per dataset

    xcoms = _xcoms(run)
    result = next(v for t, k, v in xcoms if t == "complete" and k == "return_value")
    document = result["certificate"]
    assert result["status"] == "completed_with_holds"
    assert Path(result["certificate_uri"].removeprefix("file://")).is_file()
    with AuditLog.open() as log:
        assert verify_certificate(document, log).ok
        entries = [
            e.data
            for e in log.entries()
            if (e.data.get("details") or {}).get("request_id") == conf["request_id"]
        ]
    assert any(e["outcome"] == "success" and e.get("inputs") for e in entries)
    held = {d["dataset"]: d for d in document["certificate"]["datasets"]}["chargebacks"]
    assert held["status"] == "held" and held["legal_hold"]["reason"] == "litigation 2026-17"

    raw = (subject.email, subject.customer_id, subject.phone)
    captured = capfd.readouterr()
    task_logs = captured.out + captured.err + caplog.text
    assert "request dag-erasure-1: completed_with_holds" in task_logs  # the task logs were captured
    for text in (json.dumps([v for _, _, v in xcoms], default=str), json.dumps(entries), task_logs):
        assert not any(value in text for value in raw)
    for path in (lake / "customers").glob("*.parquet"):
        assert subject.email.encode() not in path.read_bytes()


@pytest.mark.integration
def test_access_dag_writes_an_encrypted_package(airflow_db: Path, lake: Path, tmp_path: Path) -> None:
    from airflow_aisec.crypto.keyring import LocalKeyring

    LocalKeyring(Path(__import__("os").environ["AISEC_KEYRING"])).ensure("pii-columns", "symmetric")
    subject = _subject()
    conf = {
        "identity_type": "customer_id",
        "identity_value": subject.customer_id,
        "request_id": "dag-access-1",
        "reason": "subject access request",
        "export_key": "pii-columns",
    }
    run = _dag("access").test(run_conf=conf)
    assert {str(ti.state) for ti in run.get_task_instances()} == {"success"}
    package = tmp_path / "exports" / "dag-access-1"
    names = sorted(p.name for p in package.iterdir())
    assert "manifest.json.aisec" in names and "orders.json.aisec" in names and "orders.csv.aisec" in names
    assert all(subject.email.encode() not in (package / n).read_bytes() for n in names)


@pytest.mark.integration
def test_index_dag_builds_the_subject_index_used_by_the_erasure_dag(
    airflow_db: Path, lake: Path, tmp_path: Path
) -> None:
    run = dag_from(DAGS / f"{INDEX_DAG_ID}.py").test()
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {
        "refresh_subject_index": "success"
    }
    done = {d["dataset"]: d for d in next(v for t, k, v in _xcoms(run) if k == "return_value")}
    assert done["orders"]["indexed"] == done["orders"]["files"] > 0
    assert (tmp_path / "index" / "orders.idx").is_file()

    subject = _subject()
    conf = {
        "identity_type": "customer_id",
        "identity_value": subject.customer_id,
        "request_id": "dag-erasure-2",
        "reason": "ticket 4712",
    }
    erased = _dag("erasure").test(run_conf=conf)
    result = next(v for t, k, v in _xcoms(erased) if t == "complete" and k == "return_value")
    assert result["status"] == "completed_with_holds"
    with AuditLog.open() as log:
        assert verify_certificate(result["certificate"], log).ok


def _rows(root: Path, dataset: str, fmt: str) -> list[dict[str, Any]]:
    import pyarrow as pa

    from airflow_aisec.io import Location, read_dataset

    return pa.Table.from_batches(list(read_dataset(Location.parse(root / dataset), fmt))).to_pylist()


@pytest.mark.integration
def test_erasure_dag_splits_a_dataset_into_parts_and_certifies_each_dataset_once(
    airflow_db: Path, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _subject()
    # One file a part: every dataset holding the subject in several files runs in several mapped tasks. The
    # DAG file is in a bundle of this test's own, as dag.test() runs only DAGs it finds in a bundle.
    dag_file = tmp_path / "dags" / "aisec_test_dsr_erasure_parts.py"
    dag_file.parent.mkdir()
    dag_file.write_text(
        "from airflow_aisec.operators.dsr_dag import build_dsr_dag\n\n"
        'dag = build_dsr_dag("erasure", max_files_per_task=1, dag_id="aisec_test_dsr_erasure_parts")\n'
    )
    bundles = json.loads(os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    own = {**bundles[0], "name": "dsr-parts", "kwargs": {"path": str(dag_file.parent)}}
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([*bundles, own]))
    dag = dag_from(dag_file)
    conf = {"identity_type": "email", "identity_value": subject.email, "request_id": "dag-parts-1",
            "reason": "ticket 4713"}  # fmt: skip
    run = dag.test(run_conf=conf)

    tis = [ti for ti in run.get_task_instances()]
    assert {str(ti.state) for ti in tis} == {"success"}, {(t.task_id, t.map_index): t.state for t in tis}
    xcoms = _xcoms(run)
    parts = next(v for t, k, v in xcoms if t == "register" and k == "return_value")
    mapped = sorted((ti for ti in tis if ti.task_id == "process_dataset"), key=lambda ti: ti.map_index)
    assert [ti.map_index for ti in mapped] == list(range(len(parts)))
    split = {p["dataset"]: p["parts"] for p in parts if p["parts"] > 1}
    assert split.get("orders", 0) >= 2, parts
    assert len(parts) == 6 - len(split) + sum(split.values())  # one task per part, six datasets
    labels = [ti.rendered_map_index for ti in mapped]
    assert f"orders 1/{split['orders']}" in labels and "customers" in labels

    result = next(v for t, k, v in xcoms if t == "complete" and k == "return_value")
    document = result["certificate"]
    certificate = document["certificate"]
    assert result["status"] == "completed_with_holds"
    datasets = [d["dataset"] for d in certificate["datasets"]]
    assert sorted(datasets) == sorted(set(datasets)) and len(datasets) == 6  # each dataset once
    orders = {d["dataset"]: d for d in certificate["datasets"]}["orders"]
    assert orders["parts"] == split["orders"] and orders["status"] == "changed"
    assert len(orders["files"]) >= split["orders"] and orders["verification"]["verified"]
    assert certificate["summary"]["verified"]
    with AuditLog.open() as log:
        assert verify_certificate(document, log).ok
        assert log.verify().ok

    # Gone from every file (but the chargebacks, held).
    assert subject.customer_id not in {r["customer_id"] for r in _rows(lake, "orders", "parquet")}
    assert subject.email not in {r["email"] for r in _rows(lake, "customers", "parquet")}
    tickets = json.dumps(_rows(lake, "support_tickets", "jsonl"), default=str)
    assert subject.email not in tickets and subject.customer_id not in tickets
