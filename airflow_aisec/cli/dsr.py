"""``aisec dsr``: carry out data-subject requests, verify their certificates, submit them to Airflow.

``run`` carries a request out in this process with the same core code as the DAGs; ``submit`` triggers the
DAG ``aisec_dsr_<type>`` through Airflow's REST API and can follow it to its certificate;
``verify-certificate`` checks a certificate's signature and audit proofs and, with ``--rescan``, re-reads
the lake as an auditor would.

The subject is named on the command line by a raw identifier (and a rectification by new values), but only
the subject's pseudonym, the request id, dataset names and counts are ever printed: never the identifier nor
a new value, not even in error messages.
"""

from __future__ import annotations

import configparser
import dataclasses
import enum
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

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
    parse_var_options,
    print_json,
)
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from rich.console import Console

    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr.certificate import CertificateReport, RescanReport
    from airflow_aisec.dsr.client import AirflowClient, RunStatus
    from airflow_aisec.dsr.request import DsrRequest

app = typer.Typer(
    help="Data-subject requests (access, erasure, rectification) and their signed certificates.",
    no_args_is_help=True,
)

DEFAULT_REASON = "data subject request"
DEFAULT_API_URL = "http://localhost:8080"
API_URL_ENV = "AISEC_AIRFLOW_API_URL"


class RequestType(enum.StrEnum):
    """What the subject asks for."""

    access = "access"
    erasure = "erasure"
    rectification = "rectification"


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


@dataclasses.dataclass(frozen=True)
class Asked:
    """A request as given on the command line, before it is checked against a catalog."""

    kind: str
    identity_type: str
    identity_value: str = dataclasses.field(repr=False)
    changes: dict[str, str] = dataclasses.field(repr=False)
    request_id: str | None
    reason: str
    dry_run: bool
    export_key: str | None

    @property
    def secrets(self) -> list[str]:
        """The raw values that must never be shown."""
        return [self.identity_value, *self.changes.values()]

    def make(self, catalog: Catalog, deadline_days: int | None = None) -> DsrRequest:
        """The request checked against ``catalog``; exit 2 with every problem (named, never quoted)."""
        from airflow_aisec.dsr.request import DEFAULT_DEADLINE_DAYS, make_request

        try:
            return make_request(
                catalog, self.kind, self.identity_type, self.identity_value, request_id=self.request_id,
                reason=self.reason, dry_run=self.dry_run, changes=self.changes or None,
                export_key=self.export_key, deadline_days=deadline_days or DEFAULT_DEADLINE_DAYS,
            )  # fmt: skip
        except AisecError as e:
            raise fail(_safe(str(e), self.secrets)) from None


def _asked(
    kind: RequestType,
    identity: str,
    changes: list[str] | None,
    request_id: str | None,
    reason: str,
    dry_run: bool,
    export_key: str | None,
) -> Asked:
    """Check what needs no catalog: the identity's form, ``--set`` pairs, the reason and the request id."""
    from airflow_aisec.dsr.request import MAX_VALUE, REQUEST_ID, parse_identity

    try:
        identity_type, identity_value = parse_identity(identity)
    except AisecError as e:
        raise fail("--identity: " + str(e).removeprefix("identity: ")) from None
    if len(identity_value) > MAX_VALUE or not identity_value.isprintable():
        raise fail(f"--identity: the value must be 1 to {MAX_VALUE} printable characters")
    fields: dict[str, str] = {}
    for item in changes or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise fail("--set: expected field=value, e.g. --set phone=+1-212-555-0199")
        fields[name.strip()] = value.strip()
    secrets = [identity_value, *fields.values()]
    if fields and kind is not RequestType.rectification:
        raise fail(f"--set: only a rectification changes fields, not {kind.value}")
    if not reason.strip():
        raise fail("--reason must not be empty")
    if request_id is not None and not REQUEST_ID.match(request_id):
        raise fail(_safe(f"--request-id {request_id!r}: 1 to 64 letters, digits, '.', '_' or '-'", secrets))
    return Asked(
        kind.value, identity_type, identity_value, fields, request_id, reason.strip(), dry_run, export_key
    )


def _safe(message: str, secrets: list[str]) -> str:
    from airflow_aisec.dsr.request import scrub

    return scrub(message, secrets)


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

    asked = _asked(kind, identity, changes, request_id, reason, dry_run, export_key)
    loaded = load_catalog_option(ctx, catalog, var)
    try:
        deadline_days = config.get_int("dsr_deadline_days")
        exports_dir = config.get_setting("dsr_exports", exports)
        holds_file = config.get_setting("holds", holds)
    except AisecError as e:
        raise fail(str(e)) from None
    request = asked.make(loaded, deadline_days)
    document = _execute(ctx, loaded, request, holds_file, exports_dir, asked.secrets)
    uri = _save(document, certificate or certificate_target(exports_dir, request.request_id))
    _report(document, uri, as_json)
    if document["certificate"]["status"] == "failed":
        raise typer.Exit(EXIT_FAILED)


