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
    checkpoint kept outside the database; fail the task on any finding. Verification opens the log
    read-only; the trusted checkpoint is replaced only after a successful verification, with a checkpoint
    the log signs only over a history consistent with the one verified.

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
        """Verify read-only; raise ``AuditLogError`` naming every finding. Only a verified log is then
        recorded, checkpointed and copied to the trusted checkpoint."""
        from airflow_aisec.hooks.audit import AuditLogHook

        # "" means the configured file; None means no trusted checkpoint at all.
        path = config.get_setting("trusted_checkpoint", self.trusted_checkpoint or None)
        trusted = Path(path) if self.trusted_checkpoint is not None else None
        notes = [trusted.read_text(encoding="utf-8")] if trusted and trusted.exists() else []
        with AuditLogHook(self.audit_conn_id).get_log(create=False) as reader:
            report = reader.verify(notes)
        if not report.ok:
            for finding in report.findings:
                self.log.error("%s", finding)
            try:
                details: dict[str, Any] = {
                    "exit_code": report.exit_code,
                    "checkpoints": report.checkpoints,
                    "trusted_checkpoints": len(notes),
                }
                self.record(context, "audit.verify", outcome="failure", details=details)
            except AuditLogError as e:  # e.g. the log refuses to sign over the history that failed
                self.log.error("%s", e)
            raise AuditLogError(
                f"audit log verification failed (exit code {report.exit_code}): "
                + "; ".join(str(f) for f in report.findings)
            )
        self.log.info("audit log verified: %d entries, %d checkpoints", report.size, report.checkpoints)
        with self.audited(context) as log:
            details_ok: dict[str, Any] = {
                "root": report.root.hex(),
                "checkpoints": report.checkpoints,
                "trusted_checkpoints": len(notes),
            }
            self.record(context, "audit.verify", rows=report.size, details=details_ok)
            log.checkpoint()
            latest = log.latest_checkpoint()
        if trusted is not None and self.update_trusted and latest is not None:
            write_private(trusted, latest[1])
        return {"size": report.size, "root": report.root.hex(), "checkpoints": report.checkpoints}
