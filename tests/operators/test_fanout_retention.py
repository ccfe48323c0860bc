"""Retention fanned out by file through the operators: the listing, the mapped parts, the combine; and a whole
step run by Airflow (dag.test())."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from builders import catalog_file, digests
from task_runs import AuditReader, TaskRun

from airflow_aisec.exceptions import DatasetIOError, FanOutError
from airflow_aisec.io import Location, read_dataset
from airflow_aisec.operators.fanout_retention import (
    PLANS_KEY,
    ListRetentionPartsOperator,
    RetentionCombineOperator,
    RetentionPartOperator,
)
from airflow_aisec.operators.retention import RetentionEnforcementOperator
from airflow_aisec.retention.dates import to_instants

AS_OF = "2026-11-01T00:00:00+00:00"
_BUNDLES = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


def _list(run: TaskRun, **kwargs: Any) -> list[dict[str, Any]]:
    listing = ListRetentionPartsOperator(task_id="enforce_files", as_of=AS_OF, **kwargs)
    parts: list[dict[str, Any]] = listing.execute(run.context("enforce_files"))
    return parts


def _part(
    run: TaskRun, part: dict[str, Any], index: int, try_number: int = 1, **kwargs: Any
) -> dict[str, Any]:
    task = RetentionPartOperator(task_id="enforce_part", part=part, **kwargs)
    result: dict[str, Any] = task.execute(run.context("enforce_part", map_index=index, try_number=try_number))
    return result


def _combine(run: TaskRun, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    summaries = run.pull("enforce_files", PLANS_KEY)
    task = RetentionCombineOperator(task_id="enforce", summaries=summaries, results=results)
    combined: list[dict[str, Any]] = task.execute(run.context("enforce"))
    return combined


def test_the_listing_gives_small_parts_and_pushes_the_plans_summaries(run: TaskRun) -> None:
    parts = _list(run, datasets=["customers", "orders", "chargebacks"], max_files_per_task=3)
    assert [(p["dataset"], p["part"], p["parts"]) for p in parts] == [
        ("customers", 0, 3),
        ("customers", 1, 3),
        ("customers", 2, 3),
        ("orders", 0, 1),
    ]  # fmt: skip  (chargebacks is under a legal hold: no part)
    assert {p["as_of"] for p in parts} == {AS_OF}
    for part in parts:
        assert set(part) == {"dataset", "part", "parts", "listing", "as_of", "terms", "files", "others"}
        assert all(set(f) == {"uri", "sha256"} and len(f["sha256"]) == 64 for f in part["files"])
    assert parts[0]["others"] == sorted(f["uri"] for p in parts[1:3] for f in p["files"])
    summaries = run.pull("enforce_files", PLANS_KEY)
    assert [s["dataset"] for s in summaries] == ["customers", "orders", "chargebacks"]
    assert summaries[2]["legal_hold"] == {"reason": "litigation 2026-17", "until": "2027-06-30"}
    assert [(s["listing"], len(s["parts"])) for s in summaries[:2]] == [
        (parts[0]["listing"], 3), (parts[3]["listing"], 1)
    ]  # fmt: skip
    assert summaries[2]["parts"] == [] and parts[0]["terms"]["cutoff"] == "2023-11-01T00:00:00+00:00"
    assert "rows" not in json.dumps(parts)  # URIs and digests only, never data

    with pytest.raises(KeyError, match=r"unknown dataset .custmers."):
        _list(run, datasets=["custmers"])


def test_parts_then_the_combine_do_what_the_single_task_does(
    run: TaskRun, lake: Path, audit: AuditReader
) -> None:
    parts = _list(run, max_files_per_task=3)
    results = [_part(run, part, index) for index, part in enumerate(parts)]
    combined = _combine(run, list(reversed(results)))
    after = digests(lake)

    by_name = {r["dataset"]: r for r in combined}
    assert by_name["customers"]["files_deleted"] == 7 and by_name["customers"]["files_rewritten"] == 1
    assert by_name["chargebacks"]["legal_hold"] == "litigation 2026-17" and not any(
        r["failed"] for r in combined
    )
    entries = [e.data for e in audit.entries("retention.delete")]
    files = [e for e in entries if e["details"].get("operation")]
    assert files and {e["actor"]["task_id"] for e in files} == {"enforce_part"}
    assert {e["actor"]["map_index"] for e in files} == set(range(7))  # not the parts of 7, 8: no file
    summaries = [e for e in entries if not e["details"].get("operation")]
    assert {(e["dataset"], e["outcome"]) for e in summaries} == {
        ("chargebacks", "skipped"), ("support_tickets_landing", "noop"), ("support_tickets_masked", "noop"),
    }  # fmt: skip
    assert {e["actor"]["task_id"] for e in summaries} == {"enforce"}

    # The single task on the same data, later in the same run: it finds nothing left and records nothing new.
    size = len(audit.entries())
    single = RetentionEnforcementOperator(task_id="single", as_of=AS_OF).execute(run.context("single"))
    assert digests(lake) == after and sum(r["rows_removed"] for r in single) == 0
    new = [(e.data["dataset"], e.data["outcome"]) for e in audit.entries()[size:]]
    assert sorted(new) == [("customers", "noop"), ("orders", "noop"), ("support_tickets", "noop")]


def test_the_combine_refuses_a_missing_part_and_a_part_of_another_listing(
    run: TaskRun, audit: AuditReader
) -> None:
    parts = _list(run, datasets=["customers", "orders"], max_files_per_task=3)
    results = [_part(run, part, index) for index, part in enumerate(parts)]
    with pytest.raises(FanOutError, match=r"customers: parts \[0, 2\] of 3"):
        _combine(run, [r for r in results if not (r["dataset"] == "customers" and r["part"] == 1)])
    with pytest.raises(FanOutError, match="orders: no part"):
        _combine(run, [r for r in results if r["dataset"] != "orders"])
    foreign = {**results[-1], "listing": "0" * 64}
    with pytest.raises(FanOutError, match="dataset orders part 0 comes from another listing"):
        _combine(run, [*results[:-1], foreign])
    with pytest.raises(FanOutError, match="dataset chargebacks part 0 comes from another listing"):
        _combine(run, [*results, {**results[-1], "dataset": "chargebacks"}])
    assert not [e for e in audit.entries("retention.delete") if e.data["actor"]["task_id"] == "enforce"]
    _combine(run, results)  # with every part: combined


def test_the_combine_fails_naming_the_datasets_not_fully_enforced(
    run: TaskRun, lake: Path, audit: AuditReader
) -> None:
    target = lake / "support_tickets" / "support_tickets-2021.jsonl"
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    rows[0]["opened_at"] = "not a date"
    target.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parts = _list(run, datasets=["support_tickets", "orders"], max_files_per_task=2)
    results = [_part(run, part, index) for index, part in enumerate(parts)]  # the parts themselves succeed
    with pytest.raises(
        DatasetIOError, match=r"could not be fully enforced .*: support_tickets: .*2021\.jsonl"
    ):
        _combine(run, results)
    failures = [e.data for e in audit.entries("retention.delete") if e.data["outcome"] == "failure"]
    assert [(f["dataset"], f["rows"], f["actor"]["task_id"]) for f in failures] == [
        ("support_tickets", 1, "enforce")
    ]
    assert "not a date" not in json.dumps(failures)
    assert target.exists() and "not a date" in target.read_text()  # kept, the expired rows around it purged


def test_rows_with_bad_dates_found_by_a_part_after_the_listing_fail_the_combine(
    run: TaskRun, lake: Path, audit: AuditReader
) -> None:
    parts = _list(run, datasets=["support_tickets"], max_files_per_task=2)
    target = lake / "support_tickets" / "support_tickets-2021.jsonl"
    assert any(f["uri"] == target.as_uri() for p in parts for f in p["files"])
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    rows[0]["opened_at"] = "not a date"  # another writer, after the listing
    target.write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = [_part(run, part, index) for index, part in enumerate(parts)]
    assert [b for r in results for b in r["bad_dates"]] == [{"uri": target.as_uri(), "bad_dates": 1}]
    with pytest.raises(DatasetIOError, match=r"support_tickets: .*2021\.jsonl have a missing or unparseable"):
        _combine(run, results)
    failures = [e.data for e in audit.entries("retention.delete") if e.data["outcome"] == "failure"]
    assert [(f["dataset"], f["rows"], f["details"]["bad_dates"]) for f in failures] == [
        ("support_tickets", 1, [{"uri": target.as_uri(), "bad_dates": 1}])
    ]


def test_a_part_refuses_a_dataset_its_step_does_not_enforce_and_a_catalog_changed_since_the_listing(
    run: TaskRun, lake: Path, tmp_path: Path, audit: AuditReader
) -> None:
    parts = _list(run, datasets=["customers"], max_files_per_task=3)
    before = digests(lake)
    with pytest.raises(FanOutError, match=r"customers part 0: not a dataset this step enforces \(orders\)"):
        _part(run, parts[0], 0, datasets=["orders"])

    def shorter(data: Any) -> None:
        data["datasets"]["customers"]["retention"]["keep_for"] = "P1Y"

    changed = catalog_file(tmp_path, shorter)
    with pytest.raises(
        FanOutError, match="the catalog or the holds changed since the listing: rerun the step"
    ):
        _part(run, parts[1], 1, catalog=str(changed))
    assert digests(lake) == before and not audit.entries("retention.delete")


# --- run by Airflow ---------------------------------------------------------------------------------------

DAG_SOURCE = '''
"""Test DAG: retention of the catalog fanned out by file."""

import datetime as dt

from airflow.sdk import DAG

from airflow_aisec.operators.fanout import retention_in_parallel

with DAG(
    "aisec_test_retention_fanout",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    default_args={"owner": "tests", "retries": 0},
    tags=["tests"],
):
    retention_in_parallel("enforce", <arguments>)
'''


def _only_retained(data: Any, names: set[str]) -> None:
    for name, spec in data["datasets"].items():
        if name not in names:
            spec.pop("retention", None)


def _instants(root: Path, column: str) -> pa.Array:
    table = pa.Table.from_batches(list(read_dataset(Location.parse(root), "parquet")))
    return to_instants(table.column(column).combine_chunks())


def _dag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: str) -> Any:
    """The test DAG with ``retention_in_parallel("enforce", <arguments>)``, in a bundle of its own (dag.test()
    runs only DAGs of a bundle)."""
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "aisec_test_retention_fanout.py").write_text(DAG_SOURCE.replace("<arguments>", arguments))
    bundles = json.loads(os.environ[_BUNDLES])
    bundle = {"name": "retention-fanout-test-dags", "classpath": bundles[0]["classpath"],
              "kwargs": {"path": str(folder)}}  # fmt: skip
    monkeypatch.setenv(_BUNDLES, json.dumps([*bundles, bundle]))
    return DagBag(dag_folder=str(folder)).dags["aisec_test_retention_fanout"]


def _retention_entries(settings: dict[str, str]) -> list[dict[str, Any]]:
    from airflow_aisec.audit import AuditLog

    with AuditLog.open(settings["AUDIT_LOG"], create=False) as log:
        assert log.verify().ok
        return [e.data for e in log.entries() if e.action == "retention.delete"]


@pytest.mark.integration
def test_a_fanned_out_retention_run_by_airflow_purges_by_part_and_records_one_step(
    airflow_db: Path, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    catalog = catalog_file(tmp_path, lambda data: _only_retained(data, {"customers", "chargebacks"}))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(catalog))
    cutoff = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)  # customers keep three years
    before = _instants(lake / "customers", "created_at")
    chargebacks = digests(lake / "chargebacks")

    dag = _dag(tmp_path, monkeypatch, "max_files_per_task=3")
    run = dag.test(logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))

    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}
    mapped = sorted(i for (task, i) in states if task == "enforce_part")
    assert mapped == [0, 1, 2]  # customers' 8 files to change, three a part; chargebacks is held
    labels = {ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "enforce_part"}
    assert labels == {"customers part 0", "customers part 1", "customers part 2"}
    after = _instants(lake / "customers", "created_at")
    scalar = pa.scalar(cutoff, type=after.type)
    assert not pc.any(pc.less(after, scalar)).as_py()  # expired rows gone
    kept = pc.filter(before, pc.greater_equal(before, scalar))
    assert sorted(after.to_pylist()) == sorted(kept.to_pylist()) and len(kept) > 0  # the others intact
    assert digests(lake / "chargebacks") == chargebacks
    entries = _retention_entries(settings)
    changed = [e for e in entries if e["outcome"] == "success"]
    assert len(changed) == 8 and {e["actor"]["task_id"] for e in changed} == {"enforce_part"}
    (held,) = [e for e in entries if e["outcome"] == "skipped"]
    assert held["dataset"] == "chargebacks" and held["actor"]["task_id"] == "enforce"
    assert held["details"]["legal_hold"]["reason"] == "litigation 2026-17"


@pytest.mark.integration
def test_datasets_all_under_legal_hold_have_no_part_and_the_combine_still_records_the_skip(
    airflow_db: Path, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]
) -> None:
    run = _dag(tmp_path, monkeypatch, 'datasets=["chargebacks"]').test(
        logical_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    )
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"enforce_files": "success", "enforce_part": "skipped", "enforce": "success"}
    entries = _retention_entries(settings)
    assert [(e["dataset"], e["outcome"], e["actor"]["task_id"]) for e in entries] == [
        ("chargebacks", "skipped", "enforce")
    ]
