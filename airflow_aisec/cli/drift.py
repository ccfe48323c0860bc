"""``aisec drift``: drift and input anomaly checks of current data against a reference, and saved profiles.

``check`` and ``anomalies`` exit 0 when the check passes, 1 when too many columns drifted (or are
anomalous), 2 on bad input; the check is recorded in the audit log (``drift.check``, ``anomaly.check``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from airflow_aisec import config
from airflow_aisec.cli.common import (
    EXIT_FAILED,
    CatalogOpt,
    JsonOpt,
    VarOpt,
    console,
    global_options,
    load_catalog_option,
    open_audit_log,
    print_json,
)

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.drift import CheckRun, SourceOptions

app = typer.Typer(help="Drift and input anomaly checks against a reference (a dataset, files or a profile).")

RefArg = Annotated[
    str, typer.Argument(help="Reference: catalog dataset, path or s3:// URI, or profile file.")
]
CurArg = Annotated[str, typer.Argument(help="Current data: catalog dataset, path or s3:// URI.")]
ColumnsOpt = Annotated[
    list[str] | None, typer.Option("--columns", help="Only this column. Repeatable (default: all shared).")
]
ReportOpt = Annotated[str | None, typer.Option("--report", help="Write the HTML report to this file.")]
PurposeOpt = Annotated[
    str | None, typer.Option("--purpose", help="Why catalog datasets are read (checked against the catalog).")
]


def _catalog(ctx: typer.Context, catalog: str | None, var: list[str] | None) -> Catalog | None:
    """The catalog when one is named or configured and present: paths and profiles need none."""
    named = catalog or global_options(ctx).catalog
    if named is None and not os.path.isfile(config.catalog_path(None)):
        return None
    return load_catalog_option(ctx, catalog, var)


def _options(
    ctx: typer.Context, catalog: str | None, var: list[str] | None, purpose: str | None, log: AuditLog
) -> SourceOptions:
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.drift import SourceOptions

    loaded = _catalog(ctx, catalog, var)
    keys = KeySource(loaded, global_options(ctx).keyring) if loaded is not None else None
    return SourceOptions(loaded, keys, purpose, log, task="aisec drift")


def _show(run: CheckRun, as_json: bool) -> None:
    result = run.result
    if as_json:
        print_json({**result.to_dict(), "report": run.report})
    else:
        for check in result.columns:
            mark = "DRIFT" if check.drifted else "ok"
            value = "-" if check.statistic is None else f"{check.statistic:.4g}"
            console.print(
                f"{mark:5} {check.column}  {check.method}={value} (threshold {check.threshold:g})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        for name, why in sorted(result.skipped.items()):
            console.print(f"skip  {name}: {why}", markup=False, highlight=False, soft_wrap=True)
        console.print(result.summary(), markup=False, highlight=False, soft_wrap=True)
        if run.report:
            console.print(f"report: {run.report}", markup=False, highlight=False, soft_wrap=True)
    if not result.passed:
        raise typer.Exit(EXIT_FAILED)


@app.command("check")
def check(
    ctx: typer.Context,
    reference: RefArg,
    current: CurArg,
    columns: ColumnsOpt = None,
    method: Annotated[
        str, typer.Option("--method", help="auto, ks, chisquare, z, wasserstein, ...")
    ] = "auto",
    threshold: Annotated[float | None, typer.Option("--threshold", help="The method's threshold.")] = None,
    drift_share: Annotated[
        float, typer.Option("--drift-share", help="Share of drifted columns that fails the check.")
    ] = 0.5,
    report: ReportOpt = None,
    purpose: PurposeOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Test the current data against the reference, column by column (Evidently's default tests)."""
    from airflow_aisec.drift import drift_check

    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:
        run = drift_check(
            reference,
            current,
            _options(ctx, catalog, var, purpose, log),
            columns=columns,
            method=method,
            threshold=threshold,
            drift_share=drift_share,
            report_path=report,
        )
        log.append("drift.check", **run.result.audit_fields())
    _show(run, as_json)


@app.command("anomalies")
def anomalies(
    ctx: typer.Context,
    reference: RefArg,
    current: CurArg,
    columns: ColumnsOpt = None,
    max_null_increase: Annotated[float, typer.Option("--max-null-increase")] = 0.1,
    max_out_of_range: Annotated[float, typer.Option("--max-out-of-range")] = 0.01,
    max_unseen: Annotated[float, typer.Option("--max-unseen")] = 0.01,
    report: ReportOpt = None,
    purpose: PurposeOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Schema changes, null-rate spikes, out-of-range values and unseen categories, per column."""
    from airflow_aisec.drift import AnomalyLimits, anomaly_check

    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:
        run = anomaly_check(
            reference,
            current,
            _options(ctx, catalog, var, purpose, log),
            columns=columns,
            limits=AnomalyLimits(max_null_increase, max_out_of_range, max_unseen),
            report_path=report,
        )
        log.append("anomaly.check", **run.result.audit_fields())
    _show(run, as_json)


@app.command("profile")
def profile(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Catalog dataset, path or s3:// URI to profile.")],
    out: Annotated[str, typer.Option("--out", help="The profile file to write (JSON).")],
    columns: ColumnsOpt = None,
    purpose: PurposeOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Profile a dataset once (streamed, mergeable sketches) and save it as a reusable reference."""
    from airflow_aisec.drift import load_source, save_profile

    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:
        made = load_source(dataset, _options(ctx, catalog, var, purpose, log), columns=columns)
    written = save_profile(made, out)
    summary = {"profile": written, "dataset": dataset, "rows": made.rows, "columns": sorted(made.columns)}
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"profile of {dataset} ({made.rows} rows, {len(made.columns)} columns) written to {written}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
