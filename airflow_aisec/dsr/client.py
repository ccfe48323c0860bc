"""A small client of the Airflow 3 REST API for data-subject requests: trigger, follow, approve, fetch.

It submits a request as a run of a DAG ``aisec_dsr_<type>`` (``POST /api/v2/dags/{dag_id}/dagRuns``),
follows the run and its task instances, answers the human-in-the-loop approval of the task ``approve``
(``PATCH .../taskInstances/{task_id}/{map_index}/hitlDetails`` with the option ``Approve``), and reads the
signed certificate from the XCom ``return_value`` of the task ``complete``. No Airflow import: only HTTP.

Authentication: a bearer token (``token``), or ``username``/``password`` exchanged once for a JWT through the
simple auth manager's ``POST /auth/token``; with neither, no ``Authorization`` header is sent (enough when
the server lets everyone in, e.g. ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``).

Plain ``http://`` is refused unless the server is on this machine (``localhost``, 127.0.0.0/8, ``::1``) or
``allow_insecure_http`` says so: the token, the password and the subject's identity would cross the network
readable by anyone on the way.

Every failure is a ``DsrError`` with a one-line message naming the URL, DAG, run or task and the HTTP status;
messages never contain the token, the password or the request's identity value and new field values.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from airflow_aisec.dsr.contract import APPROVAL_TASK, COMPLETE_TASK
from airflow_aisec.dsr.request import scrub
from airflow_aisec.exceptions import DsrError

API = "/api/v2"
TOKEN_ROUTE = "/auth/token"  # nosec B105 # a URL path, not a password
APPROVE_OPTION = "Approve"
# A human-in-the-loop task waits parked in ``awaiting_input`` (Airflow 3.3+) or ``deferred`` (older).
APPROVAL_STATES = ("awaiting_input", "deferred")
FINISHED_RUN_STATES = ("success", "failed")
PAGE = 100
POLL_INTERVAL = 2.0  # seconds between two looks at a run in ``wait``


@dataclasses.dataclass(frozen=True)
class RunStatus:
    """A snapshot of one DAG run.

    ``state``: the run's state (``queued``, ``running``, ``success``, ``failed``). ``tasks``: the state of
    each task instance, keyed ``task_id`` or ``task_id[label]`` for mapped ones (label: the rendered map
    index, e.g. the dataset, else the map index; ``None`` before it is scheduled). ``awaiting_approval``:
    the approval tasks now waiting for a human.
    """

    state: str
    tasks: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    awaiting_approval: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """True once the run succeeded or failed."""
        return self.state in FINISHED_RUN_STATES


class AirflowClient:
    """The Airflow REST API at ``base_url`` (e.g. ``http://localhost:8080``, without ``/api/v2``).

    ``timeout`` bounds each HTTP call (seconds); ``transport`` replaces the network (tests). Plain ``http://``
    to another machine is a ``DsrError`` unless ``allow_insecure_http``. Use as a context manager, or call
    ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise DsrError(f"Airflow API URL must start with http:// or https://, got {base_url!r}")
        if self.base_url.startswith("http://") and not allow_insecure_http and not is_loopback(self.base_url):
            raise DsrError(
                f"refusing plain HTTP to the Airflow API at {_origin(self.base_url)}: the token and the "
                "subject's identity would travel unencrypted; use https://, or --allow-insecure-http "
                "(plain HTTP is accepted without it only on localhost, 127.0.0.0/8 and ::1)"
            )
        if (username is None) != (password is None) and not token:
            raise DsrError("Airflow API: give both a username and a password, or a token")
        self._token = token or None
        self._username = username
        self._password = password
        self._secrets: list[str] = []  # raw values of the request, scrubbed from every error message
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            trust_env=False,  # no proxy or netrc from the environment: the token goes only where asked
            follow_redirects=False,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"AirflowClient({self.base_url!r})"

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # -- the API -------------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Start a run of ``dag_id`` with ``conf`` now; returns its run id.

        The DAG's Params schema checks ``conf``: a rejection (HTTP 400/422) is a ``DsrError`` carrying the
        API's detail, with the identity value and new field values replaced by ``[redacted]``.
        """
        changes = conf.get("changes") or {}
        raw = [str(conf.get("identity_value") or ""), *(str(v) for v in changes.values())]
        # Airflow's schema errors quote the offending value (repr or JSON): scrub those spellings too.
        self._secrets = [form for v in raw for form in (v, repr(v)[1:-1], json.dumps(v)[1:-1])]
        body = {"logical_date": None, "conf": dict(conf)}
        data = self._call("POST", f"{API}/dags/{_q(dag_id)}/dagRuns", f"trigger DAG {dag_id}", json=body)
        return str(data["dag_run_id"])

    def dag_paused(self, dag_id: str) -> bool:
        """Whether ``dag_id`` is paused (its runs stay queued until it is unpaused)."""
        return bool(self._call("GET", f"{API}/dags/{_q(dag_id)}", f"read DAG {dag_id}").get("is_paused"))

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The run's state: ``queued``, ``running``, ``success`` or ``failed``."""
        data = self._call("GET", _run(dag_id, run_id), f"read run {run_id} of DAG {dag_id}")
        return str(data["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """The state of every task instance of the run, keyed ``task_id`` or ``task_id[label]`` (mapped)."""
        states: dict[str, str | None] = {}
        for ti in self._pages(f"{_run(dag_id, run_id)}/taskInstances", "task_instances", run_id):
            states[_ti_name(ti)] = ti.get("state")
        return states

    def pending_approvals(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Human-in-the-loop tasks of the run waiting for an answer (their task instance is waiting).

        Each item: ``task_id``, ``map_index``, ``state`` (of the task instance), ``subject``, ``options``.
        Reads ``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/hitlDetails?response_received=false``; a request
        whose task has not yet parked itself (``awaiting_input``, or ``deferred`` before Airflow 3.3) is left
        out, as answering it then would race the task.
        """
        items = self._pages(
            f"{_run(dag_id, run_id)}/hitlDetails", "hitl_details", run_id, {"response_received": "false"}
        )
        pending = []
        for item in items:
            ti = item.get("task_instance") or {}
            if ti.get("state") not in APPROVAL_STATES:
                continue
            pending.append(
                {
                    "task_id": ti.get("task_id"),
                    "map_index": ti.get("map_index", -1),
                    "state": ti.get("state"),
                    "subject": item.get("subject"),
                    "options": list(item.get("options") or []),
                }
            )
        return pending

    def approve(
        self, dag_id: str, run_id: str, task_id: str = APPROVAL_TASK, map_index: int = -1
    ) -> dict[str, Any]:
        """Answer the approval task with the option ``Approve``; returns the API's record of the answer.

        ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails``
        with ``{"chosen_options": ["Approve"]}``. Airflow resumes the waiting task at once. A task not yet
        waiting (HTTP 404) or already answered (HTTP 409) is a ``DsrError``.
        """
        path = f"{_run(dag_id, run_id)}/taskInstances/{_q(task_id)}/{int(map_index)}/hitlDetails"
        body = {"chosen_options": [APPROVE_OPTION], "params_input": {}}
        return self._call("PATCH", path, f"approve task {task_id} of run {run_id}", json=body)

    def result(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The XCom ``return_value`` of task ``complete``: ``status``, ``certificate_uri``, ``certificate``.

        The API may return the value as an object or as its JSON text; both are understood.
        """
        path = f"{_run(dag_id, run_id)}/taskInstances/{COMPLETE_TASK}/xcomEntries/return_value"
        what = f"read the result of task {COMPLETE_TASK} of run {run_id}"
        value = _json_value(self._call("GET", path, what, params={"deserialize": "true"}).get("value"))
        if not isinstance(value, dict):
            raise DsrError(f"{what}: expected an object, got {type(value).__name__}")
        if isinstance(value.get("certificate"), str):
            value["certificate"] = _json_value(value["certificate"])
        return value

    def certificate(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The signed certificate issued by the run: ``{"certificate": {...}, "signature": "..."}``."""
        from airflow_aisec.dsr.certificate import load

        value = self.result(dag_id, run_id)
        document = value.get("certificate", value)
        try:
            return load(json.dumps(document))
        except DsrError as e:
            what = f"run {run_id} of DAG {dag_id}: the result of task {COMPLETE_TASK}"
            raise DsrError(f"{what} is {e}") from None

    def status(self, dag_id: str, run_id: str, approval_task: str = APPROVAL_TASK) -> RunStatus:
        """The run's state, its task states, and which approval tasks wait for a human."""
        state = self.run_state(dag_id, run_id)
        tasks = self.task_states(dag_id, run_id)
        waiting = tuple(
            name
            for name, ti_state in tasks.items()
            if ti_state == "awaiting_input"
            or (ti_state in APPROVAL_STATES and name.split("[")[0] == approval_task)
        )
        return RunStatus(state, tasks, waiting)

    def wait(
        self,
        dag_id: str,
        run_id: str,
        timeout: float,
        on_change: Callable[[RunStatus], None] | None = None,
        *,
        poll_interval: float | None = None,
    ) -> RunStatus:
        """Poll the run until it succeeds or fails; returns its last status.

        ``on_change(status)`` is called with the first status and whenever the run's state, a task's state or
        the tasks awaiting approval change. After ``timeout`` seconds a ``DsrError`` says so (the run goes on
        in Airflow). ``poll_interval`` defaults to ``POLL_INTERVAL`` seconds.
        """
        interval = POLL_INTERVAL if poll_interval is None else poll_interval
        deadline = time.monotonic() + timeout
        last: RunStatus | None = None
        while True:
            current = self.status(dag_id, run_id)
            if current != last and on_change is not None:
                on_change(current)
            last = current
            if current.finished:
                return current
            if time.monotonic() >= deadline:
                raise DsrError(
                    f"run {run_id} of DAG {dag_id} still {current.state} after {timeout:g}s "
                    "(it goes on in Airflow)"
                )
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _pages(
        self, path: str, field: str, run_id: str, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            query = {**(params or {}), "limit": str(PAGE), "offset": str(len(items))}
            data = self._call("GET", path, f"read {field.replace('_', ' ')} of run {run_id}", params=query)
            page = list(data.get(field) or [])
            items += page
            if not page or len(items) >= int(data.get("total_entries") or 0):
                return items

    def _headers(self) -> dict[str, str]:
        if self._token is None and self._username is not None:
            self._token = self._login()
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _login(self) -> str:
        body = {"username": self._username, "password": self._password}
        response = self._send("POST", TOKEN_ROUTE, "log in", {}, json=body)
        if response.status_code in (400, 401, 403):
            raise DsrError(f"the Airflow API at {self.base_url} refused the username or password "
                           f"(HTTP {response.status_code})")  # fmt: skip
        data = self._check(response, "log in")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise DsrError(f"log in to the Airflow API at {self.base_url}: the answer has no access_token")
        return token

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        return self._check(self._send(method, path, what, self._headers(), **kwargs), what)

    def _send(
        self, method: str, path: str, what: str, headers: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            reason = str(e) or e.__class__.__name__
            raise DsrError(f"cannot reach the Airflow API at {self.base_url}: {reason}") from None
        except httpx.TimeoutException:
            raise DsrError(f"{what}: the Airflow API at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as e:
            reason = str(e) or e.__class__.__name__
            raise DsrError(f"cannot reach the Airflow API at {self.base_url}: {reason}") from None

    def _check(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code in (401, 403):
            hint = (
                "give --token or --username/--password (AISEC_AIRFLOW_TOKEN, AISEC_AIRFLOW_USERNAME, "
                "AISEC_AIRFLOW_PASSWORD)"
                if response.status_code == 401
                else "the user may not do this"
            )
            raise DsrError(f"{what}: the Airflow API at {self.base_url} refused (HTTP "
                           f"{response.status_code}): {hint}")  # fmt: skip
        if response.status_code >= 400:
            detail = scrub(_detail(response), self._secrets)
            raise DsrError(f"{what}: HTTP {response.status_code}: {detail}")
        try:
            data = response.json()
        except ValueError:
            raise DsrError(f"{what}: the Airflow API at {self.base_url} did not answer with JSON") from None
        if not isinstance(data, dict):
            raise DsrError(f"{what}: unexpected answer from the Airflow API ({type(data).__name__})")
        return data


def is_loopback(url: str) -> bool:
    """True when ``url`` names this machine: ``localhost``, an address of 127.0.0.0/8, or ``::1``."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host.rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: never a user name or password written into it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "an invalid address"
    return f"{parts.scheme}://[{host}]{port}" if ":" in host else f"{parts.scheme}://{host}{port}"


def _q(part: str) -> str:
    return quote(part, safe="")


def _run(dag_id: str, run_id: str) -> str:
    return f"{API}/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}"


def _ti_name(ti: Mapping[str, Any]) -> str:
    """``task_id``, or ``task_id[label]`` for a mapped instance (its rendered map index, else the number)."""
    index = ti.get("map_index", -1)
    if index in (-1, None):
        return str(ti.get("task_id"))
    return f"{ti.get('task_id')}[{ti.get('rendered_map_index') or index}]"


def _json_value(value: Any) -> Any:
    """An XCom value as an object: JSON text is parsed (possibly twice-encoded), objects pass through."""
    for _ in range(2):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def _detail(response: httpx.Response) -> str:
    """The API's error detail in one line: FastAPI's ``detail`` (a text, or a list of field errors)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return " ".join(response.text.split())[:500] or response.reason_phrase
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
    return " ".join(str(text).split())[:1000]