def _keyring(ctx: typer.Context) -> LocalKeyring:
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring

    return LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))


def _open_log(
    ctx: typer.Context,
    keyring: LocalKeyring | None = None,
    *,
    create: bool = True,
    catalog: Catalog | None = None,
) -> AuditLog:
    """The audit log; ``create=False`` (checks and reviews) reads it only, never creating a log or a key.
    With ``catalog``, subjects are pseudonymized under its ``subjects.pseudonym_key``."""
    from airflow_aisec.audit.log import PSEUDONYM_KEY

    opts = global_options(ctx)
    key = catalog.subjects.pseudonym_key if catalog is not None else PSEUDONYM_KEY
    try:
        return open_audit_log(opts.log, keyring=keyring or opts.keyring, create=create, pseudonym_key=key)
    except AisecError as e:
        raise fail(str(e)) from None


def _execute(
    ctx: typer.Context,
    catalog: Catalog,
    request: DsrRequest,
    holds: str,
    exports: str,
    secrets: list[str],
) -> dict[str, Any]:
    """Run the request with the configured keyring, audit log, state folder and holds."""
    from airflow_aisec import config
    from airflow_aisec.dsr.index import SubjectIndex
    from airflow_aisec.dsr.run import StateStore, active_holds, run_request

    ring = _keyring(ctx)
    with _open_log(ctx, ring, catalog=catalog) as log:
        try:
            held = active_holds(holds)
            state = StateStore(config.get_setting("dsr_state"), ring)
            index = SubjectIndex(config.get_setting("dsr_index"), ring)
        except AisecError as e:
            raise fail(_safe(str(e), secrets)) from None
        try:
            return run_request(
                catalog, request, keyring=ring, audit=log, exports=exports, state=state, holds=held,
                index=index,
            )  # fmt: skip
        except AisecError as e:
            message = f"request {request.request_id} failed: {_safe(str(e), secrets)}"
            raise fail(message, EXIT_FAILED) from None


def _save(document: Mapping[str, Any], target: str) -> str:
    from airflow_aisec.dsr.run import save_certificate

    try:
        return save_certificate(document, target)
    except (AisecError, OSError) as e:
        raise fail(f"cannot write the certificate to {target}: {e}", EXIT_FAILED) from None


def _summary(document: Mapping[str, Any], uri: str | None) -> dict[str, Any]:
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


def _report(document: Mapping[str, Any], uri: str | None, as_json: bool, **extra: Any) -> None:
    shown = _summary(document, uri)
    if as_json:
        print_json({**extra, **shown})
        return
    _print_summary(shown, console)


def _wide(out: Console) -> Console:
    from rich.console import Console

    return Console(file=out.file, width=max(out.width, 200), color_system=None, highlight=False)


