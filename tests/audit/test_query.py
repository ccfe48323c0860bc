"""Filtered pages of the audit log: every filter, keyset pagination, subjects by any identity, and an index
that cannot pass off an entry as matching."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_audit_cli import app, invoke, runner
from test_audit_tamper import tamper

from airflow_aisec.audit import AuditLog, EntryQuery, Failure
from airflow_aisec.exceptions import AuditLogError

ACTIONS = ("pii.mask", "dataset.encrypt", "dsr.erasure", "dsr.access", "retention.delete")


def _record(i: int) -> dict[str, object]:
    return {
        "action": ACTIONS[i % len(ACTIONS)],
        "dataset": f"ds{i % 4}",
        "inputs": [{"dataset": f"src{i % 3}", "uri": f"file:///lake/src{i % 3}/part-{i}.parquet"}],
        "outcome": "failure" if i % 17 == 0 else "success",
        "actor": {"kind": "airflow", "dag_id": f"dag{i % 2}", "run_id": f"run{i % 5}", "task_id": "t"},
        "details": {"request_id": f"req{i % 6}"} if ACTIONS[i % len(ACTIONS)].startswith("dsr.") else None,
    }


@pytest.fixture
def filled(log_uri: str, keyring_path: Path) -> Iterator[AuditLog]:
    log = AuditLog.open(log_uri, keyring=str(keyring_path))
    log.append_many([_record(i) for i in range(400)])
    yield log
    log.close()


def _expected(log: AuditLog, keep) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.index for e in log.entries() if keep(e.data)][::-1]


def _all_pages(log: AuditLog, query: EntryQuery, limit: int) -> list[int]:
    seen, before = [], None
    while True:
        page = log.search(query, before=before, limit=limit)
        assert len(page.entries) <= limit
        seen += [e.index for e in page.entries]
        if page.next_before is None:
            return seen
        before = page.next_before


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        (EntryQuery(), lambda d: True),
        (EntryQuery(action="dsr."), lambda d: d["action"].startswith("dsr.")),
        (EntryQuery(action="dsr.access"), lambda d: d["action"] == "dsr.access"),
        (EntryQuery(dataset="src1"), lambda d: d["inputs"][0]["dataset"] == "src1"),
        (
            EntryQuery(dataset="ds2", outcome="failure"),
            lambda d: d["dataset"] == "ds2" and d["outcome"] == "failure",
        ),
        (
            EntryQuery(dag_id="dag1", run_id="run3", action="pii.mask"),
            lambda d: (
                d["actor"]["dag_id"] == "dag1"
                and d["actor"]["run_id"] == "run3"
                and d["action"] == "pii.mask"
            ),
        ),
        (EntryQuery(request_id="req4"), lambda d: (d.get("details") or {}).get("request_id") == "req4"),
        (EntryQuery(action="nothing.here"), lambda d: False),
    ],
)
def test_every_filter_pages_through_exactly_the_matching_entries(
    filled: AuditLog, query: EntryQuery, keep
) -> None:  # type: ignore[no-untyped-def]
    expected = _expected(filled, keep)
    assert _all_pages(filled, query, limit=7) == expected
    assert [e.index for e in filled.search(query, limit=50).entries] == expected[:50]


def test_time_bounds(filled: AuditLog) -> None:
    times = [e.data["time"] for e in filled.entries()]
    since, until = times[100], times[250]
    found = _all_pages(filled, EntryQuery(since=since, until=until, action="pii.mask"), limit=1000)
    assert found == _expected(filled, lambda d: since <= d["time"] < until and d["action"] == "pii.mask")
    assert filled.search(EntryQuery(until="2000-01-01")).entries == []
    with pytest.raises(AuditLogError, match="ISO-8601"):
        filled.search(EntryQuery(since="last tuesday"))
    with pytest.raises(AuditLogError, match="limit"):
        filled.search(EntryQuery(), limit=0)


def test_a_subject_is_found_under_any_identity_with_every_entry_of_their_requests(
    log_uri: str, keyring_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        email, user_id = log.pseudonym("jane@example.com"), log.pseudonym("user-42")
        log.append("dsr.erasure", outcome="intent", subject="jane@example.com", details={"request_id": "r1"})
        log.append("pii.mask", dataset="tickets")  # someone else's business
        log.append("dsr.erasure", details={"request_id": "r1", "identities": [email, user_id]}, subject=email)
        log.append("hold.add", subject="user-42")
        log.append("dsr.access", subject="someone@else.org", details={"request_id": "r2"})
        for raw in ("user-42", "jane@example.com"):
            found = log.search(EntryQuery(subject=log.pseudonym(raw))).entries
            assert [e.index for e in found] == [3, 2, 0], raw
        assert [e.index for e in log.search(EntryQuery(subject=user_id, action="hold.")).entries] == [3]


def test_an_altered_index_cannot_make_an_entry_match(log_uri: str, keyring_path: Path) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        log.append("pii.mask", dataset="a")
        log.append("pii.mask", dataset="b")
    tamper(log_uri, lambda a: a.run("INSERT INTO aisec_terms (kind, value, idx) VALUES ('dataset', 'a', 1)"))
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        assert [e.index for e in log.search(EntryQuery(dataset="a")).entries] == [0]


def test_a_log_written_before_search_terms_gets_them_when_opened_for_writing(
    tmp_path: Path, keyring_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    with AuditLog.open(uri, keyring=str(keyring_path)) as log:
        log.append_many([_record(i) for i in range(30)])
    conn = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    conn.execute("DROP TABLE aisec_terms")
    conn.close()
    with AuditLog.open(uri, keyring=str(keyring_path)) as log:
        assert [e.index for e in log.search(EntryQuery(action="dsr.")).entries] == _expected(
            log, lambda d: d["action"].startswith("dsr.")
        )


def test_cli_show_finds_a_request_made_by_email_from_the_user_id(tmp_path: Path) -> None:
    uri, keyring = f"sqlite:///{tmp_path / 'audit.db'}", str(tmp_path / "keys.json")
    with AuditLog.open(uri, keyring=keyring) as log:
        email, user_id = log.pseudonym("jane@example.com"), log.pseudonym("user-42")
        log.append("dsr.erasure", outcome="intent", subject="jane@example.com", details={"request_id": "r1"})
        log.append("dsr.erasure", subject=email, details={"request_id": "r1", "identities": [email, user_id]})
        log.append("pii.mask", dataset="tickets")
    args = ["--log", uri, "--keyring", keyring, "audit", "show", "--json"]
    found = json.loads(invoke([*args, "--subject-id", "user-42"]))
    assert [e["index"] for e in found] == [0, 1]
    assert json.loads(invoke([*args, "--outcome", "intent"]))[0]["index"] == 0
    assert [e["index"] for e in json.loads(invoke([*args, "--action", "dsr.", "--limit", "1"]))] == [1]


def test_verify_with_index_finds_an_entry_hidden_from_a_subject_lookup(
    log_uri: str, keyring_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        log.append("pii.mask", dataset="a")
        log.append("dsr.erasure", subject="jane@example.com", details={"request_id": "r1"})
        log.append("pii.mask", dataset="b")
        log.checkpoint()
        assert log.verify(index=True).ok
        subject = log.pseudonym("jane@example.com")
    tamper(log_uri, lambda a: a.run("DELETE FROM aisec_terms WHERE kind = 'subject' AND idx = 1"))
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        assert [e.index for e in log.search(EntryQuery(subject=subject)).entries] == []  # hidden...
        assert log.verify().ok  # the entries themselves are intact
        report = log.verify(index=True)  # ...and found
        assert report.exit_code == Failure.MODIFIED and [f.index for f in report.findings] == [1]
    args = ["--log", log_uri, "--keyring", str(keyring_path), "audit", "verify"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, [*args, "--index"]).exit_code == Failure.MODIFIED


def test_a_subject_is_linked_across_any_number_of_entries_and_only_by_what_entries_say(
    log_uri: str, keyring_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        email, user_id = log.pseudonym("jane@example.com"), log.pseudonym("user-42")
        log.append("dsr.erasure", outcome="intent", subject="jane@example.com", details={"request_id": "r1"})
        log.append("dsr.erasure", subject=email, details={"request_id": "r1", "identities": [email, user_id]})
        # More than a page of later entries about the same person, under the other identity.
        log.append_many([{"action": "hold.add", "subject": "user-42"} for _ in range(1_100)])
        other = log.append("dsr.access", subject="someone@else.org", details={"request_id": "r2"})
        found = {e.index for e in log.newest(EntryQuery(subject=user_id), 5_000)}
        assert {0, 1} <= found and len(found) == 1_102 and other not in found
    # An index row claiming the other person's entry is about this subject ties nobody to them.
    tamper(
        log_uri,
        lambda a: a.run(
            "INSERT INTO aisec_terms (kind, value, idx) VALUES ('subject', ?, ?)", user_id, other
        ),
    )
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        found = {e.index for e in log.newest(EntryQuery(subject=user_id), 5_000)}
        assert other not in found and len(found) == 1_102
