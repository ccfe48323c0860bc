"""A data-subject request as given to ``aisec dsr run`` and ``submit``, checked before a catalog is read.

The raw values (the subject's identifier, a rectification's new values) never reach the screen: ``safe``
scrubs them from every message shown.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from airflow_aisec.cli.common import fail
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.dsr.request import DsrRequest


class RequestType(enum.StrEnum):
    """What the subject asks for."""

    access = "access"
    erasure = "erasure"
    rectification = "rectification"


@dataclasses.dataclass(frozen=True)
class Asked:
    """A request as given on the command line, before it is checked against a catalog."""

    kind: str
    identity_type: str
    identity_value: str = dataclasses.field(repr=False)
    changes: dict[str, str] = dataclasses.field(repr=False)
    request_id: str | None
    reason: str
    dry_run: bool
    export_key: str | None

    @property
    def secrets(self) -> list[str]:
        """The raw values that must never be shown."""
        return [self.identity_value, *self.changes.values()]

    def make(self, catalog: Catalog, deadline_days: int | None = None) -> DsrRequest:
        """The request checked against ``catalog``; exit 2 with every problem (named, never quoted)."""
        from airflow_aisec.dsr.request import DEFAULT_DEADLINE_DAYS, make_request

        try:
            return make_request(
                catalog, self.kind, self.identity_type, self.identity_value, request_id=self.request_id,
                reason=self.reason, dry_run=self.dry_run, changes=self.changes or None,
                export_key=self.export_key, deadline_days=deadline_days or DEFAULT_DEADLINE_DAYS,
            )  # fmt: skip
        except AisecError as e:
            raise fail(safe(str(e), self.secrets)) from None


def parse_asked(
    kind: RequestType,
    identity: str,
    changes: list[str] | None,
    request_id: str | None,
    reason: str,
    dry_run: bool,
    export_key: str | None,
) -> Asked:
    """Check what needs no catalog: the identity's form, ``--set`` pairs, the reason and the request id."""
    from airflow_aisec.dsr.request import MAX_VALUE, REQUEST_ID, parse_identity

    try:
        identity_type, identity_value = parse_identity(identity)
    except AisecError as e:
        raise fail("--identity: " + str(e).removeprefix("identity: ")) from None
    if len(identity_value) > MAX_VALUE or not identity_value.isprintable():
        raise fail(f"--identity: the value must be 1 to {MAX_VALUE} printable characters")
    fields: dict[str, str] = {}
    for item in changes or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise fail("--set: expected field=value, e.g. --set phone=+1-212-555-0199")
        fields[name.strip()] = value.strip()
    secrets = [identity_value, *fields.values()]
    if fields and kind is not RequestType.rectification:
        raise fail(f"--set: only a rectification changes fields, not {kind.value}")
    if not reason.strip():
        raise fail("--reason must not be empty")
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise fail(safe(f"--request-id {request_id!r}: 1 to 64 letters, digits, '.', '_' or '-'", secrets))
    return Asked(
        kind.value, identity_type, identity_value, fields, request_id, reason.strip(), dry_run, export_key
    )


def safe(message: str, secrets: list[str]) -> str:
    """``message`` with each of the raw values ``secrets`` scrubbed out."""
    from airflow_aisec.dsr.request import scrub

    return scrub(message, secrets)
