"""``AuditLogHook``: the audit log behind an Airflow connection (PostgreSQL or SQLite)."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_aisec import config
from airflow_aisec.exceptions import AuditLogError

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog

CONN_TYPE = "aisec_audit"


def audit_uri(target: str | None = None) -> str:
    """The audit log URI of ``target``: a URI as is, an Airflow connection id resolved through its
    connection; None means ``[aisec] audit_log`` (itself a URI or a connection id)."""
    target = target or config.get_setting("audit_log")
    return target if "://" in target else connection_uri(target)


def connection_uri(conn_id: str) -> str:
    """The audit log URI of an Airflow connection: ``aisec_audit``/``postgres`` give PostgreSQL, ``sqlite``
    gives SQLite; the ``uri`` extra, when set, is used as is."""
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    if extra.get("uri"):
        return str(extra["uri"])
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn.conn_type in (CONN_TYPE, "postgres", "postgresql"):
        # Percent-encoded: a password holding "@", "/" or ":" must neither break the URI nor escape redaction.
        auth = urllib.parse.quote(conn.login or "", safe="")
        if conn.password:
            auth += f":{urllib.parse.quote(conn.password, safe='')}"
        netloc = f"{auth}@{conn.host}" if auth else str(conn.host)
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql://{netloc}{port}/{conn.schema or 'postgres'}"
    raise AuditLogError(f"connection {conn_id!r} of type {conn.conn_type!r} cannot hold an audit log")


class AuditLogHook(BaseHook):
    """Open the audit log of an Airflow connection, or the configured ``[aisec] audit_log`` when None.

    :param audit_conn_id: Connection of type ``aisec_audit`` (PostgreSQL host, login, password, schema =
        database), ``postgres`` or ``sqlite``; None uses ``[aisec] audit_log``.
    """

    conn_name_attr = "audit_conn_id"
    default_conn_name = "aisec_audit_default"
    conn_type = CONN_TYPE
    hook_name = "AISec audit log"

    def __init__(self, audit_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit_conn_id = audit_conn_id

    def get_log(self, **kwargs: Any) -> AuditLog:
        """Open the log; keyword arguments go to ``AuditLog.open`` (keyring, actor, ...)."""
        from airflow_aisec.audit import AuditLog

        return AuditLog.open(audit_uri(self.audit_conn_id), **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Label the PostgreSQL fields of the connection form."""
        return {
            "hidden_fields": [],
            "relabeling": {"schema": "Database", "host": "Host (PostgreSQL)"},
            "placeholders": {"extra": '{"uri": "sqlite:////path/to/audit.db"}'},
        }
