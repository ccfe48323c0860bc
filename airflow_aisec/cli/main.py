"""Entry point of the ``aisec`` command."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from airflow_aisec import __version__, config
from airflow_aisec.cli import audit as audit_cli
from airflow_aisec.cli import catalog as catalog_cli
from airflow_aisec.cli import compliance as compliance_cli
from airflow_aisec.cli import consent as consent_cli
from airflow_aisec.cli import crypto as crypto_cli
from airflow_aisec.cli import drift as drift_cli
from airflow_aisec.cli import dsr as dsr_cli
from airflow_aisec.cli import fairness as fairness_cli
from airflow_aisec.cli import governance as governance_cli
from airflow_aisec.cli import keys as keys_cli
from airflow_aisec.cli import lake as lake_cli
from airflow_aisec.cli import model as model_cli
from airflow_aisec.cli import pii as pii_cli
from airflow_aisec.cli import retention as retention_cli
from airflow_aisec.cli.common import EXIT_BAD_INPUT, GlobalOptions, fail, print_json
from airflow_aisec.exceptions import AisecError

app = typer.Typer(
    name="aisec",
    help="Privacy and security for data pipelines: catalog, PII, encryption, retention, DSRs, audit log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(catalog_cli.app, name="catalog")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(retention_cli.retention_app, name="retention")
app.add_typer(retention_cli.holds_app, name="holds")
app.add_typer(dsr_cli.app, name="dsr")
app.add_typer(drift_cli.app, name="drift")
app.add_typer(model_cli.app, name="model")
app.add_typer(fairness_cli.app, name="bias")
app.add_typer(consent_cli.app, name="consent")
app.add_typer(compliance_cli.app, name="compliance")
app.command("sample-lake")(lake_cli.sample_lake)
app.command("scan")(pii_cli.scan)
app.command("mask")(pii_cli.mask)
app.command("unmask")(pii_cli.unmask)
app.command("encrypt")(crypto_cli.encrypt)
app.command("decrypt")(crypto_cli.decrypt)
app.command("dpia")(governance_cli.dpia)
app.command("ropa")(governance_cli.ropa)
config_app = typer.Typer(help="Show the resolved \\[aisec] settings.")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aisec {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Privacy catalog file (overrides \\[aisec] catalog).")
    ] = None,
    log: Annotated[
        str | None, typer.Option("--log", help="Audit log URI (overrides \\[aisec] audit_log).")
    ] = None,
    keyring: Annotated[
        str | None,
        typer.Option("--keyring", help="Local keyring file (overrides AISEC_KEYRING and \\[aisec] keyring)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Privacy and security for data pipelines."""
    # stdout carries only the command's output (JSON for scripts); logs go to stderr.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    ctx.obj = GlobalOptions(catalog=catalog, log=log, keyring=keyring)


@config_app.command("show")
def config_show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Print every [aisec] setting as this command would use it, and where it can be overridden."""
    opts: GlobalOptions = ctx.find_root().obj
    flags = {"catalog": opts.catalog, "audit_log": opts.log, "keyring": opts.keyring}
    values = {o.name: config.get_setting(o.name, flags.get(o.name)) for o in config.OPTIONS}
    if as_json:
        print_json(values)
        return
    for name, value in values.items():
        typer.echo(f"{name} = {value}    (AIRFLOW__AISEC__{name.upper()})")


def main() -> None:
    """Run the CLI; product errors become a one-line message and exit code 2, never a traceback."""
    try:
        app()
    except AisecError as e:
        raise SystemExit(fail(str(e), EXIT_BAD_INPUT).exit_code) from None


if __name__ == "__main__":
    main()
