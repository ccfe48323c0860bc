"""The time filter is exact when entry times are out of order (several writers whose clocks differ), within
``TIME_SKEW``, and still reads only O(log n) entries to find its window."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_aisec.audit import AuditLog, EntryQuery
from airflow_aisec.audit import log as log_module
from airflow_aisec.audit.query import TIME_SKEW

START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _times(count: int, seed: int) -> list[str]:
    """One entry a second, each off by up to the allowed skew either way (never more than TIME_SKEW older
    than any entry before it)."""
    rng = random.Random(seed)
    half = TIME_SKEW.total_seconds() / 2
    return [
        (START + dt.timedelta(seconds=i + rng.uniform(-half, half))).isoformat(timespec="microseconds")
        for i in range(count)
    ]


@pytest.fixture
def shuffled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AuditLog, list[str]]]:
    times = _times(2000, seed=7)
    assert times != sorted(times)  # the log really is out of order
    given = iter(times)
    monkeypatch.setattr(log_module, "now", lambda: next(given))
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "k.json")) as log:
        log.append_many([{"action": "pii.mask", "dataset": f"d{i % 3}"} for i in range(2000)])
        yield log, times


@pytest.mark.parametrize(("since", "until"), [(100, 400), (0, 60), (1500, 2100), (700, 720), (1999, None)])
def test_the_time_filter_returns_exactly_the_entries_in_the_window_when_times_are_out_of_order(
    shuffled: tuple[AuditLog, list[str]], since: int, until: int | None
) -> None:
    log, times = shuffled
    lo = (START + dt.timedelta(seconds=since)).isoformat(timespec="microseconds")
    hi = (
        (START + dt.timedelta(seconds=until)).isoformat(timespec="microseconds")
        if until is not None
        else None
    )
    expected = [i for i, t in enumerate(times) if t >= lo and (hi is None or t < hi)][::-1]
    found = [e.index for e in log.newest(EntryQuery(since=lo, until=hi), 5000)]
    assert found == expected and found
    with_dataset = [e.index for e in log.newest(EntryQuery(since=lo, until=hi, dataset="d1"), 5000)]
    assert with_dataset == [i for i in expected if i % 3 == 1]


def test_the_window_is_found_by_binary_search_not_a_scan(
    shuffled: tuple[AuditLog, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, _ = shuffled
    reads = []
    original = type(log.store).entry
    monkeypatch.setattr(type(log.store), "entry", lambda self, i: reads.append(i) or original(self, i))
    since = (START + dt.timedelta(seconds=900)).isoformat()
    log.search(EntryQuery(since=since, until=(START + dt.timedelta(seconds=950)).isoformat()))
    assert 0 < len(reads) <= 2 * 12  # two binary searches over 2,000 entries


def test_a_time_filtered_page_is_full_and_pages_through_exactly_the_window(
    shuffled: tuple[AuditLog, list[str]],
) -> None:
    log, times = shuffled
    lo = (START + dt.timedelta(seconds=300)).isoformat(timespec="microseconds")
    hi = (START + dt.timedelta(seconds=900)).isoformat(timespec="microseconds")
    query = EntryQuery(since=lo, until=hi)
    first = log.search(query, limit=50)
    assert len(first.entries) == 50  # the entries just outside the window do not leave the page short
    seen, before = [], None
    while True:
        page = log.search(query, before=before, limit=50)
        seen += [e.index for e in page.entries]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [i for i, t in enumerate(times) if lo <= t < hi][::-1]


def test_verify_index_names_an_entry_written_by_a_clock_further_behind_than_the_filter_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = [(START + dt.timedelta(seconds=i)).isoformat(timespec="microseconds") for i in range(20)]
    times[12] = (START - TIME_SKEW).isoformat(timespec="microseconds")  # a writer whose clock is far behind
    given = iter(times)
    monkeypatch.setattr(log_module, "now", lambda: next(given))
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "k.json")) as log:
        log.append_many([{"action": "pii.mask", "dataset": "d"} for _ in range(20)])
    monkeypatch.undo()
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "k.json")) as log:
        log.checkpoint()
        assert log.verify().ok
        report = log.verify(index=True)
    assert [(f.failure.name, f.index) for f in report.findings] == [("REORDERED", 12)]
    assert "a time filter may miss it" in str(report.findings[0])
