"""`aisec dsr run|verify-certificate|submit` and the Airflow REST API client they share with the e2e test.

``submit`` is tested here without a server: bad input stops before any HTTP call, an unreachable API gives a
one-line error, and a fake Airflow (``httpx.MockTransport``) answers the routes the client uses, with the
shapes Airflow 3.3 returns. The real run through ``airflow standalone`` is the end-to-end test's job.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from airflow_aisec.cli.main import app
from airflow_aisec.dsr import client as client_mod
from airflow_aisec.dsr.client import AirflowClient, RunStatus
from airflow_aisec.exceptions import DsrError
from airflow_aisec.samples import SampleLake

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
runner = CliRunner()


@pytest.fixture
def lake(sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the sample lake; the request's state, exports and holds live beside it."""
    copy = tmp_path / "lake"
    shutil.copytree(sample_lake_dir, copy)
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_EXPORTS", str(tmp_path / "exports"))
    monkeypatch.setenv("AIRFLOW__AISEC__HOLDS", str(tmp_path / "holds.json"))
    return copy


@pytest.fixture(scope="module")
def people() -> list[Any]:
    """Customers of the sample lake (same seed as ``sample_lake_dir``) with tickets and chargebacks."""
    sample = SampleLake(customers=120, seed=3)
    tickets = {r["customer_id"] for r in sample.rows("support_tickets")}
    chargebacks = {r["customer_id"] for r in sample.rows("chargebacks")}
    return [c for c in sample.customers if c.customer_id in tickets and c.customer_id in chargebacks]


def cli(tmp_path: Path, *args: str) -> Any:
    log = f"sqlite:///{tmp_path / 'audit.db'}"
    return runner.invoke(app, ["--log", log, "--keyring", str(tmp_path / "keyring.json"), *args])


def catalog_args(lake: Path) -> list[str]:
    return ["--catalog", str(EXAMPLE), "--var", f"lake={lake}"]


def assert_private(result: Any, *raw: str) -> None:
    """Neither stdout nor stderr shows a raw identifier or value, nor a traceback."""
    for value in raw:
        assert value not in result.stdout and value not in result.stderr, value
    assert "Traceback" not in result.output


