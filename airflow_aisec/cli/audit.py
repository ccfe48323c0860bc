"""``aisec audit``: verify, review, prove and export the audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from airflow_aisec import config
from airflow_aisec.audit import AuditLog
from airflow_aisec.audit.lineage import LineageGraph, to_openlineage
from airflow_aisec.audit.log import PSEUDONYM_KEY
from airflow_aisec.audit.query import EntryQuery
from airflow_aisec.cli.common import (
    EXIT_BAD_INPUT,
    CatalogOpt,
    KeyringOpt,
    LogOpt,
    VarOpt,
    audit_location,
    console,
    err_console,
    fail,
    global_options,
    load_catalog_option,
    open_audit_log,
    print_json,
)
from airflow_aisec.exceptions import AisecError

app = typer.Typer(help="Verify and review the tamper-evident audit log.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _open(
    ctx: typer.Context,
    log: str | None,
    keyring: str | None,
    *,
    create: bool = False,
    adopt: bool = False,
    pseudonym_key: str = PSEUDONYM_KEY,
) -> AuditLog:
    """The log to review, opened read-only unless ``create``: reviewing never creates a log, a keyring or a
    key, and never signs; a missing one is a message naming it and exit 2."""
    uri, ring = audit_location(ctx, log, keyring)
    try:
        return open_audit_log(uri, keyring=ring, create=create, adopt=adopt, pseudonym_key=pseudonym_key)
    except AisecError as e:
        raise fail(str(e)) from None


@app.command("verify")
def verify(
    ctx: typer.Context,
    trusted: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-checkpoint",
            help="Signed checkpoint kept outside the database (default: \\[aisec] trusted_checkpoint when "
            "that file exists). Repeatable.",
        ),
    ] = None,
    index: Annotated[
        bool,
        typer.Option(
            "--index",
            help="Also check every entry's search terms (what filters and subject lookups use): a second "
            "pass over the log.",
        ),
    ] = False,
    log_uri: LogOpt = None,
    keyring: KeyringOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every entry hash, root and tile and check every checkpoint signature, read-only.

    Exit codes: 0 verified, 10 modified entry, 11 deleted entry, 12 reordered entries, 13 truncated tail,
    14 forked history, 15 invalid checkpoint signature, 16 no signed checkpoint, 2 bad input (also a
    missing log or keyring).
    """
    paths = list(trusted or _configured_trusted())
    notes = [_read(path) for path in paths]
    with _open(ctx, log_uri, keyring) as log:
        try:
            report = log.verify(notes, index=index)
        except AisecError as e:
            raise fail(str(e)) from None
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "exit_code": report.exit_code,
                "size": report.size,
                "root": report.root.hex(),
                "checkpoints": report.checkpoints,
                "trusted_checkpoints": [str(path) for path in paths],
                "findings": [
                    {"failure": f.failure.name.lower(), "index": f.index, "message": f.message}
                    for f in report.findings
                ],
            }
        )
    elif report.ok:
        against = f", against {', '.join(map(str, paths))}" if paths else ", no trusted checkpoint"
        console.print(
            f"audit log verified: {report.size} entries, {report.checkpoints} signed checkpoints, "
            f"root {report.root.hex()}{against}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        for finding in report.findings:
            err_console.print(f"[red]{finding}[/red]", highlight=False)
    raise typer.Exit(report.exit_code)


def _configured_trusted() -> list[Path]:
    """``[aisec] trusted_checkpoint`` when that file exists (the verify DAG creates it on its first run)."""
    try:
        path = Path(config.get_setting("trusted_checkpoint"))
    except AisecError as e:
        raise fail(str(e)) from None
    return [path] if path.is_file() else []


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise fail(f"cannot read trusted checkpoint {path}: {e.strerror}") from None


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the signed note to this file.")
    ] = None,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Sign the first checkpoint of a log holding entries but no checkpoint, not created "
            "with this keyring (check its entries first).",
        ),
    ] = False,
    log_uri: LogOpt = None,
    keyring: KeyringOpt = None,
) -> None:
    """Sign a checkpoint now and print it (keep a copy elsewhere as a trusted checkpoint)."""
    with _open(ctx, log_uri, keyring, create=True, adopt=adopt) as log:
        try:
            log.checkpoint()
        except AisecError as e:
            log.read_only = True  # nothing more to sign on close
            raise fail(str(e)) from None
        latest = log.latest_checkpoint()
    if latest is None:
        raise fail("the audit log is empty: nothing to checkpoint", EXIT_BAD_INPUT)
    if out is not None:
        out.write_text(latest[1], encoding="utf-8")
    typer.echo(latest[1], nl=False)


@app.command("public-key")
def public_key(ctx: typer.Context, log_uri: LogOpt = None, keyring: KeyringOpt = None) -> None:
    """Print the verifier key of the checkpoint signing key (C2SP note format); safe to publish."""
    with _open(ctx, log_uri, keyring) as log:
        typer.echo(log.verifier_key())


