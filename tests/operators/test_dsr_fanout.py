"""A data-subject request fanned out by file through the operators: the register task splits a dataset into
parts, one mapped dataset task per part, and the complete task merges them into one outcome per dataset."""

from __future__ import annotations

import json
import types
from typing import Any

import jinja2
import pytest
from builders import SAMPLE
from task_runs import AuditReader, TaskRun

from airflow_aisec.audit import AuditLog
from airflow_aisec.dsr import verify_certificate
from airflow_aisec.dsr.contract import COMPLETE_TASK, DATASET_TASK, REGISTER_TASK, REGISTRATION_KEY
from airflow_aisec.exceptions import DsrError
from airflow_aisec.operators.dsr import DsrCompleteOperator, DsrDatasetOperator, DsrRegisterOperator


def _years(customer_id: str) -> set[int]:
    return {r["ordered_at"].year for r in SAMPLE.rows("orders") if r["customer_id"] == customer_id}


# A customer with orders of several years (so in several files) and no chargeback (nothing held).
SUBJECT = next(
    c
    for c in SAMPLE.customers
    if len(_years(c.customer_id)) >= 2
    and c.customer_id not in {r["customer_id"] for r in SAMPLE.rows("chargebacks")}
)


def _register(run: TaskRun, **limits: Any) -> list[dict[str, Any]]:
    run.params = {"identity_type": "customer_id", "identity_value": SUBJECT.customer_id,
                  "request_id": "op-parts-1", "reason": ""}  # fmt: skip
    task = DsrRegisterOperator(task_id=REGISTER_TASK, request_type="erasure", **limits)
    parts: list[dict[str, Any]] = task.execute(run.context(REGISTER_TASK))
    return parts


def _process(run: TaskRun, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        DsrDatasetOperator(task_id=DATASET_TASK, request_type="erasure", **item).execute(
            run.context(DATASET_TASK, map_index=i)
        )
        for i, item in enumerate(parts)
    ]


def _complete(run: TaskRun) -> dict[str, Any]:
    result: dict[str, Any] = DsrCompleteOperator(task_id=COMPLETE_TASK, request_type="erasure").execute(
        run.context(COMPLETE_TASK)
    )
    return result


def test_register_maps_over_one_small_dict_per_part_and_lists_each_parts_files(run: TaskRun) -> None:
    parts = _register(run, max_files_per_task=1)

    registration = run.pull(task_ids=REGISTER_TASK, key=REGISTRATION_KEY)
    orders = [p for p in parts if p["dataset"] == "orders"]
    count = len(_years(SUBJECT.customer_id))
    assert orders == [{"dataset": "orders", "part": i, "parts": count} for i in range(count)]
    assert all(set(p) == {"dataset", "part", "parts"} for p in parts)
    assert [p["dataset"] for p in parts if p["part"] == 0] == list(registration["matches"])
    files = [f["uri"] for f in registration["matches"]["orders"]["files"]]
    assert [u for part in registration["parts"]["orders"] for u in part] == sorted(files)
    assert f"in {count} parts" in registration["summary"]
    assert SUBJECT.customer_id not in json.dumps([parts, registration])
    # Within the limits (the defaults), every dataset is one part, as before datasets were split.
    assert all(p["parts"] == 1 for p in _register(TaskRun(run_id="manual__unit-2")))


def test_parts_carried_out_apart_complete_into_one_verified_certificate(
    run: TaskRun, settings: dict[str, str], audit: AuditReader
) -> None:
    parts = _register(run, max_files_per_task=1)

    outcomes = _process(run, parts)
    result = _complete(run)

    assert [(o["dataset"], o["part"], o["parts"]) for o in outcomes] == [
        (p["dataset"], p["part"], p["parts"]) for p in parts
    ]
    assert result["status"] == "completed"
    certificate = result["certificate"]["certificate"]
    datasets = {d["dataset"]: d for d in certificate["datasets"]}
    assert len(datasets) == len(certificate["datasets"]) == len({p["dataset"] for p in parts})
    orders = datasets["orders"]
    assert orders["status"] == "changed" and orders["parts"] == len(_years(SUBJECT.customer_id))
    assert orders["rows_affected"] == sum(o["rows_affected"] for o in outcomes if o["dataset"] == "orders")
    assert len(orders["files"]) == orders["parts"] and orders["verification"]["verified"]
    with AuditLog.open(settings["AUDIT_LOG"], create=False) as log:
        assert verify_certificate(result["certificate"], log).ok
    assert SUBJECT.customer_id not in json.dumps([e.data for e in audit.entries()])


def test_a_part_task_that_never_ran_fails_its_dataset_in_the_certificate(run: TaskRun) -> None:
    parts = _register(run, max_files_per_task=1)
    _process(run, [p for p in parts if (p["dataset"], p["part"]) != ("orders", 1)])

    with pytest.raises(DsrError, match="request op-parts-1 failed; see the certificate"):
        _complete(run)

    result = run.pull(task_ids=COMPLETE_TASK)
    orders = {d["dataset"]: d for d in result["certificate"]["certificate"]["datasets"]}["orders"]
    assert orders["status"] == "failed" and f"part(s) 2/{orders['parts']} not processed" in orders["error"]


def test_a_part_the_registration_does_not_have_is_refused(run: TaskRun) -> None:
    _register(run)  # the defaults: one part per dataset
    with pytest.raises(DsrError, match=r"part 1/2 is not a part of the request's registration"):
        _process(run, [{"dataset": "orders", "part": 0, "parts": 2}])


def test_a_mapped_task_is_labelled_with_its_dataset_and_part(run: TaskRun) -> None:
    from airflow_aisec.operators.dsr_dag import _REGISTRATION_SUMMARY, build_dsr_dag

    dag = build_dsr_dag("erasure", approval=True, max_files_per_task=3)
    register, process = dag.get_task(REGISTER_TASK), dag.get_task(DATASET_TASK)
    assert register.max_files_per_task == 3
    label = jinja2.Template(process.partial_kwargs["map_index_template"])
    assert label.render(task=types.SimpleNamespace(dataset="orders", part=1, parts=3)) == "orders 2/3"
    assert label.render(task=types.SimpleNamespace(dataset="customers", part=0, parts=1)) == "customers"
    # The approval form still shows the registration's summary (pulled from the register task).
    _register(run, max_files_per_task=1)
    shown = jinja2.Template(_REGISTRATION_SUMMARY).render(ti=run.context("approve")["ti"])
    assert shown.startswith("**erasure** request `op-parts-1`")
    assert f"in {len(_years(SUBJECT.customer_id))} parts" in shown
