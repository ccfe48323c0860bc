"""Filtered, paginated reading of an audit log, newest first, through its search terms.

A page is found by keyset pagination on the entry index over the ``aisec_terms`` index, so the first page
costs the same on a million entries as on a hundred. Terms are derived data: every entry a page returns is
checked against the query from its own bytes, so an altered index can hide entries from a filter but never
pass off an entry as matching one it does not.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit.entry import entry_terms
from airflow_aisec.exceptions import AuditLogError

if TYPE_CHECKING:
    from airflow_aisec.audit.log import Entry
    from airflow_aisec.audit.store import Store

MAX_LIMIT = 1000
TIME_SKEW = dt.timedelta(minutes=5)
"""How far out of order entry times may be (writers on hosts whose clocks differ): an entry is never older
than an entry before it by more than this. The time filter is exact within that bound."""
_TIME_READS = 20  # a time-filtered page reads at most this many pages' worth of entries
_KINDS = {
    "subject": "subject",
    "request_id": "request",
    "run_id": "run",
    "dataset": "dataset",
    "dag_id": "dag",
    "action": "action",
    "outcome": "outcome",
}


@dataclass(frozen=True)
class EntryQuery:
    """What entries to show; every field set must match (an empty query matches every entry)."""

    action: str | None = None
    """An exact action, or a prefix ending in a dot (``dsr.``)."""
    dataset: str | None = None
    """The entry's dataset or the dataset of any of its inputs or outputs."""
    dag_id: str | None = None
    run_id: str | None = None
    request_id: str | None = None
    outcome: str | None = None
    since: str | None = None
    """ISO-8601 date or time (UTC when it has no offset), inclusive."""
    until: str | None = None
    """ISO-8601 date or time, exclusive."""
    subject: str | None = None
    """A subject pseudonym (``AuditLog.pseudonym``): entries about the subject under any of their identities,
    and every entry of their data-subject requests."""

    def is_empty(self) -> bool:
        """True when no field is set."""
        return all(getattr(self, f.name) in (None, "") for f in fields(self))


@dataclass(frozen=True)
class EntryPage:
    """One page of entries, newest first; ``next_before`` is the ``before`` of the next page (None: last)."""

    entries: list[Entry]
    next_before: int | None


def parse_time(value: str) -> str:
    """``value`` (an ISO-8601 date or time) as the log writes times: UTC, microseconds."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AuditLogError(
            f"not an ISO-8601 date or time: {value!r} (e.g. 2026-12-01 or 2026-12-01T08:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).isoformat(timespec="microseconds")


def search(
    store: Store, query: EntryQuery, *, before: int | None = None, limit: int = 50
) -> tuple[list[tuple[int, dict[str, Any], bytes]], int | None]:
    """The entries matching ``query`` with an index below ``before``, newest first, at most ``limit``:
    ``(index, data, leaf hash)`` triples and the ``before`` of the next page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise AuditLogError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    size = store.size()
    hi = size if before is None else max(0, min(before, size))
    since = parse_time(query.since) if query.since else None
    until = parse_time(query.until) if query.until else None
    # Entries from several writers may be out of time order by up to TIME_SKEW: the window of indices is
    # widened by it on both sides, and each entry is then checked against the times themselves.
    lo = _first_at(store, _shifted(since, -TIME_SKEW), 0, hi) if since else 0
    if until:
        hi = _first_at(store, _shifted(until, TIME_SKEW), lo, hi)
    filters = _filters(store, query)
    if lo >= hi:
        return [], None
    wanted = _wanted(filters, since, until)
    page: list[tuple[int, dict[str, Any], bytes]] = []
    # Near the window's ends some entries fall outside it: read on (a bounded number of entries) to fill
    # the page rather than show a short one.
    budget = limit * _TIME_READS if since or until else limit
    while True:
        found = store.search(filters, lo, hi, limit)
        budget -= len(found)
        page += [(e.index, d, e.leaf_hash) for e in found if (d := _data(e.body)) is not None and wanted(d)]
        if len(found) < limit or found[-1].index <= lo:
            return page[:limit], (page[limit - 1][0] if len(page) > limit else None)
        hi = found[-1].index
        if len(page) >= limit:
            return page[:limit], page[limit - 1][0]
        if budget <= 0:
            return page, hi


# A filter: the (kind, value) terms of which an entry must carry at least one.
Filter = tuple[tuple[str, str], ...]


def _filters(store: Store, query: EntryQuery) -> list[Filter]:
    """One filter per field set."""
    filters: list[Filter] = []
    for name, kind in _KINDS.items():
        value = getattr(query, name)
        if value and name != "subject":
            filters.append(((kind, str(value)),))
    if query.subject:
        identities = _identities(store, query.subject)
        requests = sorted(_requests(store, identities))
        # About the subject: entries naming any of their pseudonyms, and every entry of their requests.
        filters.append(tuple([("subject", p) for p in identities] + [("request", r) for r in requests]))
    return filters


def _identities(store: Store, pseudonym: str) -> tuple[str, ...]:
    """``pseudonym`` and every other pseudonym an entry records for the same subject."""
    known = {pseudonym}
    for terms in _terms_of_all(store, (("subject", pseudonym),)):
        known |= {value for kind, value in terms if kind == "subject"}
    return tuple(sorted(known))


def _requests(store: Store, identities: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for terms in _terms_of_all(store, tuple(("subject", p) for p in identities)):
        found |= {value for kind, value in terms if kind == "request"}
    return found


def _terms_of_all(store: Store, accepted: Filter) -> Iterator[set[tuple[str, str]]]:
    """The search terms, read from the entries' own bytes, of every entry carrying one of ``accepted``: all
    of them, page after page (a subject's identities must not stop at the newest thousand entries), and only
    those whose bytes carry the term (an altered index must not tie someone else to the subject)."""
    hi = store.size()
    while hi > 0:
        found = store.search([accepted], 0, hi, MAX_LIMIT)
        for entry in found:
            data = _data(entry.body)
            terms = entry_terms(data) if data is not None else set()
            if any(term in terms for term in accepted):
                yield terms
        if len(found) < MAX_LIMIT:
            return
        hi = found[-1].index


def _data(body: bytes) -> dict[str, Any] | None:
    """An entry's fields; None for bytes that are no entry (``verify`` names them), which match nothing."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _wanted(
    filters: Sequence[Filter], since: str | None, until: str | None
) -> Callable[[Mapping[str, Any]], bool]:
    def wanted(data: Mapping[str, Any]) -> bool:
        terms = entry_terms(data)
        if not all(any(term in terms for term in accepted) for accepted in filters):
            return False
        time = str(data.get("time", ""))
        return (since is None or time >= since) and (until is None or time < until)

    return wanted


def _shifted(time: str, by: dt.timedelta) -> str:
    return (dt.datetime.fromisoformat(time) + by).isoformat(timespec="microseconds")


def _first_at(store: Store, time: str, lo: int, hi: int) -> int:
    """An index ``i`` in ``[lo, hi]`` by binary search (O(log n) reads) such that the entry before it, when
    probed, is older than ``time``, and the entry at it, when probed, is not: with times out of order by at
    most ``TIME_SKEW``, no entry before ``i`` is at ``time + TIME_SKEW`` or later, and none from ``i`` on is
    before ``time - TIME_SKEW``."""
    while lo < hi:
        mid = (lo + hi) // 2
        entry = store.entry(mid)
        written = str(json.loads(entry.body).get("time", "")) if entry is not None else ""
        if written < time:
            lo = mid + 1
        else:
            hi = mid
    return lo
