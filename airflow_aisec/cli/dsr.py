"""``aisec dsr``: carry out data-subject requests, verify their certificates, submit them to Airflow.

``run`` carries a request out in this process with the same core code as the DAGs; ``submit`` triggers the
DAG ``aisec_dsr_<type>`` through Airflow's REST API and can follow it to its certificate;
``verify-certificate`` checks a certificate's signature and audit proofs and, with ``--rescan``, re-reads
the lake as an auditor would.

The subject is named on the command line by a raw identifier (and a rectification by new values), but only
the subject's pseudonym, the request id, dataset names and counts are ever printed: never the identifier nor
a new value, not even in error messages.

The commands and their options are here; the request as given (``dsr_request``), what runs in this process
(``dsr_local``), what is shown and written (``dsr_output``) and the Airflow side of ``submit``
(``dsr_submit``) each have their module.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from airflow_aisec.cli.common import (
    EXIT_FAILED,
    CatalogOpt,
    JsonOpt,
    VarOpt,
    console,
    err_console,
    fail,
    load_catalog_option,
    print_json,
)
from airflow_aisec.cli.dsr_local import execute_request, open_keyring, open_log, rescan_lake
from airflow_aisec.cli.dsr_output import print_verification, save_certificate_to, say, show_certificate, wide
from airflow_aisec.cli.dsr_request import RequestType, parse_asked, safe
from airflow_aisec.cli.dsr_submit import (
    API_URL_ENV,
    check_locally,
    follow,
    open_client,
    run_conf,
    warn_if_paused,
)
from airflow_aisec.exceptions import AisecError

app = typer.Typer(
    help="Data-subject requests (access, erasure, rectification) and their signed certificates.",
    no_args_is_help=True,
)

DEFAULT_REASON = "data subject request"


TypeOpt = Annotated[RequestType, typer.Option("--type", help="What the subject asks for.")]
IdentityOpt = Annotated[
    str,
    typer.Option(
        "--identity",
        help="The subject, as TYPE=VALUE of the catalog's subject identities (e.g. email=jane@example.com).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Rectification: new value of a field, field=value. Repeatable."),
]
RequestIdOpt = Annotated[
    str | None, typer.Option("--request-id", help="Request id (default: generated, e.g. erasure-20261126-…).")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why the request is made (kept in the audit log).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Report what would change; change nothing.")]
ExportKeyOpt = Annotated[
    str | None, typer.Option("--export-key", help="Access: the catalog key that encrypts the export package.")
]
CertificateOpt = Annotated[
    str | None,
    typer.Option("--certificate", help="Write the signed certificate to this file (or s3:// URI)."),
]


# --- run --------------------------------------------------------------------------------------------------


@app.command("run")
def run(
    ctx: typer.Context,
    kind: TypeOpt,
    identity: IdentityOpt,
    changes: SetOpt = None,
    request_id: RequestIdOpt = None,
    reason: ReasonOpt = DEFAULT_REASON,
    dry_run: DryRunOpt = False,
    export_key: ExportKeyOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    certificate: Annotated[
        str | None,
        typer.Option(
            "--certificate",
            help="Write the signed certificate here (default: <dsr_exports>/certificates/<request id>.json).",
        ),
    ] = None,
    holds: Annotated[
        str | None, typer.Option("--holds", help="Per-subject holds file (default: \\[aisec] holds).")
    ] = None,
    exports: Annotated[
        str | None,
        typer.Option(
            "--exports", help="Folder or s3:// prefix of access packages (default: \\[aisec] dsr_exports)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Carry a request out here, on every dataset of the catalog, and issue its signed certificate.

    Runs the same steps as the DAGs aisec_dsr_<type>, recorded in the audit log (global --log). Rerunning a
    request id is safe. Exit 0 done (also with legal holds or nothing found), 1 the request failed, 2 bad
    input.
    """
    from airflow_aisec import config
    from airflow_aisec.dsr.run import certificate_target

    asked = parse_asked(kind, identity, changes, request_id, reason, dry_run, export_key)
    loaded = load_catalog_option(ctx, catalog, var)
    try:
        deadline_days = config.get_int("dsr_deadline_days")
        exports_dir = config.get_setting("dsr_exports", exports)
        holds_file = config.get_setting("holds", holds)
    except AisecError as e:
        raise fail(str(e)) from None
    request = asked.make(loaded, deadline_days)
    document = execute_request(ctx, loaded, request, holds_file, exports_dir, asked.secrets)
    uri = save_certificate_to(document, certificate or certificate_target(exports_dir, request.request_id))
    show_certificate(document, uri, as_json)
    if document["certificate"]["status"] == "failed":
        raise typer.Exit(EXIT_FAILED)


