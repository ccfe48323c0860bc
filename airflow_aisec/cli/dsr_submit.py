"""How ``aisec dsr submit`` talks to Airflow: the run's ``conf``, the API address, and following the run
to its certificate."""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from airflow_aisec.cli.common import EXIT_FAILED, err_console, fail, global_options, parse_var_options
from airflow_aisec.cli.dsr_output import save_certificate_to, say, show_certificate
from airflow_aisec.cli.dsr_request import Asked, safe
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from rich.console import Console

    from airflow_aisec.dsr.client import AirflowClient, RunStatus

DEFAULT_API_URL = "http://localhost:8080"
API_URL_ENV = "AISEC_AIRFLOW_API_URL"


def check_locally(ctx: typer.Context, asked: Asked, catalog: str | None, var: list[str] | None) -> None:
    """Check the request against the configured catalog if there is one and it loads (else Airflow will)."""
    from airflow_aisec import config
    from airflow_aisec.catalog import load_catalog

    try:
        path = config.get_setting("catalog", catalog or global_options(ctx).catalog)
        loaded = load_catalog(path, parse_var_options(var)) if path else None
    except AisecError as e:
        first = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        say(err_console, f"not checked against the local catalog ({first}); Airflow will check it")
        return
    if loaded is not None:
        asked.make(loaded)


def run_conf(asked: Asked) -> dict[str, Any]:
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


def open_client(
    api_url: str | None, token: str | None, username: str | None, password: str | None, insecure: bool
) -> AirflowClient:
    """The client of the Airflow REST API; exit 2 when the address or credentials are unusable."""
    from airflow_aisec.dsr.client import AirflowClient

    try:
        return AirflowClient(
            api_url_default(api_url), token=token, username=username, password=password,
            allow_insecure_http=insecure,
        )  # fmt: skip
    except AisecError as e:
        raise fail(str(e)) from None


def warn_if_paused(client: AirflowClient, dag_id: str) -> None:
    """Say on stderr when the DAG is paused (its run would wait)."""
    try:
        paused = client.dag_paused(dag_id)
    except AisecError:
        return  # only a hint: the run itself was created
    if paused:
        say(err_console, f"DAG {dag_id} is paused: the run waits until it is unpaused in Airflow")


def follow(
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
        raise fail(safe(str(e), asked.secrets), EXIT_FAILED) from None
    document = result.get("certificate") if isinstance(result.get("certificate"), dict) else None
    if document is not None:
        uri = save_certificate_to(document, certificate) if certificate else result.get("certificate_uri")
        show_certificate(document, uri, as_json, **submitted, state=status.state)
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
            say(out, f"run {status.state}")
        for name, state in status.tasks.items():
            if state is not None and seen["tasks"].get(name) != state:
                say(out, f"  task {name}: {state}")
        for name in status.awaiting_approval:
            if name not in seen["waiting"]:
                say(out, f"waiting for approval in Airflow (task {name})")
        seen.update(state=status.state, tasks=dict(status.tasks), waiting=status.awaiting_approval)

    return show
