"""``GovernanceReportOperator``: regenerate the DPIA and the records of processing, and say what changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class GovernanceReportOperator(AisecCatalogOperator):
    """
    Write the DPIA (Markdown, HTML, PDF, CNIL PIA tool JSON) and the records of processing (CSV, JSON) of the
    catalog, from the audit log opened read-only, into a folder; compare with the previous run.

    Every file is replaced atomically. ``changes.json`` beside them, the task log and the returned XCom say
    which datasets, purposes and PII columns were added or removed since the previous run: names only,
    never a value.

    :param folder: Folder of the reports; default ``[aisec] governance_reports``. (templated)
    :param formats: DPIA formats among ``md``, ``html``, ``pdf``, ``cnil`` (``pdf`` needs the
        ``governance`` extra).
    :param findings: A compliance check's JSON result (``aisec compliance check --json``) to include; None
        for none. (templated)
    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Values of ``{name}`` placeholders, over ``[aisec] catalog_vars``. (templated)
    :param audit_conn_id: Airflow connection of the audit log; default ``[aisec] audit_log``.
    """

    template_fields: Sequence[str] = ("folder", "findings", "catalog", "variables")
    ui_color = "#eef0fb"

    def __init__(
        self,
        *,
        folder: str | None = None,
        formats: Sequence[str] = ("md", "html", "pdf", "cnil"),
        findings: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.folder = folder
        self.formats = formats
        self.findings = findings

    def execute(self, context: Context) -> dict[str, Any]:
        """Regenerate both into the folder; return the folder, the files written and the changes."""
        from airflow_aisec.governance.dpia import load_findings
        from airflow_aisec.governance.dpia.output import parse_formats, regenerate, summary
        from airflow_aisec.hooks.audit import AuditLogHook
        from airflow_aisec.review.assessment import assess

        formats = parse_formats(",".join(self.formats))
        folder = config.get_setting("governance_reports", self.folder or None)
        catalog = self._load_catalog()
        findings = load_findings(self.findings) if self.findings else None
        with AuditLogHook(self.audit_conn_id).get_log(create=False) as log:
            assessment = assess(catalog, log, findings)
        written, changes = regenerate(assessment, folder, formats)
        self.log.info("DPIA and records of processing written to %s: %d files", folder, len(written))
        self.log.info("changes since %s: %s", changes["since"] or "the first run", summary(changes))
        for kind in ("datasets", "purposes", "pii_columns"):
            for how in ("added", "removed"):
                if changes[kind][how]:
                    self.log.info("%s %s: %s", kind, how, ", ".join(changes[kind][how]))
        levels = {r.key: r.level for r in assessment.risks}
        return {"folder": folder, "files": [p.name for p in written], "changes": changes, "risks": levels}
