"""The audit-log page: entries filtered and paginated, a subject looked up by pseudonym, one entry's proof."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit import Checkpoint, EntryQuery, verify_inclusion
from airflow_aisec.exceptions import AisecError, AuditLogError

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog, Entry

PSEUDONYM_PREFIX = "hmac-sha256:"
PAGE_SIZE = 50
# The filters a page URL may carry; ``subject`` only ever as a pseudonym.
FILTERS = ("action", "dataset", "dag_id", "run_id", "request_id", "outcome", "since", "until", "subject")
_MAX_FILTER = 500


class ReviewInputError(AisecError, ValueError):
    """A filter or form value the pages cannot use; the message never quotes a subject value."""


def parse_query(params: Mapping[str, str]) -> EntryQuery:
    """The ``EntryQuery`` of a page's filters (empty values are no filter).

    A ``subject`` must already be a pseudonym: a raw identifier is only accepted by the lookup form (POST),
    so it never reaches a URL; one given here is refused without being echoed.
    """
    values: dict[str, str] = {}
    for name in FILTERS:
        value = (params.get(name) or "").strip()
        if not value:
            continue
        if len(value) > _MAX_FILTER:
            raise ReviewInputError(f"filter {name} is longer than {_MAX_FILTER} characters")
        values[name] = value
    subject = values.get("subject")
    if subject is not None and not well_formed_pseudonym(subject):
        raise ReviewInputError(
            "filter subject takes a pseudonym (hmac-sha256:...); look a subject up with the form instead"
        )
    return EntryQuery(**values)


def well_formed_pseudonym(value: str) -> bool:
    """Whether ``value`` is exactly a subject pseudonym (``hmac-sha256:`` and 64 lower-case hex digits), the
    only form of a subject a URL may carry."""
    digest = value[len(PSEUDONYM_PREFIX) :]
    hex_digits = all(c in "0123456789abcdef" for c in digest)
    return value.startswith(PSEUDONYM_PREFIX) and len(digest) == 64 and hex_digits


def query_params(query: EntryQuery) -> dict[str, str]:
    """The filters of ``query`` as URL parameters (the subject as its pseudonym)."""
    return {name: str(getattr(query, name)) for name in FILTERS if getattr(query, name)}


@dataclass(frozen=True)
class EntryRow:
    """One line of the audit-log page."""

    index: int
    time: str
    action: str
    datasets: list[str]
    outcome: str
    rows: int | None
    actor: str
    dag_id: str | None
    run_id: str | None
    request_id: str | None
    subject: str | None


@dataclass(frozen=True)
class EntryListView:
    """A page of entries, newest first, with what the next page needs."""

    rows: list[EntryRow]
    query: EntryQuery
    next_before: int | None
    size: int


def field_map(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The mapping an entry holds under ``name`` (``actor``, ``details``), or an empty one."""
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def entry_datasets(data: Mapping[str, Any]) -> list[str]:
    """Every dataset an entry names: its own, its inputs' and outputs'."""
    names = {str(data["dataset"])} if data.get("dataset") else set()
    for side in ("inputs", "outputs"):
        for ref in data.get(side) or []:
            if isinstance(ref, Mapping) and ref.get("dataset"):
                names.add(str(ref["dataset"]))
    return sorted(names)


def actor_text(actor: Mapping[str, Any]) -> str:
    """Who acted, in one line: the task (and try) of a DAG run, or the account and host."""
    if actor.get("kind") == "airflow":
        return f"{actor.get('dag_id')}.{actor.get('task_id')} (try {actor.get('try')})"
    where = f"@{actor['host']}" if actor.get("host") else ""
    kind = f" ({actor['kind']})" if actor.get("kind") not in (None, "cli") else ""
    return f"{actor.get('user')}{where}{kind}"


