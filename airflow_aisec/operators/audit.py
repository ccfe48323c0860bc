"""``AuditVerifyOperator``: verify the audit log on a schedule and keep a trusted checkpoint outside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.exceptions import AuditLogError
from airflow_aisec.files import write_private
from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class AuditVerifyOperator(AisecBaseOperator):
    """
    Recompute every entry hash and root, check every checkpoint signature, and compare with a trusted
    checkpoint kept outside the database; fail the task on any finding.

    :param trusted_checkpoint: File holding the last signed checkpoint verified, kept away from the audit
        database (another volume or host); default ``[aisec] trusted_checkpoint``, None for none. Created on
        the first run. (templated)
    :param update_trusted: After a successful verification, replace the trusted checkpoint with a freshly
        signed one, so the next run also catches a truncated tail.
    :param audit_conn_id: Airflow connection of the audit log; default ``[aisec] audit_log``.
    """

    template_fields: Sequence[str] = ("trusted_checkpoint",)
    ui_color = "#fff4e0"

    def __init__(
        self, *, trusted_checkpoint: str | None = "", update_trusted: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.trusted_checkpoint = trusted_checkpoint
        self.update_trusted = update_trusted

    def execute(self, context: Context) -> dict[str, Any]:
        """Verify; raise ``AuditLogError`` naming every finding."""
        # "" means the configured file; None means no trusted checkpoint at all.
        path = config.get_setting("trusted_checkpoint", self.trusted_checkpoint or None)
        trusted = Path(path) if self.trusted_checkpoint is not None else None
        notes = [trusted.read_text(encoding="utf-8")] if trusted and trusted.exists() else []
        with self.audited(context) as log:
            report = log.verify(notes)
            if not report.ok:
                for finding in report.findings:
                    self.log.error("%s", finding)
                self.record(
                    context, "audit.verify", outcome="failure", details={"exit_code": report.exit_code}
                )
                raise AuditLogError(
                    f"audit log verification failed (exit code {report.exit_code}): "
                    + "; ".join(str(f) for f in report.findings)
                )
            self.log.info("audit log verified: %d entries, %d checkpoints", report.size, report.checkpoints)
            self.record(context, "audit.verify", rows=report.size, details={"root": report.root.hex()})
            log.checkpoint()
            latest = log.latest_checkpoint()
        if trusted is not None and self.update_trusted and latest is not None:
            write_private(trusted, latest[1])
        return {"size": report.size, "root": report.root.hex(), "checkpoints": report.checkpoints}
