"""A data-subject request: who asks for what, checked against the catalog before anything is read.

A request names the subject by one identity of the catalog's ``subjects.identities`` (``email=...``). The
raw identifier and any new values of a rectification exist only in memory: ``DsrRequest.public`` (what is
logged, put in XCom, the audit log and the certificate) carries the subject's pseudonym and the names of the
fields changed, never their values. Error messages name fields, never values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import DsrError

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog, Dataset

REQUEST_TYPES = ("access", "erasure", "rectification")
DEFAULT_DEADLINE_DAYS = 30
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{4,30}$")
# What a subject's pseudonym looks like (``hmac-sha256:<hex>``): a request names the subject by an identifier
# of theirs, never by the pseudonym the audit log shows, which no dataset holds and so would match nothing.
PSEUDONYM = re.compile(r"^\s*hmac-sha256:", re.IGNORECASE)
MAX_VALUE = 1024


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` is written like a subject's pseudonym (in any case, spacing or width)."""
    return PSEUDONYM.match(unicodedata.normalize("NFKC", value)) is not None


@dataclasses.dataclass(frozen=True)
class DsrRequest:
    """One request. ``identity_value`` and ``changes`` are raw personal data: never log them."""

    type: str
    identity_type: str
    identity_value: str = dataclasses.field(repr=False)
    request_id: str
    reason: str = dataclasses.field(default="", repr=False)  # free text: may quote the identifier
    dry_run: bool = False
    changes: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    export_key: str | None = None
    received_at: dt.datetime = dataclasses.field(default_factory=lambda: dt.datetime.now(dt.UTC))
    deadline_days: int = DEFAULT_DEADLINE_DAYS

    @property
    def action(self) -> str:
        """The audit action of this request, e.g. ``dsr.erasure``."""
        return f"dsr.{self.type}"

    @property
    def deadline(self) -> dt.datetime:
        """When the request must be answered by (``deadline_days`` after it was received)."""
        return self.received_at + dt.timedelta(days=self.deadline_days)

    def public(self, pseudonymize: Callable[[str], str]) -> dict[str, Any]:
        """What may be shown and stored: the subject as a pseudonym, changed fields by name only."""
        return {
            "request_id": self.request_id,
            "type": self.type,
            "identity_type": self.identity_type,
            "subject": pseudonymize(self.identity_value),
            "reason": scrub(self.reason, [self.identity_value, *self.changes.values()]),
            "dry_run": self.dry_run,
            "fields": sorted(self.changes),
            "export_key": self.export_key,
            "received_at": self.received_at.isoformat(timespec="seconds"),
            "deadline": self.deadline.isoformat(timespec="seconds"),
        }


def scrub(text: str, secrets_: list[str]) -> str:
    """``text`` with every occurrence of the given raw values replaced by ``[redacted]``."""
    for value in sorted((s for s in secrets_ if s), key=len, reverse=True):
        text = re.sub(re.escape(value), "[redacted]", text, flags=re.IGNORECASE)
    return text


def new_request_id(kind: str, now: dt.datetime | None = None) -> str:
    """A fresh request id such as ``erasure-20261126-3f9a1c2b``."""
    moment = now or dt.datetime.now(dt.UTC)
    return f"{kind}-{moment:%Y%m%d}-{secrets.token_hex(4)}"


