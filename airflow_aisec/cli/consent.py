"""``aisec consent show|grant|withdraw``: a subject's consents, as the privacy office reads and records them.

The subject identifier is the user's input: it is used to find and write the subject's rows and is never
printed or logged; what the commands print names the subject by pseudonym.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from airflow_aisec.cli.common import (
    CatalogOpt,
    JsonOpt,
    LogOpt,
    VarOpt,
    audit_location,
    console,
    fail,
    global_options,
    load_catalog_option,
    open_audit_log,
    print_json,
)

app = typer.Typer(help="A subject's consents: show, grant, withdraw.", no_args_is_help=True)

SubjectOpt = Annotated[
    str, typer.Option("--subject-id", help="The subject's identifier (never printed or logged).")
]
IdentityOpt = Annotated[
    str | None,
    typer.Option("--identity", help="Identity type of --subject-id; default the consent dataset's first."),
]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="The purpose consented to (or withdrawn).")]
AtOpt = Annotated[
    str | None, typer.Option("--at", help="When, ISO-8601 (default now; a time without zone is UTC).")
]


def _keys(ctx: typer.Context, catalog: str | None, var: list[str] | None) -> Any:
    """The catalog's ``KeySource`` over the local keyring (KMS keys through boto3's chain)."""
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.keysource import KeySource

    loaded = load_catalog_option(ctx, catalog, var)
    return KeySource(loaded, LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring)))


def _instant(at: str | None) -> dt.datetime | None:
    from airflow_aisec.exceptions import ConsentError
    from airflow_aisec.governance.consent import as_instant

    try:
        return as_instant(at)
    except ConsentError:
        raise fail(f"--at {at!r}: not an ISO-8601 date and time (e.g. 2026-05-01T09:00:00Z)") from None


@app.command("show")
def show(
    ctx: typer.Context,
    subject_id: SubjectOpt,
    identity: IdentityOpt = None,
    at: AtOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print what the subject last said about each purpose (as of --at), and the subject's pseudonym."""
    from airflow_aisec.crypto.pseudonyms import Pseudonymizer
    from airflow_aisec.governance.consent_store import source_subject, subject_consents

    keys = _keys(ctx, catalog, var)
    moment = _instant(at)
    said = subject_consents(keys, subject_id, identity, at=moment)
    material = keys.keyring.ensure(keys.catalog.subjects.pseudonym_key, "symmetric").material
    consents = {
        purpose: {"state": "granted" if s.granted else "withdrawn", "since": s.at.isoformat()}
        for purpose, s in said.items()
    }
    pseudonym = Pseudonymizer(material)(subject_id)
    kind = source_subject(keys.catalog, identity).identity
    if as_json:
        print_json({"subject": pseudonym, "identity": kind, "consents": consents})
        return
    console.print(f"subject {pseudonym} ({kind})", markup=False, highlight=False, soft_wrap=True)
    if not said:
        console.print("no consent recorded", markup=False, soft_wrap=True)
    for purpose, state in consents.items():
        console.print(f"  {purpose}: {state['state']} since {state['since']}", markup=False, soft_wrap=True)


def _change(
    ctx: typer.Context,
    grant: bool,
    subject_id: str,
    purpose: str,
    identity: str | None,
    at: str | None,
    options: tuple[str | None, list[str] | None, str | None, bool],
) -> None:
    from airflow_aisec.governance.consent_store import record_consent

    catalog, var, log, as_json = options
    keys = _keys(ctx, catalog, var)
    moment = _instant(at)
    target, keyring = audit_location(ctx, log, None)
    with open_audit_log(target, keyring=keyring) as audit:
        change = record_consent(
            keys, subject_id, purpose, grant=grant, identity=identity, at=moment, audit=audit
        )
    data = {
        "action": change.action,
        "subject": change.subject,
        "identity": change.identity,
        "purpose": change.purpose,
        "at": change.at.isoformat(),
        "changed": change.changed,
        "file": change.uri,
    }
    if as_json:
        print_json(data)
        return
    verb = "granted" if grant else "withdrawn"
    what = f"{verb} {purpose} at {data['at']}" if change.changed else f"already {verb}: nothing written"
    console.print(f"subject {change.subject}: {what}", markup=False, highlight=False, soft_wrap=True)


@app.command("grant")
def grant(
    ctx: typer.Context,
    subject_id: SubjectOpt,
    purpose: PurposeOpt,
    identity: IdentityOpt = None,
    at: AtOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    log: LogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the subject's consent to a purpose (a row appended atomically; nothing if already granted)."""
    _change(ctx, True, subject_id, purpose, identity, at, (catalog, var, log, as_json))


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    subject_id: SubjectOpt,
    purpose: PurposeOpt,
    identity: IdentityOpt = None,
    at: AtOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    log: LogOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the withdrawal of the subject's consent to a purpose (nothing if already withdrawn)."""
    _change(ctx, False, subject_id, purpose, identity, at, (catalog, var, log, as_json))
