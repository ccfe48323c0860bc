"""``aisec compliance check``: the compliance gate of a CI pipeline or a pre-commit hook.

The rules and findings are ``airflow_aisec.governance.compliance``; this command gathers what they judge:
the validated catalog (and, with ``--scan``, its match with the data), the DAG policies over ``--dags``
(``airflow_aisec.policies``, which imports Airflow, so only then) and a sample scan of every dataset
(``airflow_aisec.pii.scan``, the scan of ``aisec scan``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from airflow_aisec.catalog import Report, validate_catalog
from airflow_aisec.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    CatalogOpt,
    JsonOpt,
    VarOpt,
    console,
    err_console,
    fail,
    global_options,
    parse_var_options,
    print_json,
    resolve_catalog,
)
from airflow_aisec.exceptions import AisecError, ConfigError
from airflow_aisec.governance.compliance import (
    DAG_POLICY,
    RULES,
    UNDECLARED_PII,
    ComplianceReport,
    check_catalog,
    dag_files,
    dag_findings,
    scan_failed,
    scan_findings,
)

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog, Dataset
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.pii.engine import PIIEngine

app = typer.Typer(
    help="Gate a CI pipeline: the catalog, the DAGs and a sample of the data against the rules."
)

DEFAULT_SAMPLE = 200


def run_check(
    catalog_path: str,
    variables: Mapping[str, str] | None = None,
    *,
    dags: Path | None = None,
    scan: bool = False,
    sample: int = DEFAULT_SAMPLE,
    mode: str = "ner",
    keyring: str | None = None,
) -> ComplianceReport:
    """Every finding of the gate: the catalog's rules, then the DAGs' (``dags``), then the data's (``scan``).

    Without ``scan`` nothing but the catalog file and the DAG files is read. Raises ``ConfigError`` for a
    ``dags`` that is not a folder or an unknown ``mode``.
    """
    if mode not in ("ner", "patterns"):
        raise ConfigError(f"unknown --mode {mode!r}: use ner or patterns")
    variables = dict(variables or {})
    validated = validate_catalog(catalog_path, variables)
    keys = _key_source(validated.catalog, keyring) if scan and validated.ok else None
    if keys is not None:
        _check_data(validated, keys)
    result = check_catalog(validated)
    if scan and keys is None:
        result.notes.append("the data was not read: fix the catalog's errors (AISEC-C001) first")
    if dags is not None:
        violations = _dag_violations(dags, catalog_path, variables)
        result.add(DAG_POLICY, dag_files(dags), dag_findings(violations, dags))
    if keys is not None and validated.catalog is not None:
        _scan(validated, validated.catalog, keys, result, sample, mode)
    return result


def _key_source(catalog: Catalog | None, keyring: str | None) -> KeySource | None:
    from airflow_aisec.crypto.keysource import KeySource

    return KeySource(catalog, keyring) if catalog is not None else None


def _check_data(report: Report, keys: KeySource) -> None:
    """Each dataset's location and files' schemas against the catalog, into ``report`` (C001)."""
    from airflow_aisec.catalog.datacheck import add_to_report, check_data, encrypted_schemas

    assert report.catalog is not None
    add_to_report(report, check_data(report.catalog, encrypted_schema=encrypted_schemas(keys)))


def _dag_violations(folder: Path, catalog_path: str, variables: Mapping[str, str]) -> list[Any]:
    if not folder.is_dir():
        raise ConfigError(f"--dags {folder}: not a folder of DAG files")
    # Airflow logs to stdout, which carries only this command's output (--json): its logs go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from airflow_aisec.policies import check_dags_folder

        return list(check_dags_folder(folder, catalog_path=catalog_path, catalog_vars=dict(variables)))


def _scan(
    validated: Report, catalog: Catalog, keys: KeySource, result: ComplianceReport, sample: int, mode: str
) -> None:
    """C006 for every dataset holding files: a sample of each column classified and compared."""
    from airflow_aisec.pii.engine import get_engine
    from airflow_aisec.pii.pipeline import recognizer_specs

    engine = get_engine(mode, recognizers=recognizer_specs(catalog))  # type: ignore[arg-type]
    for name, dataset in sorted(catalog.datasets.items()):
        try:
            found = _undeclared(dataset, engine, keys, sample)
        except AisecError as e:
            result.add(UNDECLARED_PII, [name], [scan_failed(validated, name, str(e))])
            continue
        if found is None:
            result.notes.append(f"dataset {name}: not scanned, it holds no file (may_be_empty)")
            continue
        result.add(UNDECLARED_PII, [name], scan_findings(validated, name, found))


def _undeclared(
    dataset: Dataset, engine: PIIEngine, keys: KeySource, sample: int
) -> dict[str, str | None] | None:
    """Column → entity of the PII a sample scan finds and the catalog does not declare; None: no file."""
    from airflow_aisec.catalog.lake import dataset_files
    from airflow_aisec.crypto.datasets import reader_for
    from airflow_aisec.io import Location
    from airflow_aisec.pii.scan import scan_dataset, undeclared

    if not dataset_files(dataset):
        return None
    reader = reader_for(keys, dataset) if dataset.encryption else None
    findings = scan_dataset(Location.parse(dataset.uri), dataset.format, engine, sample=sample, reader=reader)
    return {f.column: f.entity for f in undeclared(findings, dataset)}


@app.command("check")
def check(
    ctx: typer.Context,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    dags: Annotated[
        Path | None, typer.Option("--dags", help="Folder of DAG files to check against the aisec policies.")
    ] = None,
    scan: Annotated[
        bool,
        typer.Option(
            "--scan/--no-scan",
            help="Also read the data: each dataset's files against the catalog, and a sample of every column "
            "scanned for PII the catalog does not declare.",
        ),
    ] = False,
    sample: Annotated[int, typer.Option("--sample", min=1, help="Values sampled per column (--scan).")] = (
        DEFAULT_SAMPLE
    ),
    mode: Annotated[
        str, typer.Option("--mode", help="Scan with ner (spaCy model + patterns) or patterns only.")
    ] = "ner",
    junit: Annotated[Path | None, typer.Option("--junit", help="Write the findings as JUnit XML.")] = None,
    sarif: Annotated[Path | None, typer.Option("--sarif", help="Write the findings as SARIF 2.1.0.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the catalog (and DAGs, and data) against the privacy rules; exit 1 on any error finding."""
    from airflow_aisec.governance.compliance_output import write_junit, write_sarif

    try:
        path = resolve_catalog(ctx, catalog)
    except ConfigError as e:
        raise fail(str(e)) from None
    variables = parse_var_options(var)
    try:
        report = run_check(
            path,
            variables,
            dags=dags,
            scan=scan,
            sample=sample,
            mode=mode,
            keyring=global_options(ctx).keyring,
        )
    except AisecError as e:
        raise fail(str(e), EXIT_BAD_INPUT) from None
    if junit is not None:
        write_junit(report, junit)
    if sarif is not None:
        write_sarif(report, sarif, Path.cwd())
    if as_json:
        print_json(report.as_dict())
    else:
        _print(report)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


def _print(report: ComplianceReport) -> None:
    for finding in report.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        where = f"{finding.file or ''}{f':{finding.line}' if finding.line else ''}"
        err_console.print(
            f"[{colour}]{finding.severity}[/{colour}] {finding.rule} {where}: {finding.message}",
            highlight=False,
            soft_wrap=True,
        )
    for note in report.notes:
        err_console.print(f"[blue]info[/blue] {note}", highlight=False, soft_wrap=True)
    table = Table(title=f"aisec compliance: {report.catalog}")
    for column in ("rule", "checked", "errors", "warnings"):
        table.add_column(column)
    for rule in RULES.values():
        found = [f for f in report.findings if f.rule == rule.id]
        checked = report.checked.get(rule.id)
        table.add_row(
            f"{rule.id} {rule.name}",
            str(len(checked)) if checked is not None else "not run",
            str(sum(f.severity == "error" for f in found)),
            str(sum(f.severity == "warning" for f in found)),
        )
    console.print(table)
    console.print("passed" if report.passed else "FAILED", highlight=False)
