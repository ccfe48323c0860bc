"""The journaled file change: intent, then outcome; failures recorded; open intents settled by key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from builders import catalog_for, lake_copy

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog, Dataset
from airflow_aisec.exceptions import DatasetIOError, VerificationError
from airflow_aisec.io import Location, list_dataset_files, read_file, sha256_file, stat_file
from airflow_aisec.rewrite import Change, Journal, change_file, journal, operation_id, recover

ACTION = "test.change"


@pytest.fixture
def catalog(tmp_path: Path, sample_lake_dir: Path) -> Catalog:
    return catalog_for(lake_copy(sample_lake_dir, tmp_path))


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "ring.json")) as log:
        yield log


def _journal(audit: AuditLog, dataset: Dataset, scope: str = "test.change:orders") -> Journal:
    def append(key: str, outcome: str, **fields: Any) -> int | None:
        return audit.append(ACTION, idempotency_key=key, dataset=dataset.name, outcome=outcome, **fields)

    return Journal(audit, scope, dataset.name, append)


def _first_file(dataset: Dataset) -> Location:
    return list_dataset_files(Location.parse(dataset.uri), dataset.format, dataset=dataset.name)[0].location


def _rows(location: Location, fmt: str) -> int:
    return sum(b.num_rows for b in read_file(location, fmt))


def _drop_first_row(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
    keep = pc.greater(pa.array(range(batch.num_rows)), 0)
    return batch.filter(keep), 1, 0


def _change(location: Location, fmt: str, edit: Any = _drop_first_row, **kwargs: Any) -> Change:
    rows = _rows(location, fmt)
    etag = stat_file(location).etag  # type: ignore[union-attr]
    return Change(location, sha256_file(location), etag, rows, False, edit, rows - 1, **kwargs)


def _outcomes(audit: AuditLog, op: str) -> list[str]:
    return [e.data["outcome"] for e in audit.entries() if e.data.get("details", {}).get("operation") == op]


def test_a_change_writes_intent_then_outcome_and_a_rerun_records_nothing_twice(
    catalog: Catalog, audit: AuditLog
) -> None:
    orders = catalog.dataset("orders")
    location = _first_file(orders)
    change = _change(location, orders.format, rows_affected=1, verify_rows=True)
    done = change_file(_journal(audit, orders), change, orders, lambda name: pytest.fail("no key needed"))
    assert done.action == "rewrite" and done.rows_after == change.rows - 1 == _rows(location, orders.format)
    assert done.sha256_before == change.sha256 and done.sha256_after == sha256_file(location)
    assert _outcomes(audit, change.operation) == ["intent", "success"]
    size = audit.size()
    for entry in audit.entries():
        if entry.data["outcome"] == "success":
            assert entry.data["details"]["rows_removed"] == 1 and entry.data["rows"] == 1
    # the same version again (a rerun that did not see the first run's outcome) appends no second entry
    _journal(audit, orders).record(change.operation, "intent", inputs=[], rows=0)
    assert audit.size() == size


def test_a_failed_change_is_recorded_raised_and_leaves_the_file_as_it_was(
    catalog: Catalog, audit: AuditLog
) -> None:
    orders = catalog.dataset("orders")
    location = _first_file(orders)
    before = sha256_file(location)

    def broken(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        raise DatasetIOError("the disk is gone")

    change = _change(location, orders.format, broken)
    with pytest.raises(DatasetIOError):
        change_file(_journal(audit, orders), change, orders, lambda name: pytest.fail("no key"))
    assert sha256_file(location) == before
    assert _outcomes(audit, change.operation) == ["intent", "failure"]


def test_a_rewrite_holding_other_rows_than_planned_is_discarded_before_the_swap(
    catalog: Catalog, audit: AuditLog
) -> None:
    orders = catalog.dataset("orders")
    location = _first_file(orders)
    before = sha256_file(location)
    change = _change(location, orders.format, verify_rows=True)
    change.rows_after = 0  # the plan expects every row gone, the edit drops one
    with pytest.raises(VerificationError, match="would keep"):
        change_file(_journal(audit, orders), change, orders, lambda name: pytest.fail("no key"))
    assert sha256_file(location) == before


def test_a_rewrite_keeping_no_row_deletes_the_file(catalog: Catalog, audit: AuditLog) -> None:
    orders = catalog.dataset("orders")
    location = _first_file(orders)

    def nothing(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, int]:
        return batch.slice(0, 0), batch.num_rows, 0

    done = change_file(_journal(audit, orders), _change(location, orders.format, nothing), orders, print)
    assert done.action == "delete" and done.rows_after == 0 and done.sha256_after is None
    assert not Path(location.path).exists()


def _killed_after_swap(monkeypatch: pytest.MonkeyPatch, audit: AuditLog, dataset: Dataset) -> Change:
    """A change whose swap happened but whose outcome entry was never written."""
    location = _first_file(dataset)
    change = _change(location, dataset.format)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # like a kill: nothing after the swap runs

    with monkeypatch.context() as patch:
        patch.setattr(journal, "_record_outcome", killed)
        with pytest.raises(KeyboardInterrupt):
            change_file(_journal(audit, dataset), change, dataset, print)
    return change


def test_an_open_intent_is_recovered_however_many_entries_came_after_it(
    catalog: Catalog, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = catalog.dataset("orders")
    change = _killed_after_swap(monkeypatch, audit, orders)
    audit.append_many([{"action": "other.work", "details": {"n": i}} for i in range(10_050)])
    recovered = recover(_journal(audit, orders), orders, print, None, redone=lambda op: False)
    assert [(c.uri, c.recovered, c.sha256_before) for c in recovered] == [
        (change.location.uri, True, change.sha256)
    ]
    assert recovered[0].sha256_after == sha256_file(change.location)
    assert _outcomes(audit, change.operation) == ["intent", "success"]
    assert (
        recover(_journal(audit, orders), orders, print, None, redone=lambda op: False) == []
    )  # settled once


def test_a_version_someone_else_wrote_after_a_kill_is_not_claimed_as_recovered(
    catalog: Catalog, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = catalog.dataset("orders")
    change = _killed_after_swap(monkeypatch, audit, orders)
    # Another writer replaces the version this operation wrote with one of its own (its rows three times).
    ours = pq.read_table(change.location.path)
    pq.write_table(pa.concat_tables([ours, ours, ours]), change.location.path)
    assert _rows(change.location, orders.format) == 3 * change.rows_after > 0
    assert recover(_journal(audit, orders), orders, print, None, redone=lambda op: False) == []
    outcomes = [e.data for e in audit.entries() if e.data["details"].get("operation") == change.operation]
    assert [o["outcome"] for o in outcomes] == ["intent", "failure"]
    assert "another writer" in outcomes[-1]["details"]["error"]
    assert not any(o["details"].get("recovered") for o in outcomes)


def test_an_unchanged_file_is_left_to_the_run_that_redoes_it_else_closed_as_skipped(
    catalog: Catalog, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = catalog.dataset("orders")
    location = _first_file(orders)
    change = _change(location, orders.format)
    with monkeypatch.context() as patch:
        patch.setattr(journal, "open_rewrite", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            change_file(_journal(audit, orders), change, orders, print)
    assert recover(_journal(audit, orders), orders, print, None, redone={change.operation}.__contains__) == []
    assert _outcomes(audit, change.operation) == ["intent"]  # left open for this run to finish
    assert recover(_journal(audit, orders), orders, print, None, redone=lambda op: False) == []
    assert _outcomes(audit, change.operation) == ["intent", "skipped"]


def test_an_intent_whose_version_another_operation_changed_is_skipped_not_claimed(
    catalog: Catalog, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = catalog.dataset("orders")
    location = _first_file(orders)
    first = _change(location, orders.format, variant=("cutoff-1",))
    with monkeypatch.context() as patch:
        patch.setattr(journal, "open_rewrite", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            change_file(_journal(audit, orders), first, orders, print)
    second = _change(location, orders.format, variant=("cutoff-2",))
    change_file(_journal(audit, orders), second, orders, print)  # the same version, changed by another
    assert recover(_journal(audit, orders), orders, print, None, redone=lambda op: False) == []
    skipped = [e.data for e in audit.entries() if e.data["outcome"] == "skipped"]
    assert [s["details"]["superseded_by"] for s in skipped] == [second.operation]


def test_operation_ids_are_per_file_version_and_scopes_do_not_mix(catalog: Catalog, audit: AuditLog) -> None:
    assert operation_id("file:///a", "x") == operation_id("file:///a", "x")
    assert operation_id("file:///a", "x") != operation_id("file:///a", "y")
    version = operation_id("file:///a", "x")
    assert operation_id("file:///a", "x", "cutoff").startswith(version + "-")
    orders = catalog.dataset("orders")
    _journal(audit, orders, "test.change:orders_eu").record("abc", "intent", inputs=[], rows=0)
    assert _journal(audit, orders).operations() == {}


def test_owns_limits_the_settling_to_the_intents_on_the_files_it_accepts(
    catalog: Catalog, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders = catalog.dataset("orders")
    change = _killed_after_swap(monkeypatch, audit, orders)
    mine = change.location.uri
    others = recover(
        _journal(audit, orders), orders, print, None, redone=lambda op: False, owns=lambda uri: uri != mine
    )
    assert others == [] and _outcomes(audit, change.operation) == ["intent"]  # another task's file: left open
    settled = recover(
        _journal(audit, orders), orders, print, None, redone=lambda op: False, owns={mine}.__contains__
    )
    assert [(c.uri, c.recovered) for c in settled] == [(mine, True)]
    assert _outcomes(audit, change.operation) == ["intent", "success"]
