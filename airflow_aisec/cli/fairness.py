"""``aisec bias check``: compare a dataset's predictions across the groups of its protected attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from airflow_aisec.cli.common import (
    EXIT_FAILED,
    CatalogOpt,
    JsonOpt,
    VarOpt,
    console,
    err_console,
    fail,
    global_options,
    load_catalog_option,
    open_audit_log,
    print_json,
)
from airflow_aisec.exceptions import AisecError
from airflow_aisec.fairness.metrics import DEFAULT_MAX_DIFFERENCE, DEFAULT_MIN_GROUP_SIZE, FOUR_FIFTHS

if TYPE_CHECKING:
    from airflow_aisec.fairness import AttributeReport, BiasReport

app = typer.Typer(
    help="Bias checks: selection rates and error rates across the groups of protected attributes."
)


@app.command("check")
def check(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Catalog dataset holding the predictions.")],
    prediction: Annotated[str, typer.Option("--prediction", help="Column of the predicted labels.")],
    label: Annotated[
        str | None, typer.Option("--label", help="Column of the true outcomes (for equalized odds).")
    ] = None,
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", help="Protected attribute; repeatable (default: the catalog's)."),
    ] = None,
    positive: Annotated[
        str,
        typer.Option("--positive-label", help="The favourable prediction/label, read as the column's type."),
    ] = "1",
    min_ratio: Annotated[
        float, typer.Option("--min-ratio", min=0.0, max=1.0, help="Lowest selection-rate ratio allowed.")
    ] = FOUR_FIFTHS,
    max_dp: Annotated[
        float,
        typer.Option("--max-dp-difference", min=0.0, max=1.0, help="Highest demographic-parity difference."),
    ] = DEFAULT_MAX_DIFFERENCE,
    max_eo: Annotated[
        float,
        typer.Option("--max-eo-difference", min=0.0, max=1.0, help="Highest equalized-odds difference."),
    ] = DEFAULT_MAX_DIFFERENCE,
    min_group: Annotated[
        int, typer.Option("--min-group-size", min=1, help="Smaller groups are shown by size only.")
    ] = DEFAULT_MIN_GROUP_SIZE,
    input_uri: Annotated[
        str | None, typer.Option("--input", help="Where the data is, when not at the dataset's uri.")
    ] = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check DATASET's predictions for bias; exit 1 when a threshold is passed, recorded as bias.check."""
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.fairness import BiasThresholds, check_dataset

    loaded = load_catalog_option(ctx, catalog, var)
    opts = global_options(ctx)
    try:
        thresholds = BiasThresholds(min_ratio, max_dp, max_eo, min_group)
        with open_audit_log(opts.log, keyring=opts.keyring) as log:
            report = check_dataset(
                loaded, dataset, prediction, label=label, attributes=attribute, positive_label=positive,
                thresholds=thresholds, pseudonym=log.pseudonym, keys=KeySource(loaded, opts.keyring),
                input_uri=input_uri,
            )  # fmt: skip
            log.append("bias.check", **report.audit_fields())
    except AisecError as e:
        raise fail(str(e)) from None
    if as_json:
        print_json(report.as_dict())
    else:
        _print(report)
    if not report.passed:
        err_console.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)


def _print(report: BiasReport) -> None:
    console.print(f"dataset {report.dataset}: {report.rows} rows in {report.files} file(s)")
    for attribute in report.attributes:
        console.print(_table(attribute))
        for name, value in attribute.metrics.items():
            console.print(f"  {name}: {'n/a' if value is None else f'{value:.4f}'}")
        for warning in attribute.warnings:
            console.print(f"  [yellow]{warning}[/yellow]", highlight=False)
        for violation in attribute.violations:
            console.print(f"  [red]{violation.message()}[/red]", highlight=False)


def _table(attribute: AttributeReport) -> Table:
    table = Table(title=f"groups of {attribute.attribute}")
    for column in ("group", "rows", "selection rate", "TPR", "FPR"):
        table.add_column(column)
    for group in attribute.groups:
        data = group.as_dict()
        rates = [
            _rate(data.get(key)) for key in ("selection_rate", "true_positive_rate", "false_positive_rate")
        ]
        if group.small:
            rates = ["(small group)", "", ""]
        table.add_row(group.label, str(group.counts.n), *rates)
    return table


def _rate(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
