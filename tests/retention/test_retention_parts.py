"""Retention in parts: split, applied apart and combined, it does what one pass does, byte for byte and entry
for entry; each open intent is settled by exactly one part."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import catalog_for, digests, lake_copy, open_log

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog, Dataset
from airflow_aisec.exceptions import FanOutError
from airflow_aisec.io import S3Options, sha256_file
from airflow_aisec.io.storage import s3_client
from airflow_aisec.retention import (
    DatasetPlan,
    DatasetResult,
    Hold,
    Part,
    PartResult,
    PlanSummary,
    Terms,
    apply_catalog,
    apply_dataset,
    apply_part,
    combine,
    plan_catalog,
    plan_dataset,
    plan_files,
    split_plan,
)
from airflow_aisec.retention.parts import listing_id
from airflow_aisec.rewrite import FileChange, journal

AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@pytest.fixture
def lake(tmp_path: Path, sample_lake_dir: Path) -> Path:
    return lake_copy(sample_lake_dir, tmp_path)


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with open_log(tmp_path, str(tmp_path / "ring.json")) as log:
        yield log


def _evidence(log: AuditLog) -> dict[str, dict[str, Any]]:
    """Idempotency key → entry, without what tells two runs apart (index, chain, time, actor)."""
    by_index = {e.index: e.data for e in log.entries()}
    volatile = {"index", "prev", "time", "actor"}
    return {key: {k: v for k, v in by_index[i].items() if k not in volatile} for key, i in log.keyed("")}


def _result(catalog: Catalog, dataset: Dataset, part: Part, log: AuditLog) -> PartResult:
    """What one mapped task does: the part as it travels (a plain dict), its files re-planned as they are,
    its result as it travels back."""
    part = Part.from_dict(part.as_dict())
    plan = plan_files(catalog, dataset, part.as_of, list(part.files))
    return PartResult.from_dict(apply_part(plan, part, catalog, dataset, audit=log).as_dict())


def _apply(catalog: Catalog, dataset: Dataset, part: Part, log: AuditLog) -> list[FileChange]:
    """The file changes of one mapped task (``_result``)."""
    return list(_result(catalog, dataset, part, log).changes)


def _summary(plan: DatasetPlan, parts: list[Part]) -> PlanSummary:
    """The plan's summary as the combine gets it (a plain dict)."""
    return PlanSummary.from_dict(PlanSummary.of(plan, parts).as_dict())


def _fan_out(
    catalog: Catalog, log: AuditLog, max_files_per_task: int = 3
) -> list[tuple[PlanSummary, list[PartResult]]]:
    """The listing and the mapped tasks of a fanned-out run: each dataset's summary and its parts' results."""
    runs = []
    for plan in plan_catalog(catalog, AS_OF):
        dataset = catalog.dataset(plan.dataset)
        parts = split_plan(plan, max_files_per_task=max_files_per_task)
        runs.append((_summary(plan, parts), [_result(catalog, dataset, part, log) for part in parts]))
    return runs


def _run_in_parts(catalog: Catalog, log: AuditLog, max_files_per_task: int = 3) -> list[DatasetResult]:
    """A fanned-out run: plan once, each part applied apart, then one combine per dataset."""
    return [combine(summary, done, audit=log) for summary, done in _fan_out(catalog, log, max_files_per_task)]


def _states(log: AuditLog, uri: str) -> list[str]:
    """The outcomes recorded for the operations on ``uri``, in order."""
    return [e.data["outcome"] for e in log.entries() if e.data.get("inputs", [{}])[0].get("uri") == uri]


def _killed_after_swap(patch: pytest.MonkeyPatch, uri: str) -> None:
    """The change of ``uri`` dies after its swap and before its outcome (as a kill would)."""
    real = journal._record_outcome

    def outcome(scope: Any, op: str, done: FileChange, details: Any) -> None:
        if done.uri == uri:
            raise KeyboardInterrupt
        real(scope, op, done, details)

    patch.setattr(journal, "_record_outcome", outcome)


