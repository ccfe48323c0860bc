"""What every ``aisec`` command shares: global options, consoles, exit codes and error display."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from airflow_aisec import config
from airflow_aisec.exceptions import ConfigError

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog

# Exit codes: 0 success, 1 the checked thing failed (e.g. verification), 2 bad input or configuration.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

# Options several commands share.
CatalogOpt = Annotated[
    str | None,
    typer.Option("--catalog", help="Privacy catalog (default: global --catalog, \\[aisec] catalog)."),
]
VarOpt = Annotated[
    list[str] | None, typer.Option("--var", help="Catalog placeholder value, name=value. Repeatable.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
LogOpt = Annotated[
    str | None,
    typer.Option(
        "--log", help="Audit log URI or Airflow connection id (default: global --log, \\[aisec] audit_log)."
    ),
]
KeyringOpt = Annotated[
    str | None,
    typer.Option(
        "--keyring", help="Local keyring file (default: global --keyring, AISEC_KEYRING, \\[aisec] keyring)."
    ),
]

console = Console()
err_console = Console(stderr=True)


@dataclasses.dataclass
class GlobalOptions:
    """Values of the flags given before the command (``aisec --catalog C ...``)."""

    catalog: str | None = None
    log: str | None = None
    keyring: str | None = None


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation (defaults when the command runs outside ``aisec``)."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, GlobalOptions) else GlobalOptions()


def audit_location(ctx: typer.Context, log: str | None, keyring: str | None) -> tuple[str | None, str | None]:
    """The audit log and keyring named on the command (``--log``/``--keyring``), else by the global flags."""
    opts = global_options(ctx)
    return log or opts.log, keyring or opts.keyring


def open_audit_log(target: str | None, **options: Any) -> AuditLog:
    """``AuditLog.open`` on a URI or an Airflow connection id (``--log``), else ``[aisec] audit_log``.

    Airflow is imported only to resolve a connection id: a URI opens without it.
    """
    from airflow_aisec.audit import AuditLog

    target = target or config.get_setting("audit_log")
    if "://" not in target:
        from airflow_aisec.hooks.audit import audit_uri

        target = audit_uri(target)
    return AuditLog.open(target, **options)


def resolve_catalog(ctx: typer.Context, file: str | None) -> str:
    """The catalog named on the command, else by ``--catalog``, else by configuration."""
    return config.catalog_path(file or global_options(ctx).catalog)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` on stderr and return the exit to raise."""
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else on that stream."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def parse_var_options(values: list[str] | None) -> dict[str, str]:
    """``--var name=value`` options, merged over the configured catalog variables."""
    try:
        return config.catalog_vars(config.parse_vars(values or []))
    except ConfigError as e:
        raise fail(str(e)) from None


def load_catalog_option(ctx: typer.Context, catalog: str | None, var: list[str] | None) -> Catalog:
    """The catalog named by ``--catalog`` (or the global option, or configuration) with ``--var`` values;
    a catalog that does not load is a clear message and exit 2."""
    from airflow_aisec.catalog import load_catalog
    from airflow_aisec.exceptions import AisecError

    try:
        return load_catalog(
            config.catalog_path(catalog or global_options(ctx).catalog), parse_var_options(var)
        )
    except AisecError as e:
        raise fail(str(e)) from None