def _datasets(data: dict[str, Any]) -> set[str]:
    names = {str(data["dataset"])} if data.get("dataset") else set()
    for ref in (data.get("inputs") or []) + (data.get("outputs") or []):
        if isinstance(ref, dict) and ref.get("dataset"):
            names.add(str(ref["dataset"]))
    return names


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Entries touching this dataset.")] = None,
    subject_id: Annotated[
        str | None, typer.Option("--subject-id", help="Entries about this subject (pseudonymized first).")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help="e.g. pii.mask")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO-8601 time.")] = None,
    dag_id: Annotated[str | None, typer.Option("--dag-id", help="Airflow DAG id.")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Airflow DAG run id.")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="success, failure, skipped, intent or noop.")
    ] = None,
    request_id: Annotated[
        str | None, typer.Option("--request-id", help="Entries of this data-subject request.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many (newest).")] = 200,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    log_uri: LogOpt = None,
    keyring: KeyringOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List entries, filtered (an action ending in a dot, like dsr., is a prefix). A subject is found under
    any of their identities: the entries naming it, and every entry of their data-subject requests. The
    subject id never leaves this process unpseudonymized (under the --catalog's subjects.pseudonym_key when
    a catalog is given)."""
    key = PSEUDONYM_KEY
    if subject_id and (catalog or global_options(ctx).catalog):
        key = load_catalog_option(ctx, catalog, var).subjects.pseudonym_key
    with _open(ctx, log_uri, keyring, pseudonym_key=key) as log:
        try:
            subject = log.pseudonym(subject_id) if subject_id else None
        except AisecError as error:
            raise fail(str(error)) from None
        query = EntryQuery(
            action=action, dataset=dataset, dag_id=dag_id, run_id=run_id, request_id=request_id,
            outcome=outcome, since=since, until=until, subject=subject,
        )  # fmt: skip
        try:
            found = log.newest(query, limit)
        except AisecError as error:
            raise fail(str(error)) from None
        found.reverse()  # oldest first, as the log reads
    if as_json:
        print_json([{"index": e.index, **e.data} for e in found])
        return
    table = Table(title=f"audit log: {len(found)} entries")
    for column in ("#", "time", "action", "dataset", "rows read", "rows affected", "outcome", "actor"):
        table.add_column(column, overflow="fold")  # nothing is ever cut off
    for e in found:
        d = e.data
        table.add_row(
            str(e.index),
            str(d.get("time", ""))[:19],
            e.action,
            ", ".join(sorted(_datasets(d))),
            *_rows(d),
            str(d.get("outcome", "")),
            _actor(d.get("actor") or {}),
        )
    # In a terminal the table fits its width; piped or redirected, each entry stays on one whole line.
    if console.is_terminal:
        console.print(table)
        return
    wide = Measurement.get(console, console.options.update_width(100_000), table).maximum
    Console(width=max(wide, console.width), highlight=False).print(table)


def _rows(data: dict[str, Any]) -> tuple[str, str]:
    """(rows read, rows affected): an intent counts the rows of the file it is about to change, an outcome
    the rows it affected (and the file's rows before, when it says)."""
    rows, details = data.get("rows"), data.get("details") or {}
    if rows is None:
        return "", ""
    if data.get("outcome") == "intent":
        return str(rows), ""
    before = details.get("rows_before") if isinstance(details, dict) else None
    return ("" if before is None else str(before)), str(rows)


def _actor(actor: dict[str, Any]) -> str:
    if actor.get("kind") == "airflow":
        return f"{actor.get('dag_id')}.{actor.get('task_id')} (try {actor.get('try')})"
    return f"{actor.get('user')}@{actor.get('host')}"


@app.command("prove")
def prove(
    ctx: typer.Context,
    index: Annotated[int, typer.Argument(help="Entry index.", min=0)],
    log_uri: LogOpt = None,
    keyring: KeyringOpt = None,
) -> None:
    """Print an inclusion proof of one entry against the latest signed checkpoint (JSON)."""
    with _open(ctx, log_uri, keyring) as log:
        try:
            proof = log.prove(index)
        except AisecError as e:
            raise fail(str(e)) from None
    print_json(proof)


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="Catalog dataset name, or its location (path or URI).")],
    fmt: Annotated[str, typer.Option("--format", help="text, dot or mermaid.")] = "text",
    log_uri: LogOpt = None,
    keyring: KeyringOpt = None,
) -> None:
    """Upstream and downstream datasets of DATASET, through recorded inputs and outputs."""
    if fmt not in ("text", "dot", "mermaid"):
        raise fail(f"unknown format {fmt!r}: use text, dot or mermaid")
    with _open(ctx, log_uri, keyring) as log:
        graph = LineageGraph.from_entries(log.entries())
    node = graph.resolve(dataset)
    if node is None:
        raise fail(f"dataset {dataset!r} appears in no audit entry")
    typer.echo(graph.render(node, fmt))


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or openlineage.")] = "jsonl",
    out: Annotated[Path | None, typer.Option("--out", help="File to write (default: stdout).")] = None,
    log_uri: LogOpt = None,
    keyring: KeyringOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
) -> None:
    """Export every entry as JSON Lines, or as OpenLineage run events (each dataset named by its catalog
    location, from the catalog when given or configured)."""
    if fmt not in ("jsonl", "openlineage"):
        raise fail(f"unknown format {fmt!r}: use jsonl or openlineage")
    locations = _catalog_locations(ctx, catalog, var) if fmt == "openlineage" else {}
    with _open(ctx, log_uri, keyring) as log:
        lines = [
            json.dumps(
                {"index": e.index, **e.data} if fmt == "jsonl" else to_openlineage(e, locations),
                sort_keys=True,
            )
            for e in log.entries()
        ]
    text = "\n".join(lines) + ("\n" if lines else "")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"{len(lines)} entries written to {out}")


def _catalog_locations(ctx: typer.Context, catalog: str | None, var: list[str] | None) -> dict[str, str]:
    """Catalog dataset → location, to name the datasets of entries that recorded only files: the catalog
    given (a bad one is an error), else the configured one when it loads (else none: files keep their
    names)."""
    if catalog or global_options(ctx).catalog:
        found = load_catalog_option(ctx, catalog, var)
    else:
        try:
            from airflow_aisec.catalog import load_catalog

            found = load_catalog(config.catalog_path(None), config.catalog_vars())
        except (AisecError, OSError):
            return {}
    return {name: dataset.uri for name, dataset in found.datasets.items()}