def parse_identity(text: str) -> tuple[str, str]:
    """``email=a@example.com`` → (``email``, ``a@example.com``)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise DsrError("identity: expected TYPE=VALUE, e.g. email=jane@example.com or customer_id=C0042")
    return name.strip(), value.strip()


def make_request(
    catalog: Catalog,
    kind: str,
    identity_type: str,
    identity_value: str,
    *,
    request_id: str | None = None,
    reason: str = "",
    dry_run: bool = False,
    changes: Mapping[str, Any] | None = None,
    export_key: str | None = None,
    received_at: dt.datetime | None = None,
    deadline_days: int = DEFAULT_DEADLINE_DAYS,
) -> DsrRequest:
    """A request checked against ``catalog``; ``DsrError`` lists every problem found at once."""
    value = str(identity_value or "").strip()
    rid = request_id or new_request_id(kind if kind in REQUEST_TYPES else "dsr")
    fields = {str(k): v for k, v in (changes or {}).items()}
    problems = _basic_problems(catalog, kind, identity_type, value, rid, reason, deadline_days)
    problems += _kind_problems(catalog, kind, fields, export_key)
    if problems:
        raise DsrError("invalid request: " + "; ".join(problems))
    moment = received_at or dt.datetime.now(dt.UTC)
    return DsrRequest(
        kind, identity_type, value, rid, (reason or "").strip(), bool(dry_run),
        {k: _text(v) for k, v in fields.items()}, export_key,
        moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), deadline_days,
    )  # fmt: skip


def _basic_problems(
    catalog: Catalog, kind: str, identity_type: str, value: str, rid: str, reason: str, deadline_days: int
) -> list[str]:
    problems = []
    if kind not in REQUEST_TYPES:
        problems.append(f"type: {kind!r} is not one of {', '.join(REQUEST_TYPES)}")
    identities = catalog.subjects.identities
    if identity_type not in identities:
        problems.append(
            f"identity type {identity_type!r} is not one of the catalog's: {', '.join(identities)}"
        )
    if not value or len(value) > MAX_VALUE or _CONTROL.search(value):
        problems.append(f"identity value: must be 1 to {MAX_VALUE} printable characters")
    elif is_pseudonym(value):
        problems.append(
            "identity value: is a pseudonym (hmac-sha256:...), not an identifier; name the subject by the "
            "identifier itself (pseudonyms are for looking entries up: aisec audit show --subject-id)"
        )
    if not REQUEST_ID.match(rid):
        problems.append(
            "request_id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if _CONTROL.search((reason or "").replace("\n", " ")):
        problems.append("reason: must not contain control characters")
    if deadline_days < 1:
        problems.append("deadline_days: must be at least 1")
    return problems


def _kind_problems(
    catalog: Catalog, kind: str, fields: Mapping[str, Any], export_key: str | None
) -> list[str]:
    problems = []
    if kind == "rectification":
        if not fields:
            problems.append("rectification: name at least one field to change (field=value)")
        problems += check_changes(catalog, fields)
    elif fields:
        problems.append(f"{kind}: only a rectification changes fields")
    if kind == "access":
        if not export_key:
            problems.append("access: name the key the export is encrypted with (export_key)")
        elif export_key not in catalog.keys:
            declared = ", ".join(sorted(catalog.keys)) or "none"
            problems.append(f"export_key: {export_key!r} is not declared in the catalog's keys ({declared})")
    return problems


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# --- rectification ------------------------------------------------------------------------------------------


def rectifiable(catalog: Catalog, dataset: Dataset, column: str) -> str | None:
    """Why ``dataset.column`` may not be rectified, or None when it may."""
    spec = dataset.columns[column]
    referenced = any(
        (dataset.name, column) == target
        for other in catalog.datasets.values()
        for target in other.reference_targets().values()
    )
    if column == dataset.primary_key or column in dataset.references or referenced:
        return "it is a key other data is linked by; an erasure, not a rectification, removes it"
    if spec.pii == "free_text":
        return "free text is not a field; erase it instead"
    if spec.rectify is False:
        return "the catalog marks it `rectify: false`"
    if spec.pii is None and spec.rectify is not True:
        return "it is not personal data (the catalog would need `rectify: true`)"
    return None


def check_changes(catalog: Catalog, changes: Mapping[str, Any]) -> list[str]:
    """Problems with the fields a rectification would change (names only; values are never quoted)."""
    problems = []
    for name, value in changes.items():
        holders = [d for d in catalog.datasets.values() if name in d.columns]
        if not holders:
            problems.append(f"field {name!r}: no dataset of the catalog has such a column")
            continue
        for dataset in holders:
            why = rectifiable(catalog, dataset, name)
            if why:
                problems.append(f"field {name!r} of dataset {dataset.name}: cannot be rectified: {why}")
                continue
            spec = dataset.columns[name]
            problem = check_value(spec.pii, spec.type, value)
            if problem:
                problems.append(f"field {name!r} of dataset {dataset.name}: the new value {problem}")
    return sorted(set(problems))


def check_value(entity: str | None, declared_type: str | None, value: Any) -> str | None:
    """What is wrong with a new value for a column holding ``entity`` of ``declared_type``, or None."""
    text = _text(value).strip() if value is not None else ""
    if not text or len(text) > MAX_VALUE or _CONTROL.search(text):
        return f"must be 1 to {MAX_VALUE} printable characters"
    if entity == "EMAIL_ADDRESS" and not _EMAIL.match(text):
        return "is not an e-mail address"
    if entity == "PHONE_NUMBER" and not _PHONE.match(text):
        return "is not a phone number"
    kind = (declared_type or ("timestamp" if entity == "DATE_TIME" else "")).lower()
    checks: dict[str, Callable[[str], object]] = {
        "date": dt.date.fromisoformat,
        "timestamp": dt.datetime.fromisoformat,
        "int": int,
        "integer": int,
        "float": float,
        "double": float,
    }
    if kind in checks:
        try:
            checks[kind](text)
        except ValueError:
            return f"is not a valid {kind}"
    if kind in ("bool", "boolean") and text.lower() not in ("true", "false"):
        return "is not true or false"
    return None
