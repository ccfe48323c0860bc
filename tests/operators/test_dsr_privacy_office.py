"""Only the catalog's privacy office decides a data-subject request: it is who the approval asks, an answer
from anyone else is refused and recorded, and the audit log says who decided.

The approval runs Airflow's own ``HITLOperator.execute`` up to the point where it writes the request for a
human to Airflow's database (``upsert_hitl_detail``, captured here) and parks the task; the answer arrives as
the event Airflow resumes the task with.
"""

from __future__ import annotations

import datetime as dt
import types
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Param
from builders import SAMPLE, catalog_file
from task_runs import AuditReader, TaskRun

from airflow_aisec.dsr.contract import APPROVAL_TASK, DECISION_KEY, REGISTER_TASK
from airflow_aisec.exceptions import DsrError
from airflow_aisec.operators.dsr import DsrApprovalOperator, DsrRegisterOperator

# A customer without a chargeback: no legal hold keeps any of their data.
SUBJECT = next(
    c for c in SAMPLE.customers if c.customer_id not in {r["customer_id"] for r in SAMPLE.rows("chargebacks")}
)

# The simple auth manager's users: who holds ADMIN decides as the office's role.
USERS = "root:admin,ops:op,viewer1:viewer"


@pytest.fixture(autouse=True)
def auth_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the approval writes to Airflow's database for the human to answer, one dict per ask."""
    from airflow.providers.standard.operators import hitl

    written: list[dict[str, Any]] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **detail: written.append(detail))
    return written


def _registered(run: TaskRun, request_id: str = "office-1") -> None:
    run.params = {"identity_type": "customer_id", "identity_value": SUBJECT.customer_id,
                  "request_id": request_id, "reason": ""}  # fmt: skip
    DsrRegisterOperator(task_id=REGISTER_TASK, request_type="erasure").execute(run.context(REGISTER_TASK))


def _approval(**kwargs: Any) -> DsrApprovalOperator:
    return DsrApprovalOperator(task_id=APPROVAL_TASK, request_type="erasure", subject="Approve?", **kwargs)


