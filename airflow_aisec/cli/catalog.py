"""``aisec catalog``: validate a privacy catalog and show its reference graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from airflow_aisec.catalog import ReferenceGraph, Report, Step, validate_catalog
from airflow_aisec.cli.common import (
    EXIT_BAD_INPUT,
    console,
    err_console,
    fail,
    global_options,
    open_audit_log,
    parse_var_options,
    print_json,
    resolve_catalog,
)
from airflow_aisec.exceptions import AisecError, ConfigError

if TYPE_CHECKING:
    from airflow_aisec.audit.lineage import LineageGraph
    from airflow_aisec.catalog.datacheck import DataCheck

app = typer.Typer(help="Validate the privacy catalog and show how datasets link to data subjects.")

FileArg = Annotated[
    str | None, typer.Argument(help="Catalog YAML file (default: --catalog or \\[aisec] catalog).")
]
VarOpt = Annotated[
    list[str] | None,
    typer.Option("--var", help="Value of a {name} placeholder, as name=value. Repeatable."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON document instead of text.")]


def _load(ctx: typer.Context, file: str | None, var: list[str] | None) -> Report:
    report, _variables = _load_with_vars(ctx, file, var)
    return report


def _load_with_vars(
    ctx: typer.Context, file: str | None, var: list[str] | None
) -> tuple[Report, dict[str, str]]:
    try:
        path = resolve_catalog(ctx, file)
    except ConfigError as e:
        raise fail(str(e)) from None
    variables = parse_var_options(var)
    return validate_catalog(path, variables), variables


def _lineage_graph(ctx: typer.Context) -> LineageGraph:
    """The lineage of the audit log (global --log), opened without creating or changing it."""
    from airflow_aisec.audit.lineage import LineageGraph

    opts = global_options(ctx)
    try:
        with open_audit_log(opts.log, keyring=opts.keyring, create=False) as log:
            return LineageGraph.from_entries(log.entries())
    except AisecError as e:
        raise fail(f"--lineage: {e}") from None


@app.command("validate")
def validate(
    ctx: typer.Context,
    file: FileArg = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Check the file only, not that each dataset's location exists and holds files."
        ),
    ] = False,
    lineage: Annotated[
        bool,
        typer.Option(
            "--lineage",
            help="Also fail on datasets the audit log (global --log) shows written from catalog data "
            "holding PII but missing from the catalog.",
        ),
    ] = False,
    check_data: Annotated[
        bool,
        typer.Option(
            "--check-data",
            help="Also read each file's schema (Parquet footer, CSV header, first JSON lines) and fail on "
            "catalog columns missing from the data or of another type than declared.",
        ),
    ] = False,
) -> None:
    """Check the catalog and print every problem at once (exit 2 on errors).

    Unless --offline, each dataset's location must exist and hold files of its format (a wrong path or
    variable must not pass for an empty dataset); a dataset may opt out with `may_be_empty: true`.
    """
    from airflow_aisec.catalog.lake import check_lineage, check_locations

    if check_data and offline:
        raise fail("--check-data reads the lake; it cannot be combined with --offline")
    report, variables = _load_with_vars(ctx, file, var)
    data = None
    if report.ok and check_data:
        data = _check_data(ctx, report)  # its location check replaces check_locations
    elif report.ok and not offline:
        check_locations(report, variables)
    if report.ok and lineage:
        check_lineage(report, _lineage_graph(ctx))
    failed = not report.ok or (strict and bool(report.warnings))
    if as_json:
        document = {
            "valid": not failed,
            "summary": report.catalog.summary() if report.catalog and report.ok else None,
            "errors": [p.as_dict() for p in report.errors],
            "warnings": [p.as_dict() for p in report.warnings],
        }
        print_json(document if data is None else {**document, "data": data.as_dict()})
    else:
        _print_report(report, data)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def _check_data(ctx: typer.Context, report: Report) -> DataCheck:
    """Compare the files with the catalog; errors and warnings go into ``report``."""
    from airflow_aisec.catalog.datacheck import add_to_report, check_data, encrypted_schemas
    from airflow_aisec.crypto.keysource import KeySource

    assert report.catalog is not None
    keys = KeySource(report.catalog, global_options(ctx).keyring)
    data = check_data(report.catalog, encrypted_schema=encrypted_schemas(keys))
    add_to_report(report, data)
    return data


def _print_report(report: Report, data: DataCheck | None = None) -> None:
    for problem in report.errors:
        err_console.print(f"[red]error[/red] {problem}", highlight=False, soft_wrap=True)
    for problem in report.warnings:
        err_console.print(f"[yellow]warning[/yellow] {problem}", highlight=False, soft_wrap=True)
    for _finding, text in data.grouped("info") if data is not None else []:
        err_console.print(f"[blue]info[/blue] {text}", highlight=False, soft_wrap=True)
    if data is not None:
        read = sum(len(files) for files in data.files.values())
        err_console.print(f"data: {read} file(s) of {len(data.files)} dataset(s) read", highlight=False)
    if report.catalog is None or report.errors:
        err_console.print(
            f"{report.source}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        )
        return
    counts = report.catalog.summary()
    console.print(
        f"{report.source}: valid: {counts['datasets']} datasets, {counts['pii_columns']} PII columns, "
        f"identities {', '.join(report.catalog.subjects.identities)}, "
        f"{counts['retention_rules']} retention rules, {counts['legal_holds']} legal holds, "
        f"{len(report.warnings)} warning(s)",
        highlight=False,
        soft_wrap=True,
    )


@app.command("graph")
def graph(ctx: typer.Context, file: FileArg = None, var: VarOpt = None, as_json: JsonOpt = False) -> None:
    """Print the reference graph and which datasets each identity type reaches, in dependency order."""
    report = _load(ctx, file, var)
    if not report.ok or report.catalog is None:
        _print_report(report)
        raise typer.Exit(EXIT_BAD_INPUT)
    refs = ReferenceGraph(report.catalog)
    plans = {identity: refs.plan(identity) for identity in report.catalog.subjects.identities}
    unreachable = sorted(set(report.catalog.datasets) - refs.reachable_datasets())
    if as_json:
        print_json(
            {
                "order": refs.order,
                "references": {name: [str(link) for link in refs.links[name]] for name in refs.order},
                "reachability": {
                    identity: [
                        {
                            "dataset": step.dataset,
                            "identity_column": step.identity_column,
                            "via": [str(link) for link in step.links],
                        }
                        for step in steps
                    ]
                    for identity, steps in plans.items()
                },
                "unreachable": unreachable,
            }
        )
        return
    _print_graph(refs, plans, unreachable)


def _print_graph(refs: ReferenceGraph, plans: dict[str, list[Step]], unreachable: list[str]) -> None:
    table = Table(title="References (dependency order)")
    table.add_column("dataset")
    table.add_column("format")
    table.add_column("references")
    for name in refs.order:
        dataset = refs.catalog.datasets[name]
        table.add_row(name, dataset.format, "\n".join(str(ln) for ln in refs.links[name]) or "-")
    console.print(table)
    for identity, steps in plans.items():
        tree = Tree(f"identity [bold]{identity}[/bold]")
        for step in steps:
            how = [f"{identity} = {step.identity_column}"] if step.identity_column else []
            how += [f"{ln.column} in {ln.dataset}.{ln.target_column}" for ln in step.links]
            tree.add(f"{step.dataset}  ({' or '.join(how)})")
        console.print(tree)
    if unreachable:
        console.print(f"not reachable from any identity: {', '.join(unreachable)}")