def entry_row(entry: Entry) -> EntryRow:
    """The page line of one entry."""
    data = entry.data
    actor, details = field_map(data, "actor"), field_map(data, "details")
    rows = data.get("rows")
    return EntryRow(
        index=entry.index,
        time=str(data.get("time", ""))[:19].replace("T", " "),
        action=entry.action,
        datasets=entry_datasets(data),
        outcome=str(data.get("outcome", "success")),
        rows=rows if isinstance(rows, int) else None,
        actor=actor_text(actor),
        dag_id=_text(actor.get("dag_id")),
        run_id=_text(actor.get("run_id")),
        request_id=_text(details.get("request_id")),
        subject=_text(data.get("subject")),
    )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def list_entries(
    log: AuditLog, query: EntryQuery, before: int | None = None, limit: int = PAGE_SIZE
) -> EntryListView:
    """One page of the entries matching ``query`` below index ``before``, newest first."""
    if before is not None and before < 0:
        raise ReviewInputError("before must be an entry index (0 or more)")
    try:
        page = log.search(query, before=before, limit=limit)
    except AuditLogError as e:  # a malformed time, named by the log
        raise ReviewInputError(str(e)) from None
    return EntryListView([entry_row(e) for e in page.entries], query, page.next_before, log.size())


def lookup_subject(log: AuditLog, identity: str) -> EntryQuery:
    """The query of every entry about the subject known by ``identity`` (raw or already a pseudonym),
    pseudonymized here with the log's key: only the pseudonym leaves this function."""
    value = identity.strip()
    if not value:
        raise ReviewInputError("enter the subject's identity (an id, email address, phone number, ...)")
    if len(value) > _MAX_FILTER:
        raise ReviewInputError(f"the identity is longer than {_MAX_FILTER} characters")
    try:
        pseudonym = log.pseudonym(value)
    except AuditLogError as e:  # no pseudonym key: the message names the log, not the value
        raise ReviewInputError(str(e)) from None
    if not well_formed_pseudonym(pseudonym):  # something merely prefixed like one, passed through as is
        raise ReviewInputError("that is neither an identity nor a pseudonym (hmac-sha256: and 64 hex digits)")
    return EntryQuery(subject=pseudonym)


@dataclass(frozen=True)
class EntryDetail:
    """One entry, everything it records, and its inclusion proof checked against the signed checkpoint."""

    row: EntryRow
    data: dict[str, Any]
    data_json: str
    leaf_hash: str
    proof: dict[str, Any] | None
    proof_checks: list[str] = field(default_factory=list)
    proof_problems: list[str] = field(default_factory=list)

    @property
    def proof_ok(self) -> bool:
        """True when the proof and the checkpoint signature both verified."""
        return self.proof is not None and not self.proof_problems


def entry_detail(log: AuditLog, index: int) -> EntryDetail | None:
    """Entry ``index`` with its proof, or None when the log has no such entry."""
    if index < 0 or index >= log.size():
        return None
    entry = next(iter(log.entries(index, index + 1)), None)
    if entry is None:
        return None
    checks: list[str] = []
    problems: list[str] = []
    try:
        proof: dict[str, Any] | None = log.prove(index)
    except AuditLogError as e:
        proof = None
        problems.append(str(e))
    if proof is not None:
        _check_proof(log, proof, checks, problems)
    return EntryDetail(
        row=entry_row(entry),
        data=entry.data,
        data_json=json.dumps(
            {"index": entry.index, **entry.data}, indent=2, sort_keys=True, ensure_ascii=False
        ),
        leaf_hash=entry.leaf_hash.hex(),
        proof=proof,
        proof_checks=checks,
        proof_problems=problems,
    )


def _check_proof(log: AuditLog, proof: Mapping[str, Any], checks: list[str], problems: list[str]) -> None:
    """Check the proof as an outside verifier would: the checkpoint's signature, then the audit path."""
    body = _opened(log, str(proof["checkpoint"]))
    if body is None:
        problems.append("the checkpoint's signature does not verify with the log's key")
        return
    checkpoint = Checkpoint.parse(body)
    checks.append(f"checkpoint of {checkpoint.size} entries signed with the log's key")
    try:
        leaf = base64.b64decode(str(proof["entry"]), validate=True)
        path = [bytes.fromhex(h) for h in proof["proof"]]
    except (binascii.Error, ValueError):
        problems.append("the proof is malformed")
        return
    if verify_inclusion(leaf, int(proof["index"]), checkpoint.size, path, checkpoint.root):
        checks.append(f"entry included in that checkpoint's tree ({len(path)} hashes)")
    else:
        problems.append("the inclusion proof does not lead to the checkpoint's root")


def _opened(log: AuditLog, note: str) -> bytes | None:
    for verifier in log.verifiers:
        try:
            return verifier.open(note)
        except AisecError:
            continue
    return None