def _answer(run: TaskRun, option: str, by: Any, try_number: int = 1, **kwargs: Any) -> Any:
    event = {"chosen_options": [option], "params_input": {}, "responded_by_user": by,
             "responded_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC)}  # fmt: skip
    return _approval(**kwargs).execute_complete(run.context(APPROVAL_TASK, try_number=try_number), event)


def _approvals(audit: AuditReader) -> list[dict[str, Any]]:
    return [e.data for e in audit.entries("dsr.erasure") if e.data["details"].get("stage") == "approval"]


def _parks(operator: DsrApprovalOperator, run: TaskRun) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    with pytest.raises(TaskAwaitingInput):
        # Airflow's task instance id is all HITLOperator reads of it, to key what it writes.
        operator.execute(run.context(APPROVAL_TASK, task_instance=types.SimpleNamespace(id=uuid.uuid4())))


def _no_office(data: dict[str, Any]) -> None:
    data.pop("privacy_office")


def _office(office: dict[str, Any]) -> Any:
    def edit(data: dict[str, Any]) -> None:
        data["privacy_office"] = office

    return edit


def test_the_approval_asks_the_office_users_and_the_users_of_its_roles(
    run: TaskRun, asked: list[dict[str, Any]]
) -> None:
    run.xcom[(REGISTER_TASK, -1, "registration")] = {"request": {"request_id": "office-1", "dry_run": False}}

    _parks(_approval(), run)

    (detail,) = asked
    assert detail["assigned_users"] == [
        {"id": "dpo", "name": "Data Protection Officer"},  # privacy_office.users
        {"id": "root", "name": "root"},  # the ADMIN user of the auth manager (roles: [ADMIN])
    ]


def test_a_role_includes_the_users_of_the_roles_above_it_as_the_simple_auth_manager_grants(
    run: TaskRun, asked: list[dict[str, Any]], tmp_path: Path
) -> None:
    run.xcom[(REGISTER_TASK, -1, "registration")] = {"request": {"request_id": "office-1", "dry_run": False}}
    catalog = str(catalog_file(tmp_path, _office({"roles": ["op"]})))

    _parks(_approval(catalog=catalog), run)

    assert sorted(user["id"] for user in asked[0]["assigned_users"]) == ["ops", "root"]  # not viewer1


def test_an_office_that_comes_to_no_airflow_user_fails_before_asking(
    run: TaskRun, asked: list[dict[str, Any]], tmp_path: Path
) -> None:
    run.xcom[(REGISTER_TASK, -1, "registration")] = {"request": {"request_id": "office-1", "dry_run": False}}
    catalog = str(catalog_file(tmp_path, _office({"roles": ["privacy-team"]})))  # no auth-manager role

    with pytest.raises(DsrError, match="privacy_office comes to no Airflow user"):
        _approval(catalog=catalog).execute(run.context(APPROVAL_TASK))
    assert asked == []


def test_without_a_privacy_office_anyone_airflow_lets_answer_decides_with_a_warning(
    run: TaskRun, asked: list[dict[str, Any]], audit: AuditReader, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    run.xcom[(REGISTER_TASK, -1, "registration")] = {"request": {"request_id": "office-1", "dry_run": False}}
    catalog = str(catalog_file(tmp_path, _no_office))

    _parks(_approval(catalog=catalog), run)
    assert asked[0]["assigned_users"] is None  # as Airflow's ApprovalOperator asks by default
    assert "declares no privacy_office" in capsys.readouterr().out  # the task log

    _answer(run, "Approve", {"id": "u7", "name": "Ada"}, catalog=catalog)
    (entry,) = _approvals(audit)
    assert entry["details"]["decision"] == "approved" and entry["details"]["privacy_office"] is None
    assert entry["details"]["decided_by"] == {"id": "u7", "name": "Ada", "in_office": None}


def test_a_decision_by_a_user_outside_the_office_is_refused_recorded_and_fails_the_task(
    run: TaskRun, audit: AuditReader
) -> None:
    _registered(run)

    with pytest.raises(DsrError, match="answered by Airflow user 'viewer1', who is not in the catalog's"):
        _answer(run, "Approve", {"id": "viewer1", "name": "Vic"})

    (entry,) = _approvals(audit)
    assert entry["outcome"] == "failure"
    assert entry["details"] == {
        "request_id": "office-1", "stage": "approval", "decision": "refused", "responded_by": "Vic",
        "decided_by": {"id": "viewer1", "name": "Vic", "in_office": False}, "privacy_office": ["dpo", "root"],
    }  # fmt: skip


def test_a_rejection_from_outside_the_office_rejects_nothing(run: TaskRun, audit: AuditReader) -> None:
    _registered(run)

    with pytest.raises(DsrError, match="refused"):
        _answer(run, "Reject", {"id": "mallory", "name": "root"})  # a name is not an identity

    (entry,) = _approvals(audit)
    assert entry["details"]["decision"] == "refused"
    assert entry["details"]["decided_by"] == {"id": "mallory", "name": "root", "in_office": False}


def test_after_a_refusal_the_office_still_decides_and_both_are_recorded(
    run: TaskRun, audit: AuditReader
) -> None:
    _registered(run)
    with pytest.raises(DsrError):
        _answer(run, "Approve", {"id": "viewer1", "name": "Vic"})

    _answer(run, "Approve", {"id": "root", "name": "root"}, try_number=2)  # the approve task asked again

    refused, approved = _approvals(audit)
    assert refused["details"]["decision"] == "refused"
    assert approved["outcome"] == "success" and approved["details"]["decision"] == "approved"
    assert approved["details"]["decided_by"] == {"id": "root", "name": "root", "in_office": True}


def test_with_all_admins_every_caller_is_the_anonymous_admin_and_holds_admin(
    run: TaskRun, audit: AuditReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    run.xcom[(REGISTER_TASK, -1, "registration")] = {"request": {"request_id": "office-1", "dry_run": False}}

    _answer(run, "Approve", {"id": "Anonymous", "name": "Anonymous"})

    (entry,) = _approvals(audit)
    assert entry["details"]["decided_by"]["in_office"] is True


def test_a_timeout_is_no_ones_answer_and_is_not_taken_for_a_refusal(run: TaskRun, audit: AuditReader) -> None:
    _registered(run)
    event = {"error": "timed out", "error_type": "timeout", "chosen_options": [], "params_input": {},
             "responded_by_user": None, "responded_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC)}  # fmt: skip

    from airflow.providers.standard.exceptions import HITLTimeoutError

    with pytest.raises(HITLTimeoutError):  # Airflow's own outcome of a timeout
        _approval().execute_complete(run.context(APPROVAL_TASK), event)
    (entry,) = _approvals(audit)
    assert entry["details"]["decision"] == "none"


def test_an_answer_airflow_refuses_decides_nothing_and_lets_nothing_proceed(
    run: TaskRun, audit: AuditReader
) -> None:
    _registered(run)
    office = {"id": "dpo", "name": "Data Protection Officer"}
    event = {"chosen_options": ["Approve"], "params_input": {"unasked": "x"}, "responded_by_user": office,
             "responded_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC)}  # fmt: skip
    approval = _approval(params={"note": Param("", type="string")})

    with pytest.raises(ValueError, match="does not match params"):
        approval.execute_complete(run.context(APPROVAL_TASK), event)

    assert _approvals(audit) == []  # no "approved" on record
    assert (APPROVAL_TASK, -1, DECISION_KEY) not in run.xcom  # so the complete task shreds nothing
