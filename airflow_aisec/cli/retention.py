"""``aisec retention`` (plan and apply the catalog's retention rules) and ``aisec holds`` (per-subject holds).

Subjects are named on the command line by their raw identifier, but only their pseudonym (the audit log's
keyed HMAC) is ever stored, printed or logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

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

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.retention import DatasetPlan, DatasetResult, HoldList

retention_app = typer.Typer(
    help="Purge rows older than the catalog's retention rules, honouring legal holds."
)
holds_app = typer.Typer(help="Per-subject legal holds: retention keeps the data of these subjects.")

AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Judge ages as of this date or ISO datetime (UTC; default: now)."),
]
DatasetOpt = Annotated[
    list[str] | None, typer.Option("--dataset", help="Only this dataset. Repeatable (default: all).")
]
HoldsOpt = Annotated[
    str | None, typer.Option("--holds", help="Per-subject holds file (default: \\[aisec] holds).")
]


def parse_as_of(value: str | None) -> dt.datetime:
    """``--as-of``: a date (midnight UTC) or an ISO datetime (naive = UTC); default now."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"--as-of: expected a date or ISO datetime such as 2026-11-01, got {value!r}") from None
    from airflow_aisec.retention.dates import as_utc

    return as_utc(moment)


def parse_day(value: str | None, option: str = "--until") -> dt.date | None:
    """A date option's value, or None."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{option}: expected a date such as 2027-06-30, got {value!r}") from None


def _hold_list(holds: str | None) -> HoldList:
    from airflow_aisec import config
    from airflow_aisec.retention import HoldList

    return HoldList(config.get_setting("holds", holds))


def _audit_log(ctx: typer.Context) -> AuditLog:

    opts = global_options(ctx)
    return open_audit_log(opts.log, keyring=opts.keyring)


def _plans(
    ctx: typer.Context,
    catalog: Catalog,
    as_of: dt.datetime,
    datasets: list[str] | None,
    holds: str | None,
    log: AuditLog | None,
) -> list[DatasetPlan]:
    """Plan every chosen dataset; a pseudonymizer is needed (from the audit log's key) only with holds."""
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.retention import plan_catalog

    active = _hold_list(holds).active(as_of.date())
    keyring = LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))
    pseudonymize: Callable[[str], str] | None = log.pseudonym if log is not None else None
    if active and pseudonymize is None:
        with _audit_log(ctx) as opened:  # the key is read once; the pseudonymizer works after close
            pseudonymize = opened.pseudonym
    return plan_catalog(
        catalog,
        as_of,
        holds=active,
        pseudonymize=pseudonymize,
        keys=KeySource(catalog, keyring),
        datasets=datasets or None,
    )


def _bad_input(e: Exception) -> typer.Exit:
    message = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return fail(message)


@retention_app.command("plan")
def plan(
    ctx: typer.Context,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_of: AsOfOpt = None,
    dataset: DatasetOpt = None,
    holds: HoldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show per dataset the files to rewrite or delete, rows to purge, rows held, bad dates (no change)."""
    loaded = load_catalog_option(ctx, catalog, var)
    moment = parse_as_of(as_of)
    try:
        plans = _plans(ctx, loaded, moment, dataset, holds, None)
    except (AisecError, KeyError) as e:
        raise _bad_input(e) from None
    if as_json:
        print_json({"as_of": moment.isoformat(), "datasets": [p.as_dict() for p in plans]})
        return
    for item in plans:
        _print_plan(item)


def _print_plan(item: DatasetPlan) -> None:
    rule = f"{item.keep_for} on {item.column}, cutoff {item.cutoff.isoformat()}"
    if item.legal_hold is not None:
        hold = item.legal_hold
        console.print(
            f"{item.dataset}: legal hold {hold.reason!r} until {hold.until}: nothing purged ({rule})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"{item.dataset}: {item.count('rewrite')} file(s) to rewrite, {item.count('delete')} to delete, "
        f"{item.rows_to_purge} row(s) to purge, {item.rows_held} held, {item.bad_dates} bad date(s) ({rule})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for error in item.errors:
        err_console.print(error, markup=False, highlight=False, soft_wrap=True)


@retention_app.command("apply")
def apply(
    ctx: typer.Context,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_of: AsOfOpt = None,
    dataset: DatasetOpt = None,
    holds: HoldsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Purge expired rows (atomic rewrites and deletes), recorded in the audit log.

    Exit 1 when a dataset had rows with missing or unparseable dates (they are kept; the rest is purged) or
    a file could not be processed; exit 2 on bad input.
    """
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.retention import apply_catalog

    loaded = load_catalog_option(ctx, catalog, var)
    moment = parse_as_of(as_of)
    keyring = LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))
    with _audit_log(ctx) as log:
        try:
            plans = _plans(ctx, loaded, moment, dataset, holds, log)
        except (AisecError, KeyError) as e:
            raise _bad_input(e) from None
        try:
            results = apply_catalog(plans, loaded, keys=KeySource(loaded, keyring), audit=log)
        except AisecError as e:
            raise fail(str(e), EXIT_FAILED) from None
    _report(results, moment, as_json)
    if any(r.failed for r in results):
        raise typer.Exit(EXIT_FAILED)