def test_parts_applied_apart_then_combined_equal_one_pass_byte_for_byte_and_entry_for_entry(
    sample_lake_dir: Path, tmp_path: Path
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    catalog = catalog_for(lake)
    with open_log(tmp_path, str(tmp_path / "ring.json"), "single.db") as log:
        single = apply_catalog(plan_catalog(catalog, AS_OF), catalog, audit=log)
        expected, single_entries = digests(lake), _evidence(log)
    shutil.rmtree(lake)
    lake_copy(sample_lake_dir, tmp_path)  # the same files at the same place: the same operation ids
    counts = {p.dataset: len(split_plan(p, max_files_per_task=3)) for p in plan_catalog(catalog, AS_OF)}
    assert counts == {
        "customers": 3, "orders": 1, "support_tickets": 3, "chargebacks": 0,  # under a legal hold
        "support_tickets_landing": 1, "support_tickets_masked": 1,  # nothing to change: part 0 alone
    }  # fmt: skip
    with open_log(tmp_path, str(tmp_path / "ring.json"), "parts.db") as log:
        fanned = _run_in_parts(catalog, log)
        assert digests(lake) == expected != digests(sample_lake_dir)
        entries = _evidence(log)
        log.checkpoint()
        assert log.verify().ok
    assert entries == single_entries  # same keys, same counts, same digests
    assert {e["outcome"] for e in entries.values()} == {"intent", "success", "skipped", "noop"}
    assert [r.as_dict() for r in fanned] == [r.as_dict() for r in single]


def test_a_small_dataset_is_one_part_a_held_one_none_and_every_file_has_one_owner(lake: Path) -> None:
    catalog = catalog_for(lake)
    plans = {p.dataset: p for p in plan_catalog(catalog, AS_OF)}
    (orders,) = split_plan(plans["orders"])
    assert orders.count == 1 and set(orders.files) == {
        f.uri for f in plans["orders"].files if f.action != "keep"
    }
    assert split_plan(plans["chargebacks"]) == []
    (empty,) = split_plan(plans["support_tickets_landing"])
    assert empty.files == {} and empty.owns("file:///anywhere/else.jsonl")

    customers = plans["customers"]
    parts = split_plan(customers, max_files_per_task=3)
    changed = sorted(f.uri for f in customers.files if f.action != "keep")
    assert [len(p.files) for p in parts] == [3, 3, 2]
    assert [uri for p in parts for uri in p.files] == changed  # contiguous in URI order
    assert (
        split_plan(plan_dataset(catalog, catalog.dataset("customers"), AS_OF), max_files_per_task=3) == parts
    )
    assert [Part.from_dict(p.as_dict()) for p in parts] == parts
    assert {p.as_of for p in parts} == {AS_OF}
    for uri in changed:
        assert [p.index for p in parts if p.owns(uri)] == [p.index for p in parts if uri in p.files]
    kept = [f.uri for f in customers.files if f.action == "keep"]
    assert kept and all([p.index for p in parts if p.owns(uri)] == [0] for uri in kept)
    assert [p.index for p in parts if p.owns(f"{changed[0]}.gone")] == [0]  # a file in no part


def test_an_intent_in_flight_is_left_to_its_part_by_a_concurrent_part(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    plan = plan_dataset(catalog, customers, AS_OF)
    parts = split_plan(plan, max_files_per_task=3)
    victim = sorted(parts[1].files)[1]
    swapped, others_done = threading.Event(), threading.Event()
    real = journal._record_outcome

    def paused(scope: Any, op: str, done: FileChange, details: Any) -> None:
        if done.uri == victim:  # swapped, its outcome not yet written: the other parts run now
            swapped.set()
            assert others_done.wait(60)
        real(scope, op, done, details)

    monkeypatch.setattr(journal, "_record_outcome", paused)
    ring = str(tmp_path / "ring.json")
    done: dict[int, PartResult] = {}

    def run(part: Part, name: str) -> None:
        with open_log(tmp_path, ring, name) as log:
            done[part.index] = _result(catalog, customers, part, log)

    with open_log(tmp_path, ring, "audit.db"):
        pass  # created once, before the tasks share it
    task = threading.Thread(target=run, args=(parts[1], "audit.db"))
    task.start()
    assert swapped.wait(60)
    try:
        for part in (parts[0], parts[2]):
            run(part, "audit.db")
    finally:
        others_done.set()
        task.join(60)
    assert victim not in {c.uri for i in (0, 2) for c in done[i].changes}
    assert [c.recovered for c in done[1].changes] == [False] * 3 and victim in {
        c.uri for c in done[1].changes
    }
    with open_log(tmp_path, ring) as log:
        assert _states(log, victim) == ["intent", "success"]
        result = combine(_summary(plan, parts), [done[i] for i in (2, 0, 1)])
    assert not result.failed and len(result.files) == 8


def test_a_killed_part_is_settled_as_recovered_by_its_rerun_and_by_no_other_part(
    lake: Path, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    plan = plan_dataset(catalog, customers, AS_OF)
    parts = split_plan(plan, max_files_per_task=3)
    victim = sorted(parts[1].files)[1]
    with monkeypatch.context() as patch:
        _killed_after_swap(patch, victim)
        with pytest.raises(KeyboardInterrupt):
            _apply(catalog, customers, parts[1], audit)
    assert _states(audit, victim) == ["intent"]

    others = [_result(catalog, customers, part, audit) for part in (parts[0], parts[2])]
    assert victim not in {c.uri for r in others for c in r.changes} and _states(audit, victim) == ["intent"]

    rerun = _result(catalog, customers, parts[1], audit)  # the retry of the killed task, same part
    assert [(c.uri, c.recovered) for c in rerun.changes if c.uri == victim] == [(victim, True)]
    assert _states(audit, victim) == ["intent", "success"]
    outcomes = [e.data for e in audit.entries() if e.data["outcome"] == "success"]
    assert [o["details"]["recovered"] for o in outcomes if o["inputs"][0]["uri"] == victim] == [True]
    result = combine(_summary(plan, parts), [*others, rerun], audit=audit)
    assert not result.failed and victim in {c.uri for c in result.files}
    assert all(
        f.action == "keep" for f in plan_dataset(catalog, customers, AS_OF).files
    )  # nothing left to do


def test_an_intent_on_a_file_in_no_part_is_settled_by_part_zero_only(
    lake: Path, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    first = plan_dataset(catalog, customers, AS_OF)
    victim = sorted(f.uri for f in first.files if f.action == "delete")[3]
    with monkeypatch.context() as patch:
        _killed_after_swap(patch, victim)
        with pytest.raises(KeyboardInterrupt):
            apply_dataset(first, catalog, customers, audit=audit)  # a killed run: the file is gone

    plan = plan_dataset(catalog, customers, AS_OF)
    parts = split_plan(plan, max_files_per_task=3)
    assert len(parts) >= 2 and all(victim not in p.files for p in parts)
    later = [c for part in parts[1:] for c in _apply(catalog, customers, part, audit)]
    assert victim not in {c.uri for c in later} and _states(audit, victim) == ["intent"]
    zero = _apply(catalog, customers, parts[0], audit)
    assert [(c.uri, c.action, c.recovered) for c in zero if c.uri == victim] == [(victim, "delete", True)]
    assert _states(audit, victim) == ["intent", "success"]


def test_a_rerun_of_everything_records_nothing_twice(lake: Path, audit: AuditLog) -> None:
    catalog = catalog_for(lake)
    runs = _fan_out(catalog, audit)
    first = [combine(summary, done, audit=audit) for summary, done in runs]
    assert sum(r.rows_removed for r in first) > 0
    after, size = digests(lake), audit.size()
    _run_in_parts(catalog, audit)  # the next run the same day: at most one noop per dataset
    new = [e.data for e in audit.entries(size)]
    assert {e["outcome"] for e in new} <= {"noop"} and len({e["dataset"] for e in new}) == len(new)
    size = audit.size()
    _run_in_parts(catalog, audit)
    _run_in_parts(catalog, audit, max_files_per_task=1)  # split otherwise: still the same evidence
    assert audit.size() == size and digests(lake) == after
    for summary, done in runs:
        combine(summary, done, audit=audit)  # the combine retried on the same results
    assert audit.size() == size


def test_a_file_changed_since_the_listing_is_planned_and_journaled_as_it_is_now(
    lake: Path, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    listed = plan_dataset(catalog, customers, AS_OF)
    (part,) = split_plan(listed)
    target = next(f for f in listed.files if f.action == "rewrite")
    rows = pq.read_table(target.location.path)
    pq.write_table(pa.concat_tables([rows, rows]), target.location.path)  # another writer, after the listing
    now = sha256_file(target.location)

    done = {c.uri: c for c in _apply(catalog, customers, part, audit)}
    assert done[target.uri].sha256_before == now != target.sha256_before
    assert done[target.uri].rows_removed == 2 * target.purge  # its current rows, not the listed ones
    intents = [e.data for e in audit.entries() if e.data["outcome"] == "intent"]
    assert [i["inputs"][0]["sha256"] for i in intents if i["inputs"][0]["uri"] == target.uri] == [now]
    assert all(f.action == "keep" for f in plan_dataset(catalog, customers, AS_OF).files)


def test_parts_on_s3_are_applied_as_one_pass_applies_them(
    sample_lake_dir: Path, tmp_path: Path, s3_options: S3Options, bucket: str, audit: AuditLog
) -> None:
    client = s3_client(s3_options)
    for path in sorted((sample_lake_dir / "customers").glob("*.parquet")):
        client.put_object(Bucket=bucket, Key=f"lake/customers/{path.name}", Body=path.read_bytes())
    catalog = catalog_for(f"s3://{bucket}/lake")
    customers = catalog.dataset("customers")
    plan = plan_dataset(catalog, customers, AS_OF, s3=s3_options)
    parts = split_plan(plan, max_files_per_task=2)
    assert len(parts) == 4
    results = []
    for part in parts:
        travelled = Part.from_dict(part.as_dict())
        again = plan_files(catalog, customers, travelled.as_of, list(travelled.files), s3=s3_options)
        results.append(apply_part(again, travelled, catalog, customers, audit=audit))
    result = combine(PlanSummary.of(plan, parts), results, audit=audit)
    assert not result.failed and result.rows_removed == plan.rows_to_purge > 0
    assert all(f.action == "keep" for f in plan_dataset(catalog, customers, AS_OF, s3=s3_options).files)
    left = {o["Key"].rsplit("/", 1)[1] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert left == {f.location.name for f in plan.files if f.action != "delete"}


def test_a_part_naming_a_file_outside_its_dataset_is_refused_before_anything_is_read(lake: Path) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    before = digests(lake)
    orders = sorted(str(p) for p in (lake / "orders").glob("*.parquet"))[0]
    for uri in (f"file://{orders}", f"file://{lake}/customers/_aisec-staging/x.parquet"):
        with pytest.raises(FanOutError, match="is not a file of the dataset"):
            plan_files(catalog, customers, AS_OF, [uri])
    assert digests(lake) == before


def test_the_combine_takes_only_every_part_of_its_own_listing_exactly_once(
    lake: Path, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    plan = plan_dataset(catalog, customers, AS_OF)
    parts = split_plan(plan, max_files_per_task=3)
    summary = _summary(plan, parts)
    assert summary.count == 3 and {p.listing for p in parts} == {summary.listing}
    assert [dict(files) for files in summary.parts] == [dict(p.files) for p in parts]
    done = [PartResult.from_dict(PartResult.of(p, plan, []).as_dict()) for p in parts]
    terms = Terms.of(plan)
    other = dataclasses.replace(terms, keep_for="P1Y")
    empty = Part("customers", 0, 1, AS_OF, terms=terms, listing=listing_id("customers", AS_OF, terms, [{}]))
    theirs = parts[2].files
    foreign = FileChange(next(iter(theirs)), "delete", 1, 0, sha256_before=theirs[next(iter(theirs))])
    cases = {
        "a stale listing with nothing to do": (
            [PartResult.of(empty, plan, [])],
            "comes from another listing",
        ),
        "a listing of other terms, with the same files": (
            [
                dataclasses.replace(d, listing=listing_id("customers", AS_OF, other, summary.parts))
                for d in done
            ],
            "comes from another listing",
        ),
        "another split": (
            [PartResult.of(p, plan, []) for p in split_plan(plan, max_files_per_task=4)],
            "comes from another listing",
        ),
        "part 2 with part 1's files": (
            [done[0], done[1], dataclasses.replace(done[1], index=2)],
            "part 2 reports on another file set",
        ),
        "a part twice": ([*done, done[2]], r"parts \[0, 1, 2, 2\] of 3"),
        "a part missing": (done[:2], r"parts \[0, 1\] of 3"),
        "a change of another part's file": (
            [done[0], dataclasses.replace(done[1], changes=(foreign,)), done[2]],
            "part 1 reports on .* not own",
        ),
    }
    for name, (results, message) in cases.items():
        with pytest.raises(FanOutError, match=f"dataset customers.*{message}"):
            combine(summary, results, audit=audit)
        assert audit.size() == 0, (
            name
        )  # nothing recorded: no noop claimed while files still hold expired rows
    tampered = {**summary.as_dict(), "parts": [[]]}
    with pytest.raises(FanOutError, match="does not match its listing id"):
        PlanSummary.from_dict(tampered)
    assert not combine(summary, list(reversed(done))).failed  # every part of the listing once: combined


def test_rows_with_bad_dates_a_part_finds_after_the_listing_fail_the_run_with_the_single_tasks_entries(
    sample_lake_dir: Path, tmp_path: Path
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    listed = plan_dataset(catalog, customers, AS_OF)
    parts = split_plan(listed, max_files_per_task=3)
    target = next(f for f in listed.files if f.action == "rewrite")
    assert not listed.errors and target.uri in {uri for p in parts for uri in p.files}
    table = pq.read_table(target.location.path)
    dates = table.column("created_at")
    unreadable = pa.array(
        [None, *dates.to_pylist()[1:]], type=dates.type
    )  # another writer, after the listing
    index = table.schema.get_field_index("created_at")
    pq.write_table(table.set_column(index, "created_at", unreadable), target.location.path)
    changed = tmp_path / "changed"
    shutil.copytree(lake, changed)

    with open_log(tmp_path, str(tmp_path / "ring.json"), "parts.db") as log:
        fanned = combine(
            _summary(listed, parts), [_result(catalog, customers, p, log) for p in parts], audit=log
        )
        fanned_entries = _evidence(log)
    shutil.rmtree(lake)
    shutil.copytree(changed, lake)
    with open_log(tmp_path, str(tmp_path / "ring.json"), "single.db") as log:
        single = apply_dataset(plan_dataset(catalog, customers, AS_OF), catalog, customers, audit=log)
        single_entries = _evidence(log)
    assert single.failed and single.bad_dates == 1 and target.uri in single.errors[0]
    assert fanned.as_dict() == single.as_dict()
    assert fanned_entries == single_entries
    (failure,) = [e for e in fanned_entries.values() if e["outcome"] == "failure"]
    assert failure["details"]["bad_dates"] == [{"uri": target.uri, "bad_dates": 1}] and failure["rows"] == 1


def _held(data: Any) -> None:
    data["datasets"]["customers"]["legal_hold"] = {"reason": "litigation 2026-99", "until": "2027-12-31"}


def _shorter(data: Any) -> None:
    data["datasets"]["customers"]["retention"]["keep_for"] = "P1Y"


def test_a_part_refuses_to_run_when_the_rule_or_a_hold_changed_since_the_listing(
    lake: Path, tmp_path: Path, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    parts = split_plan(plan_dataset(catalog, customers, AS_OF), max_files_per_task=3)
    before = digests(lake)
    for edit in (_shorter, _held):
        later = catalog_for(lake, tmp_path, edit)
        for part in parts:
            with pytest.raises(
                FanOutError, match="the catalog or the holds changed since the listing: rerun"
            ):
                _apply(later, later.dataset("customers"), part, audit)
    some = next(iter(parts[0].files))
    pseudonym = audit.pseudonym("C0001")
    held_now = plan_files(
        catalog, customers, AS_OF, [some], holds={pseudonym: Hold(pseudonym, "dispute")},
        pseudonymize=audit.pseudonym,
    )  # fmt: skip
    with pytest.raises(FanOutError, match="the holds changed since the listing"):
        apply_part(held_now, parts[0], catalog, customers, audit=audit)
    assert digests(lake) == before and audit.size() == 0


def test_under_a_legal_hold_no_open_intent_is_settled_on_either_path(
    lake: Path, tmp_path: Path, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_for(lake)
    customers = catalog.dataset("customers")
    first = plan_dataset(catalog, customers, AS_OF)
    victim = sorted(f.uri for f in first.files if f.action == "delete")[3]
    with monkeypatch.context() as patch:
        _killed_after_swap(patch, victim)
        with pytest.raises(KeyboardInterrupt):
            apply_dataset(first, catalog, customers, audit=audit)
    listed = split_plan(plan_dataset(catalog, customers, AS_OF), max_files_per_task=3)
    held = catalog_for(lake, tmp_path, _held)
    with pytest.raises(FanOutError, match="changed since the listing"):
        _apply(held, held.dataset("customers"), listed[0], audit)  # the hold came after the listing

    plan = plan_dataset(held, held.dataset("customers"), AS_OF)
    terms = Terms.of(plan)
    part = Part("customers", 0, 1, AS_OF, terms=terms, listing=listing_id("customers", AS_OF, terms, [{}]))
    assert apply_part(plan, part, held, held.dataset("customers"), audit=audit).changes == ()
    single = apply_dataset(plan, held, held.dataset("customers"), audit=audit)
    assert single.legal_hold == "litigation 2026-99" and single.files == []
    assert _states(audit, victim) == ["intent"]  # settled once the hold ends, not under it


def test_a_part_naming_a_file_its_dataset_listing_would_not_give_is_refused_before_any_change(
    lake: Path, audit: AuditLog
) -> None:
    catalog = catalog_for(lake)
    tickets = catalog.dataset("support_tickets")
    plan = plan_dataset(catalog, tickets, AS_OF)
    (part,) = split_plan(plan)
    real = sorted((lake / "support_tickets").glob("*.jsonl"))[0]
    notes = lake / "support_tickets" / "export-for-legal.txt"
    notes.write_text(real.read_text())
    (lake / "landing").mkdir()
    shutil.copy(real, lake / "landing" / real.name)
    before = digests(lake)
    root = f"file://{lake}/support_tickets"
    spellings = (f"{root}/%2e%2e/landing/{real.name}", f"{root}//{real.name}", f"{root}/./{real.name}",
                 f"{root}/%{ord(real.name[0]):x}{real.name[1:]}")  # fmt: skip
    for uri in (f"file://{notes}", *spellings):
        crafted = dataclasses.replace(part, files={**part.files, uri: None})
        with pytest.raises(FanOutError, match="is not a file of the dataset"):
            _apply(catalog, tickets, crafted, audit)
    assert digests(lake) == before and notes.exists() and audit.size() == 0


def test_a_dataset_of_one_file_is_fanned_out_as_one_pass_does_it(
    lake: Path, tmp_path: Path, audit: AuditLog
) -> None:
    name = sorted(p.name for p in (lake / "customers").glob("*.parquet"))[0]

    def one_file(data: Any) -> None:
        data["datasets"]["customers"]["uri"] = "{lake}/customers/" + name

    catalog = catalog_for(lake, tmp_path, one_file)
    customers = catalog.dataset("customers")
    listed = plan_dataset(catalog, customers, AS_OF)
    (part,) = split_plan(listed)
    assert list(part.files) == [f"file://{lake}/customers/{name}"] and listed.rows_to_purge > 0
    result = combine(_summary(listed, [part]), [_result(catalog, customers, part, audit)], audit=audit)
    assert not result.failed and result.rows_removed == listed.rows_to_purge
    assert not (lake / "customers" / name).exists()
