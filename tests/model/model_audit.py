"""What the model tests read back from an audit log."""

from __future__ import annotations

from airflow_aisec.audit import AuditLog


def entries(uri: str, action: str, keyring: str | None = None) -> list[dict[str, object]]:
    """The data of every entry of ``action`` in the log at ``uri`` (signed with ``keyring``)."""
    with AuditLog.open(uri, keyring=keyring, create=False) as log:
        return [e.data for e in log.entries() if e.data.get("action") == action]
