"""The audit-log page's view model: filters, subjects only as pseudonyms, and checked inclusion proofs."""

from __future__ import annotations

import pytest
from review_support import run_actor

from airflow_aisec.audit import AuditLog, EntryQuery
from airflow_aisec.review import ReviewInputError
from airflow_aisec.review.entries import entry_detail, list_entries, lookup_subject, parse_query, query_params


def _seed(log: AuditLog) -> None:
    log.append("pii.mask", inputs=[{"dataset": "raw"}], outputs=[{"dataset": "masked"}], rows=3,
               actor=run_actor("pipeline", "run-1"))  # fmt: skip
    log.append(
        "dsr.erasure", dataset="raw", subject="C0042", details={"request_id": "req-1", "stage": "request"}
    )
    log.append("retention.delete", dataset="raw", outcome="noop", rows=0)
    log.checkpoint()


def test_filters_become_a_query_and_empty_ones_are_no_filter() -> None:
    query = parse_query({"action": "dsr.", "dataset": " raw ", "outcome": ""})
    assert query == EntryQuery(action="dsr.", dataset="raw")
    assert query_params(query) == {"action": "dsr.", "dataset": "raw"}


def test_a_raw_subject_in_the_filters_is_refused_without_being_quoted() -> None:
    with pytest.raises(ReviewInputError) as raised:
        parse_query({"subject": "jane@example.com"})
    assert "jane@example.com" not in str(raised.value)
    assert parse_query({"subject": "hmac-sha256:" + "a" * 64}).subject == "hmac-sha256:" + "a" * 64


def test_entries_are_listed_newest_first_with_their_datasets_and_run(log: AuditLog) -> None:
    _seed(log)
    view = list_entries(log, EntryQuery())
    assert [r.index for r in view.rows] == [2, 1, 0] and view.size == 3
    mask = view.rows[-1]
    assert mask.datasets == ["masked", "raw"] and (mask.dag_id, mask.run_id) == ("pipeline", "run-1")
    assert [r.index for r in list_entries(log, EntryQuery(action="dsr.")).rows] == [1]


def test_a_subject_is_looked_up_by_its_pseudonym_only(log: AuditLog) -> None:
    _seed(log)
    query = lookup_subject(log, "  C0042 ")
    assert (
        query.subject is not None and query.subject.startswith("hmac-sha256:") and "C0042" not in repr(query)
    )
    rows = list_entries(log, query).rows
    assert [r.request_id for r in rows] == ["req-1"] and rows[0].subject == query.subject
    with pytest.raises(ReviewInputError):
        lookup_subject(log, "   ")
    with pytest.raises(ReviewInputError) as raised:  # prefixed like a pseudonym: would reach a URL as is
        lookup_subject(log, "hmac-sha256:jane@example.com")
    assert "jane" not in str(raised.value)


def test_a_malformed_time_is_bad_input(log: AuditLog) -> None:
    with pytest.raises(ReviewInputError):
        list_entries(log, EntryQuery(since="yesterday-ish"))


def test_an_entry_detail_carries_a_proof_checked_as_an_outsider_would(log: AuditLog) -> None:
    _seed(log)
    detail = entry_detail(log, 1)
    assert detail is not None and detail.proof_ok, detail.proof_problems
    assert detail.proof is not None and detail.proof["size"] == 3 and len(detail.proof_checks) == 2
    assert entry_detail(log, 3) is None and entry_detail(log, -1) is None