def _report(results: list[DatasetResult], moment: dt.datetime, as_json: bool) -> None:
    if as_json:
        print_json({"as_of": moment.isoformat(), "datasets": [r.as_dict() for r in results]})
        return
    for result in results:
        summary: dict[str, Any] = result.as_dict()
        if result.legal_hold is not None:
            console.print(
                f"{result.dataset}: legal hold {result.legal_hold!r}: nothing purged",
                highlight=False,
                markup=False,
            )
        else:
            console.print(
                f"{result.dataset}: {summary['rows_removed']} row(s) removed, {summary['files_rewritten']} "
                f"file(s) rewritten, {summary['files_deleted']} deleted, {summary['rows_held']} held",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        for error in result.errors:
            err_console.print(error, markup=False, highlight=False, soft_wrap=True)


# --- holds ------------------------------------------------------------------------------------------------

SubjectOpt = Annotated[
    str, typer.Option("--subject-id", help="The subject's identifier (stored and shown only as a pseudonym).")
]


@holds_app.command("add")
def holds_add(
    ctx: typer.Context,
    subject_id: SubjectOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why the data must be kept (e.g. a case number).")],
    until: Annotated[
        str | None, typer.Option("--until", help="Last day of the hold (default: until removed).")
    ] = None,
    holds: HoldsOpt = None,
) -> None:
    """Keep a subject's data from retention purges, until the given day or until removed."""
    end = parse_day(until)
    if not reason.strip():
        raise fail("--reason must not be empty")
    with _audit_log(ctx) as log:
        pseudonym = log.pseudonym(subject_id)
        try:
            _hold_list(holds).add(pseudonym, reason, end)
        except AisecError as e:
            raise fail(str(e)) from None
        log.append(
            "hold.add",
            subject=subject_id,  # the log stores its pseudonym only
            details={"reason": reason.strip(), "until": end.isoformat() if end else None},
        )
    console.print(
        f"hold added for {pseudonym}" + (f" until {end}" if end else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@holds_app.command("remove")
def holds_remove(ctx: typer.Context, subject_id: SubjectOpt, holds: HoldsOpt = None) -> None:
    """Lift a subject's hold (exit 1 when there was none)."""
    with _audit_log(ctx) as log:
        pseudonym = log.pseudonym(subject_id)
        try:
            removed = _hold_list(holds).remove(pseudonym)
        except AisecError as e:
            raise fail(str(e)) from None
        if removed:
            log.append("hold.remove", subject=subject_id)
    if not removed:
        raise fail(f"no hold for {pseudonym}", EXIT_FAILED)
    console.print(f"hold removed for {pseudonym}", highlight=False, markup=False, soft_wrap=True)


@holds_app.command("list")
def holds_list(
    as_json: JsonOpt = False,
    holds: HoldsOpt = None,
    on: Annotated[str | None, typer.Option("--active-on", help="Only holds in force on this date.")] = None,
) -> None:
    """List holds by pseudonym (raw identifiers are never stored)."""
    day = parse_day(on, "--active-on")
    try:
        stored = _hold_list(holds).list()
    except AisecError as e:
        raise fail(str(e)) from None
    shown = [h for h in stored if day is None or h.active(day)]
    if as_json:
        print_json({"holds": [h.as_dict() for h in shown]})
        return
    for hold in shown:
        until = hold.until.isoformat() if hold.until else "until removed"
        console.print(
            f"{hold.pseudonym}  {until}  {hold.reason}", highlight=False, markup=False, soft_wrap=True
        )