def test_every_dsr_command_has_help() -> None:
    for command in (["dsr"], ["dsr", "run"], ["dsr", "verify-certificate"], ["dsr", "submit"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


# --- run and verify-certificate ---------------------------------------------------------------------------


def test_erasure_certificate_verifies_and_an_edited_one_does_not(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    subject = people[0]
    cert = tmp_path / "cert.json"
    ran = cli(
        tmp_path, "dsr", "run", "--type", "erasure", "--identity", f"email={subject.email}",
        "--request-id", "erasure-1", "--reason", f"ticket 17 from {subject.email}",
        "--certificate", str(cert), *catalog_args(lake),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "request erasure-1 (erasure, subject hmac-sha256:" in ran.stdout
    assert "completed_with_holds" in ran.stdout and "litigation 2026-17" in ran.stdout
    assert_private(ran, subject.email, subject.customer_id, subject.phone)
    document = json.loads(cert.read_text())
    assert document["certificate"]["request"]["reason"] == "ticket 17 from [redacted]"
    assert subject.email not in cert.read_text() and subject.customer_id not in cert.read_text()

    verified = cli(tmp_path, "dsr", "verify-certificate", str(cert))
    assert verified.exit_code == 0, verified.output
    assert "ok      signature verifies" in verified.stdout and verified.stdout.rstrip().endswith("verified")

    key = cli(tmp_path, "audit", "public-key").stdout.strip()
    offline = cli(
        tmp_path, "dsr", "verify-certificate", str(cert), "--no-log", "--verifier-key", key, "--json"
    )
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout)["ok"] is True

    document["certificate"]["summary"]["rows_affected"] += 1
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))
    rejected = cli(tmp_path, "dsr", "verify-certificate", str(edited), "--json")
    assert rejected.exit_code == 1, rejected.output
    report = json.loads(rejected.stdout)
    assert report["ok"] is False
    assert any("signature does not verify" in p for p in report["problems"])
    assert cli(tmp_path, "dsr", "verify-certificate", str(edited)).exit_code == 1


def test_run_json_output_parses_and_rerun_is_already_completed(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    subject = people[1]
    args = [
        "dsr", "run", "--type", "erasure", "--identity", f"customer_id={subject.customer_id}",
        "--request-id", "erasure-2", *catalog_args(lake), "--json",
    ]  # fmt: skip
    first = cli(tmp_path, *args)
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert out["request_id"] == "erasure-2" and out["type"] == "erasure"
    assert out["subject"].startswith("hmac-sha256:") and out["status"] == "completed_with_holds"
    by_name = {d["dataset"]: d for d in out["datasets"]}
    assert set(by_name) == {
        "customers",
        "orders",
        "support_tickets",
        "chargebacks",
        "support_tickets_landing",
        "support_tickets_masked",
    }
    assert by_name["customers"]["status"] == "changed" and by_name["customers"]["verified"] is True
    assert by_name["chargebacks"]["held"] == "litigation 2026-17"
    assert out["certificate"].endswith("certificates/erasure-2.json")  # default: [aisec] dsr_exports
    assert (tmp_path / "exports" / "certificates" / "erasure-2.json").is_file()
    assert_private(first, subject.email, subject.customer_id)

    again = cli(tmp_path, *args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["summary"]["rows_affected"] == 0


def test_rectification_changes_the_field_and_never_shows_the_value(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    subject = people[2]
    new_phone = "+1 212-555-0199"
    cert = tmp_path / "rect.json"
    ran = cli(
        tmp_path, "dsr", "run", "--type", "rectification", "--identity", f"email={subject.email}",
        "--set", f"phone={new_phone}", "--certificate", str(cert), *catalog_args(lake),
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert ": completed" in ran.stdout
    assert_private(ran, subject.email, subject.customer_id, new_phone)
    assert new_phone not in cert.read_text()
    assert json.loads(cert.read_text())["certificate"]["request"]["fields"] == ["phone"]
    customers = pq.read_table(lake / "customers")
    row = customers.filter(pc.equal(customers["customer_id"], subject.customer_id)).to_pylist()
    assert [r["phone"] for r in row] == [new_phone]
    assert cli(tmp_path, "dsr", "verify-certificate", str(cert)).exit_code == 0


def test_access_exports_an_encrypted_package_and_a_missing_key_fails_the_request(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    subject = people[5]
    args = ["dsr", "run", "--type", "access", "--identity", f"email={subject.email}", "--export-key",
            "pii-columns", *catalog_args(lake)]  # fmt: skip
    missing = cli(tmp_path, *args)
    assert missing.exit_code == 1
    assert "failed: export key 'pii-columns' cannot encrypt the package" in missing.stderr
    assert cli(tmp_path, "keys", "create", "pii-columns").exit_code == 0
    exported = cli(tmp_path, *args, "--exports", str(tmp_path / "packages"), "--json")
    assert exported.exit_code == 0, exported.output
    out = json.loads(exported.stdout)
    assert out["status"] == "completed" and out["export"].startswith(f"file://{tmp_path / 'packages'}")
    assert {d["status"] for d in out["datasets"]} <= {"exported", "no_data"}
    for result in (missing, exported):
        assert_private(result, subject.email, subject.customer_id)
    package = [p for p in (tmp_path / "packages").rglob("*") if p.is_file()]
    assert package and not any(subject.email.encode() in p.read_bytes() for p in package)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--identity", "SECRET-C0042"], "--identity: expected TYPE=VALUE"),
        (["--identity", "phone=SECRET-C0042"], "identity type 'phone' is not one of"),
        (["--identity", "customer_id=SECRET-\x07"], "--identity: the value must be 1 to 1024 printable"),
        (["--identity", "customer_id=SECRET-C0042", "--set", "phone=SECRET-555"], "only a rectification"),
        (["--identity", "customer_id=SECRET-C0042", "--request-id", "bad id!"], "--request-id"),
        (["--identity", "customer_id=SECRET-C0042", "--reason", "  "], "--reason must not be empty"),
    ],
)
def test_bad_input_exits_two_without_the_value(
    lake: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = cli(tmp_path, "dsr", "run", "--type", "erasure", *extra, *catalog_args(lake))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_private(result, "SECRET")


def test_rectification_of_a_bad_value_or_a_key_exits_two_naming_only_the_field(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    subject = people[3]
    base = [
        "dsr",
        "run",
        "--type",
        "rectification",
        "--identity",
        f"email={subject.email}",
        *catalog_args(lake),
    ]
    bad_email = cli(tmp_path, *base, "--set", "email=not-an-address-SECRET")
    assert bad_email.exit_code == 2
    assert "field 'email' of dataset customers: the new value is not an e-mail address" in bad_email.stderr
    key = cli(tmp_path, *base, "--set", "customer_id=SECRET-C9999")
    assert key.exit_code == 2 and "field 'customer_id'" in key.stderr
    none = cli(tmp_path, "dsr", "run", "--type", "rectification", "--identity", f"email={subject.email}",
               *catalog_args(lake))  # fmt: skip
    assert none.exit_code == 2 and "name at least one field" in none.stderr
    for result in (bad_email, key, none):
        assert_private(result, "SECRET", subject.email, subject.customer_id)


def test_verify_certificate_of_a_non_certificate_exits_two(tmp_path: Path) -> None:
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    other_json = tmp_path / "other.json"
    other_json.write_text(json.dumps({"certificate": {"format": "something-else"}, "signature": "x"}))
    for path, message in (
        (not_json, "not a certificate: the file is not JSON"),
        (other_json, "not a certificate: expected format"),
        (tmp_path / "missing.json", "cannot read"),
    ):
        result = cli(tmp_path, "dsr", "verify-certificate", str(path))
        assert result.exit_code == 2, result.output
        assert message in result.stderr
    assert cli(tmp_path, "dsr", "verify-certificate", str(not_json), "--no-log").exit_code == 2


# --- submit, without a server ------------------------------------------------------------------------------


@pytest.fixture
def no_http(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test if the client sends anything; returns the list of attempted requests."""
    attempts: list[str] = []

    def refuse(self: httpx.Client, method: str, url: Any, **kwargs: Any) -> httpx.Response:
        attempts.append(f"{method} {url}")
        raise AssertionError("no HTTP request expected")

    monkeypatch.setattr(httpx.Client, "request", refuse)
    return attempts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "erasure", "--identity", "SECRET-C0042"], "--identity: expected TYPE=VALUE"),
        (["--type", "erasure", "--identity", "phone=SECRET-1"], "identity type 'phone' is not one of"),
        (["--type", "access", "--identity", "customer_id=SECRET-1"], "name the key the export is encrypted"),
        (["--type", "access", "--identity", "customer_id=SECRET-1", "--export-key", "nope"], "'nope'"),
        (
            ["--type", "rectification", "--identity", "customer_id=SECRET-1", "--set", "phone=x-SECRET"],
            "phone",
        ),
        (["--type", "erasure", "--identity", "customer_id=SECRET-1", "--set", "a=SECRET"], "only a rectif"),
        (["--type", "deletion", "--identity", "customer_id=SECRET-1"], "deletion"),
    ],
)
def test_submit_bad_input_exits_two_before_any_http_call(
    lake: Path, tmp_path: Path, no_http: list[str], args: list[str], message: str
) -> None:
    result = cli(tmp_path, "dsr", "submit", *args, *catalog_args(lake), "--api-url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert no_http == []
    assert_private(result, "SECRET")


def test_submit_to_an_unreachable_api_exits_two_with_one_clear_line(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    subject = people[0]
    result = cli(
        tmp_path, "dsr", "submit", "--type", "erasure", "--identity", f"email={subject.email}",
        *catalog_args(lake), "--api-url", "http://127.0.0.1:9", "--token", "SECRET-TOKEN",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("cannot reach the Airflow API at http://127.0.0.1:9: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert_private(result, subject.email, subject.customer_id, "SECRET-TOKEN")


def test_submit_without_a_loadable_catalog_still_submits_and_says_so(tmp_path: Path) -> None:
    # the example catalog needs {lake}: it does not load here, so Airflow is left to check the request
    result = cli(
        tmp_path, "dsr", "submit", "--type", "erasure", "--identity", "customer_id=SECRET-C1",
        "--catalog", str(EXAMPLE), "--api-url", "http://127.0.0.1:9",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "not checked against the local catalog" in result.stderr and "cannot reach" in result.stderr
    assert_private(result, "SECRET")


# --- submit and the client, against a fake Airflow -------------------------------------------------------


class FakeAirflow:
    """The routes of the Airflow 3.3 REST API the client uses, with the shapes Airflow returns.

    A run goes: queued → running (register succeeds, approve awaits input) → after the approval, the
    mapped tasks and ``complete`` succeed → success. ``complete`` returns ``result`` as its XCom.
    """

    def __init__(
        self, result: Any = None, *, reject_conf: str | None = None, users: bool = False, end: str = "done"
    ) -> None:
        self.result = result
        self.end = end  # done | rejected (a human chose Reject) | failed (``complete`` failed)
        self.reject_conf = reject_conf
        self.users = users
        self.calls: list[tuple[str, str, Any]] = []
        self.conf: dict[str, Any] = {}
        self.polls = 0
        self.approved = False
        self.approval: Any = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append((request.method, path, dict(request.headers)))
        if self.users and path != "/auth/token" and request.headers.get("authorization") != "Bearer JWT-1":
            return httpx.Response(401, json={"detail": "Not authenticated"})
        routes = {
            ("POST", "/auth/token"): self.token,
            ("POST", "/api/v2/dags/aisec_dsr_erasure/dagRuns"): self.trigger,
            ("GET", "/api/v2/dags/aisec_dsr_erasure"): lambda b: {
                "dag_id": "aisec_dsr_erasure",
                "is_paused": True,
            },
            ("GET", f"{RUN}"): self.run,
            ("GET", f"{RUN}/taskInstances"): self.task_instances,
            ("GET", f"{RUN}/hitlDetails"): self.hitl_details,
            ("PATCH", f"{RUN}/taskInstances/approve/-1/hitlDetails"): self.approve,
            ("GET", f"{RUN}/taskInstances/complete/xcomEntries/return_value"): self.xcom,
        }
        handler = routes.get((request.method, path))
        if handler is None:
            return httpx.Response(404, json={"detail": f"no route {request.method} {path}"})
        answer = handler(body)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    def token(self, body: Any) -> Any:
        if body != {"username": "privacy", "password": "SECRET-PW"}:
            return httpx.Response(401, json={"detail": "Invalid credentials"})
        return httpx.Response(201, json={"access_token": "JWT-1"})

    def trigger(self, body: Any) -> Any:
        assert body["logical_date"] is None
        self.conf = body["conf"]
        if self.reject_conf:
            value = self.conf["identity_value"]
            return httpx.Response(
                400, json={"detail": f"Invalid input for param {self.reject_conf}: {value!r}"}
            )
        return {"dag_run_id": RUN_ID, "dag_id": "aisec_dsr_erasure", "state": "queued", "conf": self.conf}

    def _state(self) -> tuple[str, dict[str, str | None]]:
        if self.polls < 1:
            return "queued", {}
        if not self.approved:
            return "running", {"register": "success", "approve": "awaiting_input", "complete": None}
        complete = {"done": "success", "rejected": "skipped", "failed": "failed"}[self.end]
        run = "failed" if self.end == "failed" else "success"
        return run, {"register": "success", "approve": "success", "complete": complete}

    def run(self, body: Any) -> Any:
        state = self._state()[0]
        self.polls += 1
        if self.polls == 3:
            self.approved = True  # someone approves in the UI meanwhile
        return {"dag_run_id": RUN_ID, "state": state, "conf": self.conf}

    def task_instances(self, body: Any) -> Any:
        tasks = [{"task_id": t, "map_index": -1, "state": s} for t, s in self._state()[1].items()]
        if self._state()[1].get("register") == "success":
            tasks += [
                {"task_id": "process_dataset", "map_index": i, "rendered_map_index": name, "state": "success"}
                for i, name in enumerate(["customers", "orders"])
            ]
        return {"task_instances": tasks, "total_entries": len(tasks)}

    def hitl_details(self, body: Any) -> Any:
        ti = {"task_id": "approve", "map_index": -1, "state": "awaiting_input"}
        details = (
            []
            if self.approved
            else [{"task_instance": ti, "subject": "Approve", "options": ["Approve", "Reject"]}]
        )
        return {"hitl_details": details, "total_entries": len(details)}

    def approve(self, body: Any) -> Any:
        self.approval = body
        self.approved = True
        return {"chosen_options": body["chosen_options"], "responded_by": {"id": "admin", "name": "admin"}}

    def xcom(self, body: Any) -> Any:
        return {"key": "return_value", "task_id": "complete", "map_index": -1, "value": self.result}


RUN_ID = "manual__2026-11-26T10:00:00+00:00"
RUN = "/api/v2/dags/aisec_dsr_erasure/dagRuns/manual__2026-11-26T10:00:00+00:00"


@pytest.fixture
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_mod, "POLL_INTERVAL", 0.0)


def use_fake(monkeypatch: pytest.MonkeyPatch, fake: FakeAirflow) -> None:
    """Make the CLI's client talk to ``fake``."""

    class Client(AirflowClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, transport=fake.transport(), **kwargs)

    monkeypatch.setattr(client_mod, "AirflowClient", Client)


@pytest.fixture
def issued(lake: Path, tmp_path: Path, people: list[Any]) -> dict[str, Any]:
    """A real certificate of an erasure, as the DAG's ``complete`` task would return it."""
    cert = tmp_path / "issued.json"
    ran = cli(tmp_path, "dsr", "run", "--type", "erasure", "--identity", f"email={people[4].email}",
              "--certificate", str(cert), *catalog_args(lake))  # fmt: skip
    assert ran.exit_code == 0, ran.output
    document = json.loads(cert.read_text())
    return {
        "status": document["certificate"]["status"],
        "certificate_uri": "file:///x.json",
        "certificate": document,
    }


@pytest.mark.parametrize("as_text", [False, True], ids=["xcom-object", "xcom-json-text"])
def test_submit_wait_follows_the_run_and_saves_a_certificate_that_verifies(
    lake: Path, tmp_path: Path, people: list[Any], issued: dict[str, Any], fast_polls: None,
    monkeypatch: pytest.MonkeyPatch, as_text: bool,
) -> None:  # fmt: skip
    fake = FakeAirflow(json.dumps(issued) if as_text else issued, users=True)
    use_fake(monkeypatch, fake)
    subject = people[5]
    cert = tmp_path / "fetched.json"
    monkeypatch.setenv("AISEC_AIRFLOW_PASSWORD", "SECRET-PW")
    result = cli(
        tmp_path, "dsr", "submit", "--type", "erasure", "--identity", f"customer_id={subject.customer_id}",
        "--request-id", "erasure-9", "--wait", "--certificate", str(cert), "--username", "privacy",
        *catalog_args(lake), "--api-url", "https://airflow.test:8080",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake.conf == {
        "identity_type": "customer_id", "identity_value": subject.customer_id, "request_id": "erasure-9",
        "reason": "data subject request", "dry_run": False,
    }  # fmt: skip
    out = result.stdout
    assert f"submitted erasure request erasure-9 as run {RUN_ID} of DAG aisec_dsr_erasure" in out
    assert "run queued" in out and "run running" in out and "run success" in out
    assert out.count("waiting for approval in Airflow (task approve)") == 1
    assert "task process_dataset[customers]: success" in out
    assert "DAG aisec_dsr_erasure is paused" in result.stderr
    assert fake.calls[0][1] == "/auth/token"
    assert all(c[2].get("authorization") == "Bearer JWT-1" for c in fake.calls[1:])
    assert_private(result, subject.customer_id, subject.email, "SECRET-PW", "JWT-1")
    assert json.loads(cert.read_text()) == issued["certificate"]
    assert cli(tmp_path, "dsr", "verify-certificate", str(cert)).exit_code == 0


def test_submit_wait_exits_one_when_the_request_is_rejected_or_fails(
    lake: Path, tmp_path: Path, issued: dict[str, Any], fast_polls: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["dsr", "submit", "--type", "erasure", "--identity", "customer_id=SECRET-1", "--wait",
            *catalog_args(lake)]  # fmt: skip
    use_fake(monkeypatch, FakeAirflow(end="rejected"))
    rejected = cli(tmp_path, *args)
    assert rejected.exit_code == 1
    assert "the request was rejected in Airflow; nothing was changed" in rejected.stderr

    failed_document = json.loads(json.dumps(issued))
    failed_document["certificate"]["certificate"]["status"] = "failed"
    failed_document["status"] = "failed"
    use_fake(monkeypatch, FakeAirflow(failed_document, end="failed"))
    cert = tmp_path / "failed.json"
    failed = cli(tmp_path, *args, "--certificate", str(cert))
    assert failed.exit_code == 1
    assert "failed: the request failed (failed tasks: complete)" in failed.stderr
    assert "): failed" in failed.stdout and cert.is_file()  # the failed request's certificate is kept
    for result in (rejected, failed):
        assert_private(result, "SECRET")


def test_submit_json_without_wait_prints_the_run(
    tmp_path: Path, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAirflow()
    use_fake(monkeypatch, fake)
    result = cli(tmp_path, "dsr", "submit", "--type", "erasure", "--identity", "email=SECRET@example.com",
                 *catalog_args(lake), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["dag_id"] == "aisec_dsr_erasure" and out["dag_run_id"] == RUN_ID and out["state"] == "queued"
    assert out["request_id"].startswith("erasure-") and fake.conf["request_id"] == out["request_id"]
    assert_private(result, "SECRET")


@pytest.mark.parametrize("value", ["SECRET@example.com", "SECRET'O\\Brien@example.com"])
def test_submit_rejected_by_the_dag_params_shows_the_detail_without_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    use_fake(monkeypatch, FakeAirflow(reject_conf="identity_value"))
    # no catalog loads (no {lake}): only Airflow checks the request, and its answer quotes the value (repr)
    result = cli(tmp_path, "dsr", "submit", "--type", "erasure", "--identity", f"email={value}")
    assert result.exit_code == 2
    assert (
        "trigger DAG aisec_dsr_erasure: HTTP 400: Invalid input for param identity_value: " in result.stderr
    )
    assert "[redacted]" in result.stderr
    assert_private(result, "SECRET")


def test_client_approves_through_the_hitl_endpoint_and_reports_pending_approvals(fast_polls: None) -> None:
    fake = FakeAirflow()
    with AirflowClient("https://airflow.test/", transport=fake.transport()) as client:
        assert client.trigger("aisec_dsr_erasure", {"identity_value": "x"}) == RUN_ID
        assert client.run_state("aisec_dsr_erasure", RUN_ID) == "queued"
        status = client.status("aisec_dsr_erasure", RUN_ID)
        assert status == RunStatus(
            "running",
            {"register": "success", "approve": "awaiting_input", "complete": None,
             "process_dataset[customers]": "success", "process_dataset[orders]": "success"},
            ("approve",),
        )  # fmt: skip
        (pending,) = client.pending_approvals("aisec_dsr_erasure", RUN_ID)
        assert pending["task_id"] == "approve" and pending["options"] == ["Approve", "Reject"]
        client.approve("aisec_dsr_erasure", RUN_ID)
        assert fake.approval == {"chosen_options": ["Approve"], "params_input": {}}
        assert client.pending_approvals("aisec_dsr_erasure", RUN_ID) == []
        seen: list[str] = []
        final = client.wait("aisec_dsr_erasure", RUN_ID, 10, on_change=lambda s: seen.append(s.state))
        assert final.finished and final.state == "success" and seen == ["success"]
    methods = [(m, p) for m, p, _ in fake.calls]
    assert ("PATCH", f"{RUN}/taskInstances/approve/-1/hitlDetails") in methods
    assert all("authorization" not in headers for _, _, headers in fake.calls)


def test_client_errors_are_one_line_and_never_show_secrets(fast_polls: None) -> None:
    fake = FakeAirflow(users=True)
    with AirflowClient("https://airflow.test", token="SECRET-TOKEN", transport=fake.transport()) as client:
        with pytest.raises(DsrError, match=r"refused \(HTTP 401\): give --token") as refused:
            client.run_state("aisec_dsr_erasure", RUN_ID)
        assert "SECRET" not in str(refused.value)
    with AirflowClient("https://airflow.test", username="privacy", password="SECRET-BAD",
                       transport=fake.transport()) as client:  # fmt: skip
        with pytest.raises(DsrError, match="refused the username or password") as bad_login:
            client.run_state("aisec_dsr_erasure", RUN_ID)
        assert "SECRET" not in str(bad_login.value)
    with AirflowClient("https://airflow.test", transport=FakeAirflow().transport()) as client:
        with pytest.raises(DsrError, match=r"still queued after 0s"):
            client.wait("aisec_dsr_erasure", RUN_ID, 0)
        with pytest.raises(DsrError, match=r"HTTP 404: no route GET /api/v2/dags/other"):
            client.run_state("other", "r")
    with pytest.raises(DsrError, match="must start with http"):
        AirflowClient("airflow.test:8080")


@pytest.fixture
def no_airflow_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cfg = tmp_path / "airflow.cfg"
    monkeypatch.setenv("AIRFLOW_CONFIG", str(cfg))
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    yield cfg


def test_api_url_comes_from_the_option_then_airflow_cfg_then_localhost(no_airflow_cfg: Path) -> None:
    from airflow_aisec.cli.dsr_submit import api_url_default

    assert api_url_default("http://a:1") == "http://a:1"
    assert api_url_default() == "http://localhost:8080"
    no_airflow_cfg.write_text("[api]\nbase_url = http://airflow.internal:8080/\n")
    assert api_url_default() == "http://airflow.internal:8080/"


def test_requests_lists_deadlines_and_flags_overdue_ones(
    lake: Path, tmp_path: Path, people: list[Any]
) -> None:
    import datetime as dt

    from airflow_aisec.audit import AuditLog
    from airflow_aisec.dsr.tracking import requests

    subject = people[2]
    base = ["dsr", "run", "--type", "erasure", "--identity", f"email={subject.email}", *catalog_args(lake)]
    assert cli(tmp_path, *base, "--request-id", "tracked-dry", "--dry-run").exit_code == 0
    assert cli(tmp_path, *base, "--request-id", "tracked-done").exit_code == 0

    listed = cli(tmp_path, "dsr", "requests", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {r["request_id"]: r for r in json.loads(listed.stdout)["requests"]}
    assert rows["tracked-dry"]["status"] == "dry_run" and rows["tracked-dry"]["pending"] is True
    assert (
        rows["tracked-done"]["status"] == "completed_with_holds" and rows["tracked-done"]["pending"] is False
    )
    assert rows["tracked-done"]["days_left"] in (29, 30)  # [aisec] dsr_deadline_days defaults to 30
    pending = cli(tmp_path, "dsr", "requests", "--pending", "--json")
    assert [r["request_id"] for r in json.loads(pending.stdout)["requests"]] == ["tracked-dry"]
    assert_private(listed, subject.email, subject.customer_id)

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    with AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring=str(tmp_path / "keyring.json")) as log:
        statuses = {r["request_id"]: r["status"] for r in requests(log, now=later)}
    assert statuses == {"tracked-dry": "overdue", "tracked-done": "completed_with_holds"}