# --- verify-certificate -----------------------------------------------------------------------------------


@app.command("verify-certificate")
def verify_certificate_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The certificate (JSON) to check.")],
    verifier_key: Annotated[
        list[str] | None,
        typer.Option("--verifier-key", help="Audit log verifier key (aisec audit public-key). Repeatable."),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Offline: check with the --verifier-key keys only, not the log.")
    ] = False,
    rescan: Annotated[
        bool,
        typer.Option(
            "--rescan",
            help="Also re-read the lake from the catalog (no subject index, no request state) and check that "
            "the subject remains in no dataset the certificate says was erased. Needs --identity.",
        ),
    ] = False,
    identity: Annotated[
        list[str] | None,
        typer.Option(
            "--identity",
            help="With --rescan: the subject, TYPE=VALUE; the first must be the certificate's subject (its "
            "pseudonym is checked), more identities of theirs widen the search. Repeatable.",
        ),
    ] = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a certificate: signature, signed checkpoint, inclusion proofs and (unless --no-log) the live log.

    With --rescan, re-read the lake as an auditor would and report, per dataset, the files and rows read and
    what of the subject remains. Exit 0 verified, 1 a check failed or data remains, 2 not a certificate or
    bad input.
    """
    from airflow_aisec.dsr.certificate import load, verify_certificate

    try:
        document = load(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise fail(f"cannot read {file}: {e.strerror or e}") from None
    except (AisecError, UnicodeDecodeError) as e:
        raise fail(f"{file}: {e}") from None
    keys = verifier_key or []
    if no_log and not keys:
        raise fail("--no-log: give at least one --verifier-key (from `aisec audit public-key`)")
    try:
        if no_log:
            report = verify_certificate(document, None, keys)
        else:
            with open_log(ctx, create=False) as log:
                report = verify_certificate(document, log, keys)
    except (AisecError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise fail(f"{file}: the certificate is malformed: {e.__class__.__name__}", EXIT_FAILED) from None
    found = rescan_lake(ctx, document, identity or [], catalog, var) if rescan else None
    ok = report.ok and (found is None or found.ok)
    if as_json:
        extra = {"rescan": found.as_dict()} if found is not None else {}
        print_json({"file": str(file), **report.as_dict(), **extra, "ok": ok})
    else:
        print_verification(file, report, found, ok)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("index")
def index_command(
    ctx: typer.Context,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only this dataset. Repeatable (default: all).")
    ] = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build or refresh the subject index, so requests read only the files that may hold their subject.

    Files already indexed at their current version are kept; new and changed ones are read and indexed;
    vanished ones dropped. Run it after data lands (the aisec_dsr_index DAG does so daily).
    """
    from airflow_aisec import config
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.dsr.index import SubjectIndex, refresh_catalog
    from airflow_aisec.dsr.scan import catalog_scanner

    loaded = load_catalog_option(ctx, catalog, var)
    ring = open_keyring(ctx)
    try:
        index = SubjectIndex(config.get_setting("dsr_index"), ring)
        stats = refresh_catalog(loaded, index, catalog_scanner(KeySource(loaded, ring)), dataset)
    except (AisecError, KeyError) as e:
        raise fail(str(e).strip('"')) from None
    if as_json:
        print_json({"index": index.root.uri, "datasets": [s.as_dict() for s in stats]})
        return
    for s in stats:
        console.print(
            f"{s.dataset}: {s.files} file(s), {s.indexed} indexed, {s.reused} unchanged, {s.dropped} dropped "
            f"({s.seconds:.1f} s)", markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    console.print(f"subject index: {index.root.uri}", markup=False, highlight=False, soft_wrap=True)


@app.command("requests")
def requests_command(
    ctx: typer.Context,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only requests not answered yet (open, failed, dry run only).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the requests in the audit log with their statutory deadline; exit 1 if one is overdue."""
    from rich.table import Table

    from airflow_aisec.dsr.tracking import requests

    with open_log(ctx, create=False) as log:
        rows = requests(log)
    if pending:
        rows = [r for r in rows if r["pending"]]
    overdue = [r for r in rows if r["status"] == "overdue"]
    if as_json:
        print_json({"requests": rows, "overdue": len(overdue)})
    else:
        table = Table("request", "type", "subject", "received", "deadline", "days left", "status")
        for row in rows:
            table.add_row(
                row["request_id"], str(row["type"]), str(row["subject"])[:24] + "…",
                str(row["received_at"])[:10],
                str(row["deadline"])[:10], str(row["days_left"]), row["status"],
            )  # fmt: skip
        wide(console).print(table)
        if overdue:
            console.print(f"{len(overdue)} request(s) overdue", markup=False, highlight=False)
    if overdue:
        raise typer.Exit(EXIT_FAILED)


# --- submit -----------------------------------------------------------------------------------------------


@app.command("submit")
def submit(
    ctx: typer.Context,
    kind: TypeOpt,
    identity: IdentityOpt,
    changes: SetOpt = None,
    request_id: RequestIdOpt = None,
    reason: ReasonOpt = DEFAULT_REASON,
    dry_run: DryRunOpt = False,
    export_key: ExportKeyOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run to its end, then fetch the certificate.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="With --wait: give up after this many seconds.")
    ] = 3600,
    certificate: CertificateOpt = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            envvar=API_URL_ENV,
            help="Airflow API address (default: \\[api] base_url of airflow.cfg, else http://localhost:8080).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="AISEC_AIRFLOW_TOKEN", show_default=False, help="Bearer token (JWT)."),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", envvar="AISEC_AIRFLOW_USERNAME", help="Airflow user.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option("--password", envvar="AISEC_AIRFLOW_PASSWORD", show_default=False, help="Its password."),
    ] = None,
    allow_insecure_http: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-http",
            help="Accept a plain http:// API on another machine (token and identity travel unencrypted).",
        ),
    ] = False,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a request to Airflow: trigger the DAG aisec_dsr_<type> through its REST API.

    The request is first checked against the local catalog when one loads, then by the DAG's parameters.
    With --wait, follow the run (saying when it waits for approval in Airflow) and fetch the certificate.
    Exit 0 submitted (or, with --wait, completed), 1 the run failed or timed out, 2 bad input, or the
    API is unreachable or refused the request (nothing was submitted).
    """
    from airflow_aisec.dsr.contract import dag_id_for
    from airflow_aisec.dsr.request import new_request_id

    asked = parse_asked(kind, identity, changes, request_id, reason, dry_run, export_key)
    asked = dataclasses.replace(asked, request_id=asked.request_id or new_request_id(asked.kind))
    check_locally(ctx, asked, catalog, var)
    dag_id = dag_id_for(asked.kind)
    out = err_console if as_json else console
    with open_client(api_url, token, username, password, allow_insecure_http) as client:
        try:
            run_id = client.trigger(dag_id, run_conf(asked))
        except AisecError as e:
            raise fail(safe(str(e), asked.secrets)) from None
        say(out, f"submitted {asked.kind} request {asked.request_id} as run {run_id} of DAG {dag_id}")
        warn_if_paused(client, dag_id)
        submitted = {"request_id": asked.request_id, "dag_id": dag_id, "dag_run_id": run_id}
        if not wait:
            if as_json:
                print_json({**submitted, "state": "queued"})
            return
        follow(client, dag_id, run_id, timeout, out, asked, certificate, as_json, submitted)
