"""``aisec dpia`` (the data protection impact assessment) and ``aisec ropa`` (the records of processing).

Both read the catalog and the audit log (opened read-only, nothing is written to it) and write files into
``--out``, each replaced atomically; what is printed names files, risks and counts, never a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from airflow_aisec.cli.common import (
    CatalogOpt,
    JsonOpt,
    KeyringOpt,
    LogOpt,
    VarOpt,
    audit_location,
    console,
    fail,
    load_catalog_option,
    open_audit_log,
    print_json,
)
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from airflow_aisec.governance.dpia import Assessment

OutOpt = Annotated[str, typer.Option("--out", help="Folder to write into (created if missing).")]
ControllerOpt = Annotated[
    str | None, typer.Option("--controller", help="Controller's name (overrides the catalog's controller:).")
]
ContactOpt = Annotated[
    str | None, typer.Option("--contact", help="Controller's contact (overrides the catalog).")
]
DpoOpt = Annotated[str | None, typer.Option("--dpo", help="Data protection officer (overrides the catalog).")]


def _assessment(
    ctx: typer.Context,
    catalog: str | None,
    var: list[str] | None,
    log: str | None,
    keyring: str | None,
    findings: str | None,
    controller: dict[str, str | None],
) -> Assessment:
    from airflow_aisec.governance.dpia import load_findings
    from airflow_aisec.review.assessment import assess

    spec = load_catalog_option(ctx, catalog, var)
    target, ring = audit_location(ctx, log, keyring)
    try:
        found = load_findings(findings) if findings else None
        with open_audit_log(target, keyring=ring, create=False) as audit:
            return assess(spec, audit, found, controller=controller)
    except AisecError as e:
        raise fail(str(e)) from None


def dpia(
    ctx: typer.Context,
    out: OutOpt,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated: md, html, pdf, cnil (CNIL PIA tool JSON).")
    ] = "md,html,pdf,cnil",
    findings: Annotated[
        str | None, typer.Option("--findings", help="JSON result of `aisec compliance check --json`.")
    ] = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    log: LogOpt = None,
    keyring: KeyringOpt = None,
    controller: ControllerOpt = None,
    contact: ContactOpt = None,
    dpo: DpoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the DPIA (GDPR Art. 35(7)) of the catalog's processing, from the catalog and the audit log."""
    from airflow_aisec.governance.dpia.output import parse_formats, write_dpia

    try:
        chosen = parse_formats(formats)
    except AisecError as e:
        raise fail(str(e)) from None
    people = {"name": controller, "contact": contact, "dpo": dpo}
    assessment = _assessment(ctx, catalog, var, log, keyring, findings, people)
    try:
        written = write_dpia(assessment, out, chosen)
    except (AisecError, OSError) as e:
        raise fail(f"--out {out}: {e}") from None
    risks = [{"risk": r.key, "score": r.score, "level": r.level} for r in assessment.risks]
    if as_json:
        print_json({"files": [str(p) for p in written], "risks": risks})
        return
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False)
    for risk in risks:
        console.print(f"{risk['risk']}: {risk['score']} ({risk['level']})", markup=False, highlight=False)


def ropa(
    ctx: typer.Context,
    out: OutOpt,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    log: LogOpt = None,
    keyring: KeyringOpt = None,
    controller: ControllerOpt = None,
    contact: ContactOpt = None,
    dpo: DpoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the records of processing activities (GDPR Art. 30(1)) as ropa.csv and ropa.json."""
    from airflow_aisec.governance.dpia.output import write_ropa

    people = {"name": controller, "contact": contact, "dpo": dpo}
    assessment = _assessment(ctx, catalog, var, log, keyring, None, people)
    try:
        written = write_ropa(assessment, out)
    except OSError as e:
        raise fail(f"--out {out}: {e}") from None
    if as_json:
        print_json({"files": [str(p) for p in written], "activities": len(assessment.purposes)})
        return
    for path in written:
        console.print(f"wrote {path}", markup=False, highlight=False)
