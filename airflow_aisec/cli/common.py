"""What every ``aisec`` command shares: global options, consoles, exit codes and error display."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import typer
from rich.console import Console

from airflow_aisec import config
from airflow_aisec.exceptions import ConfigError

# Exit codes: 0 success, 1 the checked thing failed (e.g. verification), 2 bad input or configuration.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

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
