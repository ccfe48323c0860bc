"""``aisec scan``, ``aisec mask`` and ``aisec unmask``: find and mask personal data in a dataset."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer
from rich.progress import Progress
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

DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Catalog dataset the input belongs to.")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="parquet, csv or jsonl (default: guessed).")]
ModeOpt = Annotated[
    str, typer.Option("--mode", help="ner (spaCy model + patterns) or patterns (no NER model needed).")
]


def _catalog_dataset(
    ctx: typer.Context, catalog: str | None, dataset: str | None, var: list[str] | None
) -> Any:
    """The catalog and the named dataset, or (None, None) without --dataset."""
    if dataset is None:
        return None, None
    loaded = load_catalog_option(ctx, catalog, var)
    try:
        return loaded, loaded.dataset(dataset)
    except KeyError as e:
        raise fail(str(e.args[0])) from None


def _engine(mode: str, catalog: Any) -> Any:
    from airflow_aisec.pii.engine import get_engine
    from airflow_aisec.pii.pipeline import recognizer_specs

    if mode not in ("ner", "patterns"):
        raise fail(f"unknown --mode {mode!r}: use ner or patterns")
    return get_engine(mode, recognizers=recognizer_specs(catalog))  # type: ignore[arg-type]


def _location(uri: str) -> Any:
    from airflow_aisec.io import Location

    return Location.parse(uri)


def scan(
    ctx: typer.Context,
    input_uri: Annotated[
        str | None, typer.Argument(metavar="INPUT", help="File or folder (default: the dataset's uri).")
    ] = None,
    catalog: CatalogOpt = None,
    dataset: DatasetOpt = None,
    var: VarOpt = None,
    fmt: FormatOpt = None,
    sample: Annotated[int, typer.Option("--sample", min=1, help="Values sampled per column.")] = 500,
    mode: ModeOpt = "ner",
    fail_on_undeclared: Annotated[
        bool,
        typer.Option("--fail-on-undeclared", help="Exit 1 when PII the catalog does not declare is found."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Classify each column (entity type, free_text, or none) from its name and a sample of its values."""
    from airflow_aisec.pii.pipeline import scan_entry
    from airflow_aisec.pii.scan import as_json as findings_json
    from airflow_aisec.pii.scan import scan_dataset, undeclared

    loaded, spec = _catalog_dataset(ctx, catalog, dataset, var)
    uri = input_uri or (spec.uri if spec else None)
    if uri is None:
        raise fail("give INPUT, or --dataset with a catalog")
    location = _location(uri)
    from airflow_aisec.io import guess_format

    fmt = guess_format(location, fmt or (spec.format if spec else None))
    with console.status("scanning", spinner="dots") if not as_json else contextlib.nullcontext():
        findings = scan_dataset(location, fmt, _engine(mode, loaded), sample=sample)
    drift = undeclared(findings, spec) if spec is not None else []
    _record(ctx, "pii.scan", scan_entry(spec.name if spec else None, location.uri, findings, drift))
    if as_json:
        document = findings_json(findings)
        if spec is not None:
            document["undeclared"] = [f.column for f in drift]
        print_json(document)
    else:
        _print_findings(findings, {f.column for f in drift})
    if drift and fail_on_undeclared:
        err_console.print(f"PII not declared in the catalog: {', '.join(f.column for f in drift)}")
        raise typer.Exit(EXIT_FAILED)


def _print_findings(findings: dict[str, Any], drift: set[str]) -> None:
    table = Table(title="PII scan")
    for column in ("column", "entity", "confidence", "sampled", "declared"):
        table.add_column(column)
    for name, f in findings.items():
        flag = "[red]NOT DECLARED[/red]" if name in drift else ""
        table.add_row(name, f.entity or "-", f"{f.confidence:.2f}", str(f.sampled), flag)
    console.print(table)


def _record(ctx: typer.Context, action: str, fields: dict[str, Any]) -> int:

    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:
        return log.append(action, **fields)


def mask(
    ctx: typer.Context,
    input_uri: Annotated[str, typer.Argument(metavar="INPUT", help="File or folder to mask.")],
    output_uri: Annotated[str, typer.Argument(metavar="OUTPUT", help="File or folder to write.")],
    catalog: CatalogOpt = None,
    dataset: DatasetOpt = None,
    var: VarOpt = None,
    fmt: FormatOpt = None,
    mode: ModeOpt = "ner",
    as_json: JsonOpt = False,
) -> None:
    """Mask every PII column: per the catalog's ``mask:`` rules, or everything a scan finds without one."""
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.io import guess_format
    from airflow_aisec.pii.mask import Masker, plan_from_catalog, plan_from_findings
    from airflow_aisec.pii.pipeline import mask_dataset, mask_entry
    from airflow_aisec.pii.scan import scan_dataset

    loaded, spec = _catalog_dataset(ctx, catalog, dataset, var)
    source, target = _location(input_uri), _location(output_uri)
    fmt = guess_format(source, fmt or (spec.format if spec else None))
    engine = _engine(mode, loaded)
    plans = (
        plan_from_catalog(spec, loaded.subjects.pseudonym_key)
        if spec and loaded
        else plan_from_findings(scan_dataset(source, fmt, engine))
    )
    if not plans:
        raise fail(
            f"{source.uri}: no PII column to mask (declare them in the catalog or check the scan)",
            EXIT_FAILED,
        )
    keyring = LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))
    masker = Masker(plans, keyring, find_spans=engine.find_spans)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("masking", total=None)
        result = mask_dataset(source, target, masker, fmt=fmt, on_file=lambda _: progress.advance(task))
    name = spec.name if spec else None
    index = _record(ctx, "pii.mask", mask_entry(name, f"{name}_masked" if name else None, result, plans)[1])
    summary = {
        "files": [f.__dict__ for f in result.files],
        "rows": result.rows,
        "columns": {p.column: p.strategy for p in plans},
        "masked": result.counts,
        "audit_entry": index,
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"masked {result.rows} rows in {len(result.files)} files: "
        + ", ".join(f"{p.column} ({p.strategy})" for p in plans),
        highlight=False,
    )


def unmask(
    ctx: typer.Context,
    input_uri: Annotated[str, typer.Argument(metavar="INPUT", help="Masked file or folder.")],
    output_uri: Annotated[str, typer.Argument(metavar="OUTPUT", help="Where to write the decrypted copy.")],
    columns: Annotated[str, typer.Option("--columns", help="Comma-separated columns masked with 'encrypt'.")],
    key: Annotated[
        str, typer.Option("--key", help="Keyring key the columns were encrypted with.")
    ] = "aisec-mask-encryption",
    fmt: FormatOpt = None,
) -> None:
    """Reverse the ``encrypt`` strategy for holders of the key (recorded in the audit log)."""
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.io import guess_format
    from airflow_aisec.pii.pipeline import unmask_dataset

    source, target = _location(input_uri), _location(output_uri)
    names = [c.strip() for c in columns.split(",") if c.strip()]
    keyring = LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))
    result = unmask_dataset(source, target, keyring, key, names, fmt=guess_format(source, fmt))
    _record(
        ctx,
        "pii.unmask",
        {"rows": result.rows, "columns": names, **result.lineage(None, None, {}).entry_fields()},
    )
    console.print(f"decrypted {', '.join(names)} in {result.rows} rows of {len(result.files)} files")
