"""The data-subject-request operators executed directly, task after task of one run, as the DAG runs them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from builders import SAMPLE
from task_runs import AuditReader, TaskRun

from airflow_aisec.audit import AuditLog
from airflow_aisec.dsr import verify_certificate
from airflow_aisec.dsr.contract import (
    APPROVAL_TASK,
    COMPLETE_TASK,
    DATASET_TASK,
    OUTCOME_KEY,
    REGISTER_TASK,
    REGISTRATION_KEY,
)
from airflow_aisec.exceptions import CatalogError, DsrError
from airflow_aisec.operators.dsr import (
    DsrApprovalOperator,
    DsrCompleteOperator,
    DsrDatasetOperator,
    DsrIndexOperator,
    DsrRegisterOperator,
)

# A customer with orders and no chargeback (no legal hold keeps any of their data).
SUBJECT = next(
    c
    for c in SAMPLE.customers
    if c.customer_id in {r["customer_id"] for r in SAMPLE.rows("orders")}
    and c.customer_id not in {r["customer_id"] for r in SAMPLE.rows("chargebacks")}
)


def _request(run: TaskRun, request_id: str = "op-erasure-1", **extra: Any) -> None:
    # No reason: masking a reason's free text would load the NER model, which these tests do not need.
    run.params = {"identity_type": "customer_id", "identity_value": SUBJECT.customer_id,
                  "request_id": request_id, "reason": "", **extra}  # fmt: skip


def _register(run: TaskRun, request_type: str = "erasure") -> list[str]:
    """The datasets the register task maps over (one part each in this small lake)."""
    parts = DsrRegisterOperator(task_id=REGISTER_TASK, request_type=request_type).execute(
        run.context(REGISTER_TASK)
    )
    assert all(p["parts"] == 1 for p in parts)
    return [p["dataset"] for p in parts]


def _process(run: TaskRun, datasets: list[str], request_type: str = "erasure") -> list[dict[str, Any]]:
    return [
        DsrDatasetOperator(task_id=DATASET_TASK, request_type=request_type, dataset=name).execute(
            run.context(DATASET_TASK, map_index=i)
        )
        for i, name in enumerate(datasets)
    ]


def test_register_returns_the_datasets_and_hands_on_the_identifiers_sealed(
    run: TaskRun, audit: AuditReader
) -> None:
    _request(run)

    datasets = _register(run)

    registration = run.pull(task_ids=REGISTER_TASK, key=REGISTRATION_KEY)
    assert datasets == list(registration["matches"]) and "orders" in datasets
    assert registration["state"].startswith("dsr-state:v2:")
    assert registration["request"]["request_id"] == "op-erasure-1"
    assert registration["summary"].startswith("**erasure** request `op-erasure-1`")
    assert SUBJECT.customer_id not in json.dumps(registration)
    stages = [(e.data.get("details") or {}).get("stage") for e in audit.entries("dsr.erasure")]
    assert stages == ["binding", "request", "resolve"]


def test_an_erasure_runs_task_by_task_to_a_verified_certificate(
    run: TaskRun, settings: dict[str, str], audit: AuditReader
) -> None:
    _request(run)
    datasets = _register(run)

    outcomes = _process(run, datasets)
    result = DsrCompleteOperator(task_id=COMPLETE_TASK, request_type="erasure").execute(
        run.context(COMPLETE_TASK)
    )

    assert [o["dataset"] for o in outcomes] == datasets
    assert run.pull(task_ids=[DATASET_TASK], key=OUTCOME_KEY) == outcomes
    assert result["status"] == "completed"
    certificate = Path(settings["DSR_EXPORTS"]) / "certificates" / "op-erasure-1.json"
    assert result["certificate_uri"] == certificate.as_uri() and certificate.is_file()
    with AuditLog.open(settings["AUDIT_LOG"], create=False) as log:
        assert verify_certificate(result["certificate"], log).ok
    assert SUBJECT.customer_id not in json.dumps([e.data for e in audit.entries()])


def test_a_dataset_task_that_never_ran_fails_the_request_in_its_certificate(run: TaskRun) -> None:
    _request(run)
    datasets = _register(run)
    _process(run, [d for d in datasets if d != "orders"])

    with pytest.raises(DsrError, match="request op-erasure-1 failed; see the certificate"):
        DsrCompleteOperator(task_id=COMPLETE_TASK, request_type="erasure").execute(run.context(COMPLETE_TASK))

    result = run.pull(task_ids=COMPLETE_TASK)
    orders = {d["dataset"]: d for d in result["certificate"]["certificate"]["datasets"]}["orders"]
    assert (
        result["status"] == "failed" and orders["status"] == "failed" and orders["error"] == "not processed"
    )


def test_later_tasks_need_the_registration(run: TaskRun) -> None:
    _request(run)
    with pytest.raises(DsrError, match="the request was not registered"):
        DsrDatasetOperator(task_id=DATASET_TASK, request_type="erasure", dataset="orders").execute(
            run.context(DATASET_TASK)
        )


def test_a_dataset_outside_the_resolution_is_refused(run: TaskRun) -> None:
    _request(run)
    _register(run)
    with pytest.raises(DsrError, match="dataset 'invoices' was not part of the request's resolution"):
        _process(run, ["invoices"])


def test_the_registration_opens_only_for_its_own_request(run: TaskRun) -> None:
    _request(run)
    _register(run)
    _request(run, request_id="op-erasure-2")  # the same XCom read by a run of another request

    with pytest.raises(DsrError, match="op-erasure-2"):
        _process(run, ["orders"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"identity_type": "ssn"}, "identity type 'ssn' is not one of the catalog's: customer_id, email"),
        ({"identity_value": ""}, "identity value: must be 1 to 1024 printable characters"),
        ({"request_id": "bad id!"}, "request_id: 1 to 64 letters"),
    ],
)
def test_register_refuses_a_bad_request_naming_the_field(
    run: TaskRun, audit: AuditReader, params: dict[str, str], message: str
) -> None:
    _request(run, **params)
    with pytest.raises(DsrError, match=message):
        _register(run)
    assert audit.entries() == []


def test_register_fails_on_a_missing_catalog(run: TaskRun, tmp_path: Path) -> None:
    _request(run)
    operator = DsrRegisterOperator(
        task_id=REGISTER_TASK, request_type="erasure", catalog=str(tmp_path / "none.yaml")
    )
    with pytest.raises(CatalogError, match="cannot read catalog"):
        operator.execute(run.context(REGISTER_TASK))


def _decide(run: TaskRun, option: str, by: Any) -> Any:
    operator = DsrApprovalOperator(task_id=APPROVAL_TASK, request_type="erasure", subject="Approve?")
    event = {"chosen_options": [option], "params_input": {}, "responded_by_user": by,
             "responded_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC)}  # fmt: skip
    return operator.execute_complete(run.context(APPROVAL_TASK), event)


def test_an_approval_is_recorded_once_per_run_with_who_approved(run: TaskRun, audit: AuditReader) -> None:
    _request(run)
    _register(run)
    registration = run.pull(task_ids=REGISTER_TASK, key=REGISTRATION_KEY)

    _decide(run, "Approve", {"id": "dpo", "name": "Ada"})  # the example catalog's privacy office
    _decide(run, "Approve", {"id": "dpo", "name": "Ada"})

    (entry,) = [e.data for e in audit.entries("dsr.erasure") if e.data["details"].get("stage") == "approval"]
    assert entry["outcome"] == "success" and entry["subject"] == registration["request"]["subject"]
    assert "dpo" in entry["details"].pop("privacy_office")
    assert entry["details"] == {
        "request_id": "op-erasure-1", "stage": "approval", "decision": "approved", "responded_by": "Ada",
        "decided_by": {"id": "dpo", "name": "Ada", "in_office": True},
    }  # fmt: skip
    assert audit.keys("dsr.erasure:op-erasure-1:approval:") == [
        f"dsr.erasure:op-erasure-1:approval:{run.run_id}"
    ]
    _process(run, ["orders"])  # the identifiers still open


def test_a_rejection_is_recorded_and_the_sealed_identifiers_stop_opening(
    run: TaskRun, audit: AuditReader
) -> None:
    _request(run)
    _register(run)

    _decide(run, "Reject", {"id": "dpo", "name": "someone"})

    (entry,) = [e.data for e in audit.entries("dsr.erasure") if e.data["details"].get("stage") == "approval"]
    assert entry["outcome"] == "skipped" and entry["details"]["decision"] == "rejected"
    assert entry["details"]["responded_by"] == "someone"
    with pytest.raises(DsrError, match="the request's key was destroyed"):
        _process(run, ["orders"])


def test_a_dry_run_does_not_wait_for_approval(
    run: TaskRun, audit: AuditReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    _request(run, dry_run=True)
    _register(run)
    operator = DsrApprovalOperator(task_id=APPROVAL_TASK, request_type="erasure", subject="Approve?")
    monkeypatch.setattr(type(operator).__mro__[1], "execute", _no_wait)

    assert operator.execute(run.context(APPROVAL_TASK)) is None

    (entry,) = [e.data for e in audit.entries("dsr.erasure") if e.data["details"].get("stage") == "approval"]
    assert entry["outcome"] == "success" and entry["details"]["decision"] == "dry_run"
    _process(run, ["orders"])  # the identifiers still open: the run goes on


def test_a_real_request_still_waits_for_approval(run: TaskRun, monkeypatch: pytest.MonkeyPatch) -> None:
    _request(run)
    _register(run)
    operator = DsrApprovalOperator(task_id=APPROVAL_TASK, request_type="erasure", subject="Approve?")
    monkeypatch.setattr(type(operator).__mro__[1], "execute", _no_wait)

    with pytest.raises(RuntimeError, match="waits for the approver"):
        operator.execute(run.context(APPROVAL_TASK))


def test_run_parameters_changed_after_registration_do_not_skip_approval(
    run: TaskRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    _request(run)
    _register(run)  # registered as a real request
    run.params = {**run.params, "dry_run": True}
    operator = DsrApprovalOperator(task_id=APPROVAL_TASK, request_type="erasure", subject="Approve?")
    monkeypatch.setattr(type(operator).__mro__[1], "execute", _no_wait)

    with pytest.raises(RuntimeError, match="waits for the approver"):
        operator.execute(run.context(APPROVAL_TASK))


def _no_wait(self: Any, context: Any) -> None:
    raise RuntimeError("waits for the approver")


def test_the_index_operator_indexes_the_catalog_and_records_it(
    run: TaskRun, settings: dict[str, str], audit: AuditReader
) -> None:
    done = DsrIndexOperator(task_id="index", datasets=["orders"]).execute(run.context("index"))

    (orders,) = done
    assert orders["dataset"] == "orders" and orders["indexed"] == orders["files"] > 0
    assert (Path(settings["DSR_INDEX"]) / "orders.idx").is_file()
    (entry,) = audit.entries("dsr.index")
    assert entry.data["details"] == {"subject_index": done}
