"""What ``aisec dsr`` does in this process: open the keyring and the audit log, carry a request out, and
re-read the lake for a certificate's subject as an auditor would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from airflow_aisec.cli.common import EXIT_FAILED, fail, global_options, load_catalog_option, open_audit_log
from airflow_aisec.cli.dsr_request import safe
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr.certificate import RescanReport
    from airflow_aisec.dsr.request import DsrRequest


def open_keyring(ctx: typer.Context) -> LocalKeyring:
    """The keyring of the global ``--keyring`` (default: ``[aisec] keyring``)."""
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring

    return LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))


def open_log(
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


def execute_request(
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
    from airflow_aisec.dsr.run import active_holds, run_request
    from airflow_aisec.dsr.state import StateStore

    ring = open_keyring(ctx)
    with open_log(ctx, ring, catalog=catalog) as log:
        try:
            held = active_holds(holds)
            state = StateStore(config.get_setting("dsr_state"), ring)
            index = SubjectIndex(config.get_setting("dsr_index"), ring)
        except AisecError as e:
            raise fail(safe(str(e), secrets)) from None
        try:
            return run_request(
                catalog, request, keyring=ring, audit=log, exports=exports, state=state, holds=held,
                index=index,
            )  # fmt: skip
        except AisecError as e:
            message = f"request {request.request_id} failed: {safe(str(e), secrets)}"
            raise fail(message, EXIT_FAILED) from None


def rescan_lake(
    ctx: typer.Context,
    document: Mapping[str, Any],
    identities: list[str],
    catalog: str | None,
    var: list[str] | None,
) -> RescanReport:
    """The auditor's re-read of the lake for the certificate's subject (see ``rescan_certificate``)."""
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.crypto.pseudonyms import Pseudonymizer
    from airflow_aisec.dsr.certificate import rescan_certificate
    from airflow_aisec.dsr.request import parse_identity
    from airflow_aisec.dsr.scan import catalog_scanner

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
    ring = open_keyring(ctx)
    try:
        # The pseudonym the request recorded: the catalog's pseudonym key, read (never created) here.
        material = ring.get(loaded.subjects.pseudonym_key).material
        assert material is not None
        pseudonymize, scanner = Pseudonymizer(material), catalog_scanner(KeySource(loaded, ring))
        return rescan_certificate(document, loaded, pairs, pseudonymize=pseudonymize, scanner=scanner)
    except AisecError as e:
        raise fail(f"--rescan: {safe(str(e), secrets)}") from None
