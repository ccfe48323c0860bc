"""What ``aisec dsr`` shows and writes: certificate summaries and tables, verification results, certificates.

Only ids, the subject's pseudonym, dataset names and counts are shown: a certificate holds no raw value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from airflow_aisec.cli.common import EXIT_FAILED, console, err_console, fail, print_json
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from airflow_aisec.dsr.certificate import CertificateReport, RescanReport


def save_certificate_to(document: Mapping[str, Any], target: str) -> str:
    """Write the signed certificate to ``target`` (a file or ``s3://`` URI) and return where it went."""
    from airflow_aisec.dsr.run import save_certificate

    try:
        return save_certificate(document, target)
    except (AisecError, OSError) as e:
        raise fail(f"cannot write the certificate to {target}: {e}", EXIT_FAILED) from None


def certificate_summary(document: Mapping[str, Any], uri: str | None) -> dict[str, Any]:
    """What is shown of a certificate: ids, pseudonym, status, counts per dataset (no value)."""
    body = document["certificate"]
    request = body.get("request") or {}
    datasets = [
        {
            "dataset": d.get("dataset"),
            "strategy": d.get("strategy"),
            "status": d.get("status"),
            "rows_affected": d.get("rows_affected"),
            "files": len(d.get("files") or []),
            "held": (d.get("legal_hold") or {}).get("reason"),
            "verified": (d.get("verification") or {}).get("verified"),
            "error": d.get("error"),
        }
        for d in body.get("datasets") or []
    ]
    return {
        "request_id": request.get("request_id"),
        "type": request.get("type"),
        "subject": request.get("subject"),
        "dry_run": request.get("dry_run"),
        "fields": request.get("fields"),
        "status": body.get("status"),
        "deadline": request.get("deadline"),
        "deadline_met": body.get("deadline_met"),
        "summary": body.get("summary"),
        "datasets": datasets,
        "keys_shredded": body.get("keys_shredded"),
        "export": (body.get("export") or {}).get("package"),
        "certificate": uri,
    }


def show_certificate(document: Mapping[str, Any], uri: str | None, as_json: bool, **extra: Any) -> None:
    """Show a certificate's summary: JSON (with ``extra``) or a table."""
    shown = certificate_summary(document, uri)
    if as_json:
        print_json({**extra, **shown})
        return
    print_summary(shown, console)


def wide(out: Console) -> Console:
    """A console writing where ``out`` does, at least 200 columns wide and without colours."""
    from rich.console import Console

    return Console(file=out.file, width=max(out.width, 200), color_system=None, highlight=False)


def print_summary(shown: Mapping[str, Any], out: Console) -> None:
    """Print a ``certificate_summary``: a line, the table of datasets, the totals, then what went wrong."""

    def line(text: str) -> None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)

    line(f"request {shown['request_id']} ({shown['type']}, subject {shown['subject']}): {shown['status']}")
    table = Table()
    for name in ("dataset", "strategy", "status", "rows", "files"):
        table.add_column(name, no_wrap=True)
    table.add_column("held", overflow="fold")
    table.add_column("verified", no_wrap=True)
    for d in shown["datasets"]:
        verified = {True: "yes", False: "NO", None: "-"}[d["verified"]]
        cells = [d[k] for k in ("dataset", "strategy", "status", "rows_affected", "files", "held")]
        table.add_row(*(Text("" if c is None else str(c)) for c in [*cells, verified]))
    # A terminal gets a table of its width; pipes and logs get it unwrapped (rich assumes 80 columns there).
    (out if out.is_terminal else wide(out)).print(table)
    summary = shown.get("summary") or {}
    line(
        f"{summary.get('rows_affected', 0)} row(s) affected, {summary.get('files_rewritten', 0)} file(s) "
        f"rewritten, {summary.get('files_deleted', 0)} deleted, {len(shown.get('keys_shredded') or [])} "
        f"key(s) shredded; deadline {shown['deadline']}" + ("" if shown["deadline_met"] else " (MISSED)")
    )
    if "files_examined" in summary:  # where verification looked: "nothing found" says in what
        line(f"examined {summary['files_examined']} file(s), {summary['rows_examined']} row(s)")
    if summary.get("not_covered"):
        err_console.print(
            "not covered (copies outside the catalog still hold the subject): "
            + ", ".join(summary["not_covered"]), markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    for d in shown["datasets"]:
        if d["error"]:
            err_console.print(f"{d['dataset']}: {d['error']}", markup=False, highlight=False, soft_wrap=True)
    if shown.get("export"):
        line(f"export package: {shown['export']}")
    if shown.get("certificate"):
        line(f"certificate: {shown['certificate']}")


def print_verification(file: Path, report: CertificateReport, found: RescanReport | None, ok: bool) -> None:
    """Print each check of a certificate, the rescan's findings and the verdict."""
    line = f"certificate {file}: request {report.request_id}, status {report.status}"
    console.print(line, markup=False, highlight=False, soft_wrap=True)
    for check in report.checks:
        console.print(f"  ok      {check}", markup=False, highlight=False, soft_wrap=True)
    for problem in report.problems:
        console.print(f"  FAILED  {problem}", markup=False, highlight=False, soft_wrap=True)
    if found is not None:
        print_rescan(found)
    console.print("verified" if ok else "NOT verified", markup=False, highlight=False)


def print_rescan(found: RescanReport) -> None:
    """Print what the rescan read per dataset and what of the subject remains."""
    for d in found.datasets:
        held = ", held" if d["held"] else ""
        console.print(
            f"  rescan  {d['dataset']} (certified {d['certified_status']}{held}): {d['files_read']} file(s), "
            f"{d['rows_read']} row(s) read; {d['subject_rows']} row(s) of the subject, {d['mentions']} "
            "mention(s)", markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    for problem in found.problems:
        console.print(f"  FAILED  {problem}", markup=False, highlight=False, soft_wrap=True)


def say(out: Console, text: str) -> None:
    """Print ``text`` as it is (no markup, no highlighting), wrapped by the terminal only."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)