def _print_summary(shown: Mapping[str, Any], out: Console) -> None:
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
    (out if out.is_terminal else _wide(out)).print(table)
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
            with _open_log(ctx, create=False) as log:
                report = verify_certificate(document, log, keys)
    except (AisecError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise fail(f"{file}: the certificate is malformed: {e.__class__.__name__}", EXIT_FAILED) from None
    found = _rescan(ctx, document, identity or [], catalog, var) if rescan else None
    ok = report.ok and (found is None or found.ok)
    if as_json:
        extra = {"rescan": found.as_dict()} if found is not None else {}
        print_json({"file": str(file), **report.as_dict(), **extra, "ok": ok})
    else:
        _print_verification(file, report, found, ok)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _print_verification(file: Path, report: CertificateReport, found: RescanReport | None, ok: bool) -> None:
    line = f"certificate {file}: request {report.request_id}, status {report.status}"
    console.print(line, markup=False, highlight=False, soft_wrap=True)
    for check in report.checks:
        console.print(f"  ok      {check}", markup=False, highlight=False, soft_wrap=True)
    for problem in report.problems:
        console.print(f"  FAILED  {problem}", markup=False, highlight=False, soft_wrap=True)
    if found is not None:
        _print_rescan(found)
    console.print("verified" if ok else "NOT verified", markup=False, highlight=False)


def _rescan(
    ctx: typer.Context,
    document: Mapping[str, Any],
    identities: list[str],
    catalog: str | None,
    var: list[str] | None,
) -> RescanReport:
    """The auditor's re-read of the lake for the certificate's subject (see ``rescan_certificate``)."""
    from airflow_aisec.crypto.pseudonyms import Pseudonymizer
    from airflow_aisec.dsr.certificate import rescan_certificate
    from airflow_aisec.dsr.request import parse_identity
    from airflow_aisec.dsr.resolve import catalog_scanner

    if not identities:
        raise fail(
            "--rescan: give the subject's --identity TYPE=VALUE (the certificate has only a pseudonym)"
        )
    pairs = []
    for item in identities:
        try:
            pairs.append(parse_identity(item))
        except AisecError as e:
            raise fail("--identity: " + str(e).removeprefix("identity: ")) from None
    secrets = [value for _kind, value in pairs]
    loaded = load_catalog_option(ctx, catalog, var)
    ring = _keyring(ctx)
    try:
        # The pseudonym the request recorded: the catalog's pseudonym key, read (never created) here.
        material = ring.get(loaded.subjects.pseudonym_key).material
        assert material is not None
        pseudonymize, scanner = Pseudonymizer(material), catalog_scanner(loaded, ring)
        return rescan_certificate(document, loaded, pairs, pseudonymize=pseudonymize, scanner=scanner)
    except AisecError as e:
        raise fail(f"--rescan: {_safe(str(e), secrets)}") from None


def _print_rescan(found: RescanReport) -> None:
    for d in found.datasets:
        held = ", held" if d["held"] else ""
        console.print(
            f"  rescan  {d['dataset']} (certified {d['certified_status']}{held}): {d['files_read']} file(s), "
            f"{d['rows_read']} row(s) read; {d['subject_rows']} row(s) of the subject, {d['mentions']} "
            "mention(s)", markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
    for problem in found.problems:
        console.print(f"  FAILED  {problem}", markup=False, highlight=False, soft_wrap=True)


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
    from airflow_aisec.dsr.index import SubjectIndex, refresh_catalog
    from airflow_aisec.dsr.resolve import catalog_scanner

    loaded = load_catalog_option(ctx, catalog, var)
    ring = _keyring(ctx)
    try:
        index = SubjectIndex(config.get_setting("dsr_index"), ring)
        stats = refresh_catalog(loaded, index, catalog_scanner(loaded, ring), dataset)
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

    with _open_log(ctx, create=False) as log:
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
        _wide(console).print(table)
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

    asked = _asked(kind, identity, changes, request_id, reason, dry_run, export_key)
    asked = dataclasses.replace(asked, request_id=asked.request_id or new_request_id(asked.kind))
    _check_locally(ctx, asked, catalog, var)
    dag_id = dag_id_for(asked.kind)
    out = err_console if as_json else console
    with _client(api_url, token, username, password, allow_insecure_http) as client:
        try:
            run_id = client.trigger(dag_id, _conf(asked))
        except AisecError as e:
            raise fail(_safe(str(e), asked.secrets)) from None
        _say(out, f"submitted {asked.kind} request {asked.request_id} as run {run_id} of DAG {dag_id}")
        _warn_if_paused(client, dag_id)
        submitted = {"request_id": asked.request_id, "dag_id": dag_id, "dag_run_id": run_id}
        if not wait:
            if as_json:
                print_json({**submitted, "state": "queued"})
            return
        _follow(client, dag_id, run_id, timeout, out, asked, certificate, as_json, submitted)


def _check_locally(ctx: typer.Context, asked: Asked, catalog: str | None, var: list[str] | None) -> None:
    """Check the request against the configured catalog if there is one and it loads (else Airflow will)."""
    from airflow_aisec import config
    from airflow_aisec.catalog import load_catalog

    try:
        path = config.get_setting("catalog", catalog or global_options(ctx).catalog)
        loaded = load_catalog(path, parse_var_options(var)) if path else None
    except AisecError as e:
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        _say(err_console, f"not checked against the local catalog ({first}); Airflow will check it")
        return
    if loaded is not None:
        asked.make(loaded)


def _conf(asked: Asked) -> dict[str, Any]:
    """The run's ``conf``, as the DAGs' Params expect it."""
    conf: dict[str, Any] = {
        "identity_type": asked.identity_type,
        "identity_value": asked.identity_value,
        "request_id": asked.request_id,
        "reason": asked.reason,
        "dry_run": asked.dry_run,
    }
    if asked.kind == "rectification":
        conf["changes"] = dict(asked.changes)
    if asked.kind == "access":
        conf["export_key"] = asked.export_key
    return conf


def api_url_default(option: str | None = None) -> str:
    """``--api-url``/``AISEC_AIRFLOW_API_URL``, else ``[api] base_url`` of Airflow, else localhost:8080."""
    from airflow_aisec import config

    if option:
        return option
    if os.environ.get("AIRFLOW__API__BASE_URL"):
        return os.environ["AIRFLOW__API__BASE_URL"]
    path = Path(os.environ.get("AIRFLOW_CONFIG") or config.airflow_home() / "airflow.cfg")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
        value = parser.get("api", "base_url", fallback="")
    except (OSError, configparser.Error, UnicodeDecodeError):
        value = ""
    return value.strip() or DEFAULT_API_URL


def _client(
    api_url: str | None, token: str | None, username: str | None, password: str | None, insecure: bool
) -> AirflowClient:
    from airflow_aisec.dsr.client import AirflowClient

    try:
        return AirflowClient(
            api_url_default(api_url), token=token, username=username, password=password,
            allow_insecure_http=insecure,
        )  # fmt: skip
    except AisecError as e:
        raise fail(str(e)) from None


def _say(out: Console, text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _warn_if_paused(client: AirflowClient, dag_id: str) -> None:
    try:
        paused = client.dag_paused(dag_id)
    except AisecError:
        return  # only a hint: the run itself was created
    if paused:
        _say(err_console, f"DAG {dag_id} is paused: the run waits until it is unpaused in Airflow")


def _follow(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    timeout: float,
    out: Console,
    asked: Asked,
    certificate: str | None,
    as_json: bool,
    submitted: dict[str, Any],
) -> None:
    """Wait for the run, then fetch, save and show its certificate; exit 1 unless the request completed."""
    try:
        status = client.wait(dag_id, run_id, timeout, on_change=_progress(out))
        result = _result(client, dag_id, run_id, status)
    except AisecError as e:
        raise fail(_safe(str(e), asked.secrets), EXIT_FAILED) from None
    document = result.get("certificate") if isinstance(result.get("certificate"), dict) else None
    if document is not None:
        uri = _save(document, certificate) if certificate else result.get("certificate_uri")
        _report(document, uri, as_json, **submitted, state=status.state)
    if status.state != "success" or document is None or document["certificate"].get("status") == "failed":
        raise fail(_outcome(run_id, dag_id, status, document is not None), EXIT_FAILED)


def _result(client: AirflowClient, dag_id: str, run_id: str, status: RunStatus) -> dict[str, Any]:
    """The result of task ``complete``: always when it succeeded; when the run failed, if it left one."""
    from airflow_aisec.dsr.contract import COMPLETE_TASK

    if status.tasks.get(COMPLETE_TASK) == "success":
        result = client.result(dag_id, run_id)
        client.certificate(dag_id, run_id)  # checks it is a certificate
        return result
    if status.tasks.get(COMPLETE_TASK) == "failed":
        try:
            return client.result(dag_id, run_id)  # a failed request still gets its certificate
        except AisecError:
            return {}
    return {}


def _outcome(run_id: str, dag_id: str, status: RunStatus, certified: bool) -> str:
    """Why a followed run did not end with a completed request, in one line."""
    from airflow_aisec.dsr.contract import APPROVAL_TASK, COMPLETE_TASK

    if status.tasks.get(APPROVAL_TASK) == "skipped" or (
        status.state == "success" and status.tasks.get(COMPLETE_TASK) == "skipped"
    ):
        return f"run {run_id} of DAG {dag_id}: the request was rejected in Airflow; nothing was changed"
    failed = sorted(n for n, s in status.tasks.items() if s in ("failed", "upstream_failed"))
    detail = f" (failed tasks: {', '.join(failed)})" if failed else ""
    if status.state == "success" and not certified:
        return f"run {run_id} of DAG {dag_id} succeeded but left no certificate{detail}"
    return f"run {run_id} of DAG {dag_id} {status.state}: the request failed{detail}"


def _progress(out: Console) -> Callable[[RunStatus], None]:
    """A callback printing what changed between two statuses of the run."""
    seen: dict[str, Any] = {"state": None, "tasks": {}, "waiting": ()}

    def show(status: RunStatus) -> None:
        if status.state != seen["state"]:
            _say(out, f"run {status.state}")
        for name, state in status.tasks.items():
            if state is not None and seen["tasks"].get(name) != state:
                _say(out, f"  task {name}: {state}")
        for name in status.awaiting_approval:
            if name not in seen["waiting"]:
                _say(out, f"waiting for approval in Airflow (task {name})")
        seen.update(state=status.state, tasks=dict(status.tasks), waiting=status.awaiting_approval)

    return show
