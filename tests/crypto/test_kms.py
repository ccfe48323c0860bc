"""``AwsKmsProvider`` against a real KMS API (moto over HTTP on loopback), with faults injected by a proxy.

Throttling and access-denied answers come from a tiny HTTP proxy between boto3 and moto that answers chosen
requests with the KMS JSON-protocol error AWS would send, so botocore's real retry logic runs end to end.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from builders import keys_cli
from typer.testing import CliRunner

from airflow_aisec.crypto.keysource import KeySource, provider_for
from airflow_aisec.crypto.kms import AwsKmsProvider, client_config
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.exceptions import KeyringError

ACCESS_KEY = "AKIAAISECTESTACCESS0"  # the dummy keys tests/conftest.py sets for every test
SECRET_KEY = "aisec-test-secret-DO-NOT-PRINT-6f1c2b"
MAX_ATTEMPTS = 3
CONTEXT = {"dataset": "customers", "column": "email"}


class FaultProxy:
    """Forwards KMS requests to moto, except that queued faults answer the next matching requests."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.targets: list[str] = []  # X-Amz-Target of every request seen, e.g. TrentService.Encrypt
        self._faults: list[tuple[str | None, str, int]] = []  # (operation or None, error type, times left)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, error_type: str, times: int, operation: str | None = None) -> None:
        """Answer the next ``times`` requests (of ``operation``, e.g. ``Encrypt``) with a KMS error."""
        with self._lock:
            self._faults.append((operation, error_type, times))

    def _take_fault(self, target: str) -> str | None:
        with self._lock:
            self.targets.append(target)
            for i, (operation, error_type, times) in enumerate(self._faults):
                if operation is None or target.endswith(f".{operation}"):
                    self._faults[i] = (operation, error_type, times - 1)
                    if times <= 1:
                        del self._faults[i]
                    return error_type
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy._take_fault(self.headers.get("X-Amz-Target", ""))
                if fault is not None:
                    message = "Rate exceeded" if "Throttl" in fault else "User is not authorized"
                    self._answer(400, {"Content-Type": "application/x-amz-json-1.1"}, _error(fault, message))
                    return
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    upstream.request("POST", self.path, body, headers)
                    response = upstream.getresponse()
                    self._answer(response.status, dict(response.getheaders()), response.read())
                finally:
                    upstream.close()

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "server",
                        "date",
                    ):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"__type": error_type, "message": message}).encode()


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto, for one test."""
    fault_proxy = FaultProxy(moto_endpoint)
    fault_proxy.thread.start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.server.shutdown()
        fault_proxy.server.server_close()


def _factory(endpoint: str) -> Callable[[], Any]:
    def make() -> Any:
        import boto3

        return boto3.client(
            "kms", endpoint_url=endpoint, region_name="us-east-1", config=client_config(MAX_ATTEMPTS)
        )

    return make


@pytest.fixture
def kms(moto_endpoint: str) -> AwsKmsProvider:
    """A provider talking straight to moto."""
    return AwsKmsProvider(_factory(moto_endpoint))


@pytest.fixture
def key_name(kms: AwsKmsProvider) -> str:
    """A fresh KMS key (alias/aisec-test-<random>) for one test."""
    name = f"aisec-test-{uuid.uuid4().hex[:12]}"
    kms.create(name)
    return name


# -- data keys -----------------------------------------------------------------------------------------


def test_wrap_unwrap_round_trip_binds_the_encryption_context(kms: AwsKmsProvider, key_name: str) -> None:
    data_key = bytes(range(32))
    wrapped, version = kms.wrap(key_name, data_key, CONTEXT)

    assert version == 1 and data_key not in wrapped
    assert kms.unwrap(key_name, wrapped, CONTEXT) == data_key
    assert kms.unwrap(key_name, wrapped, dict(reversed(CONTEXT.items()))) == data_key  # order is irrelevant


def test_wrong_context_does_not_unwrap(kms: AwsKmsProvider, key_name: str) -> None:
    wrapped, _ = kms.wrap(key_name, b"k" * 32, CONTEXT)

    with pytest.raises(KeyringError, match=r"wrong key or encryption context, or .* tampered"):
        kms.unwrap(key_name, wrapped, {**CONTEXT, "column": "phone"})
    with pytest.raises(KeyringError, match="wrong key or encryption context"):
        kms.unwrap(key_name, wrapped, {})


def test_tampered_wrapped_key_fails_without_revealing_the_data_key(
    kms: AwsKmsProvider, key_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="airflow_aisec")
    data_key = kms.generate_data_key(key_name, CONTEXT)
    tampered = bytearray(data_key.wrapped)
    tampered[-5] ^= 0x01

    with pytest.raises(KeyringError) as raised:
        kms.unwrap(key_name, bytes(tampered), CONTEXT)

    message = str(raised.value)
    assert "tampered" in message and key_name in message
    for secret in (data_key.plaintext.hex(), base64.b64encode(data_key.plaintext).decode(), SECRET_KEY):
        assert secret not in message and secret not in caplog.text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert "plaintext hidden" in repr(data_key)


def test_a_blob_wrapped_under_another_key_is_refused(kms: AwsKmsProvider, key_name: str) -> None:
    other = f"aisec-test-{uuid.uuid4().hex[:12]}"
    kms.create(other)
    wrapped, _ = kms.wrap(other, b"k" * 32, CONTEXT)

    # AWS answers IncorrectKeyException, moto AccessDeniedException; both name the key we asked for.
    with pytest.raises(KeyringError, match=key_name):
        kms.unwrap(key_name, wrapped, CONTEXT)


def test_generate_data_key_comes_from_kms_and_unwraps(kms: AwsKmsProvider, key_name: str) -> None:
    first = kms.generate_data_key(key_name, CONTEXT)
    second = kms.generate_data_key(key_name, CONTEXT)

    assert len(first.plaintext) == 32 and first.plaintext != second.plaintext
    assert (first.provider, first.key_name, first.key_version) == ("aws-kms", key_name, 1)
    assert kms.unwrap(key_name, first.wrapped, CONTEXT) == first.plaintext


# -- key lifecycle -------------------------------------------------------------------------------------


def test_create_is_idempotent_and_makes_an_alias(kms: AwsKmsProvider, key_name: str) -> None:
    before = kms.describe(key_name)
    assert kms.create(key_name) == 1

    assert before is not None and kms.describe(key_name) == before
    aliases = kms.client.list_aliases(KeyId=before["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == [f"alias/{key_name}"]
    assert before["KeySpec"] == "SYMMETRIC_DEFAULT" and before["KeyUsage"] == "ENCRYPT_DECRYPT"


def test_an_unknown_key_id_is_reported_not_found(kms: AwsKmsProvider, moto_endpoint: str) -> None:
    with pytest.raises(KeyringError, match=r"KMS key 'ghost' \(alias/ghost\) not found"):
        kms.wrap("ghost", b"k" * 32, CONTEXT)
    mapped = AwsKmsProvider(_factory(moto_endpoint), key_ids={"pii": "11111111-2222-3333-4444-555555555555"})
    with pytest.raises(KeyringError, match="only keys named by an alias can be created"):
        mapped.create("pii")


def test_versions_report_state_and_rotation_without_material(kms: AwsKmsProvider, key_name: str) -> None:
    (entry,) = kms.versions(key_name)

    assert entry["version"] == 1 and entry["state"] == "active" and entry["key_state"] == "Enabled"
    assert entry["rotation_enabled"] is False and entry["created"]
    assert set(entry) == {"version", "state", "key_state", "created", "key_id", "arn", "rotation_enabled"}


def test_rotate_rotates_on_demand_and_old_blobs_still_unwrap(kms: AwsKmsProvider, key_name: str) -> None:
    wrapped, _ = kms.wrap(key_name, b"k" * 32, CONTEXT)

    assert kms.rotate(key_name) == 1

    assert kms.last_rotation is not None and kms.last_rotation["method"] == "on-demand"
    key_id = kms.last_rotation["key_id"]
    rotations = kms.client.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]
    assert kms.unwrap(key_name, wrapped, CONTEXT) == b"k" * 32


def test_rotate_falls_back_to_automatic_rotation_without_on_demand(
    kms: AwsKmsProvider, key_name: str, proxy: FaultProxy
) -> None:
    # A KMS-compatible service that does not know RotateKeyOnDemand answers UnknownOperationException.
    via_proxy = AwsKmsProvider(_factory(proxy.url))
    proxy.fail("UnknownOperationException", times=1, operation="RotateKeyOnDemand")

    report = via_proxy.rotate_now(key_name)

    assert report["method"] == "automatic-rotation-enabled"
    assert via_proxy.versions(key_name)[0]["rotation_enabled"] is True


def test_destroy_schedules_deletion_after_the_minimum_window(kms: AwsKmsProvider, key_name: str) -> None:
    assert kms.destroy(key_name) is True
    assert kms.destroy(key_name) is False  # already pending deletion: idempotent

    (entry,) = kms.versions(key_name)
    assert entry["state"] == "pending-deletion" and entry["key_state"] == "PendingDeletion"
    assert entry["deletion_date"] > entry["created"]
    deletion = kms.describe(key_name)["DeletionDate"]  # type: ignore[index]
    days = (deletion.timestamp() - time.time()) / 86400
    assert 6.9 < days <= 7.01
    with pytest.raises(KeyringError, match="pending deletion"):
        kms.create(key_name)
    with pytest.raises(KeyringError, match="only the whole key"):
        kms.destroy(key_name, version=2)


def test_unwrap_after_destroy_fails_clearly(kms: AwsKmsProvider, key_name: str, proxy: FaultProxy) -> None:
    wrapped, _ = kms.wrap(key_name, b"k" * 32, CONTEXT)
    via_proxy = AwsKmsProvider(_factory(proxy.url))
    assert via_proxy.destroy(key_name) is True
    # moto still decrypts under a key pending deletion; AWS refuses with KMSInvalidStateException, which
    # the proxy sends in moto's place.
    proxy.fail("KMSInvalidStateException", times=1, operation="Decrypt")

    with pytest.raises(KeyringError, match=r"pending deletion, so data keys it wrapped cannot be unwrapped"):
        via_proxy.unwrap(key_name, wrapped, CONTEXT)


# -- faults over real HTTP -----------------------------------------------------------------------------


def test_throttled_requests_are_retried_with_backoff(key_name: str, proxy: FaultProxy) -> None:
    via_proxy = AwsKmsProvider(_factory(proxy.url))
    proxy.fail("ThrottlingException", times=MAX_ATTEMPTS - 1, operation="GenerateDataKey")

    data_key = via_proxy.generate_data_key(key_name, CONTEXT)

    assert proxy.targets.count("TrentService.GenerateDataKey") == MAX_ATTEMPTS
    assert via_proxy.unwrap(key_name, data_key.wrapped, CONTEXT) == data_key.plaintext


def test_throttling_beyond_the_retries_says_kms_is_throttling(key_name: str, proxy: FaultProxy) -> None:
    via_proxy = AwsKmsProvider(_factory(proxy.url))
    proxy.fail("ThrottlingException", times=MAX_ATTEMPTS + 5, operation="Encrypt")

    with pytest.raises(KeyringError, match="KMS is throttling") as raised:
        via_proxy.wrap(key_name, b"k" * 32, CONTEXT)

    assert f"after {MAX_ATTEMPTS} attempt" in str(raised.value) and key_name in str(raised.value)
    assert proxy.targets.count("TrentService.Encrypt") == MAX_ATTEMPTS


def test_too_many_requests_is_throttling_too(key_name: str, proxy: FaultProxy) -> None:
    via_proxy = AwsKmsProvider(_factory(proxy.url))
    proxy.fail("TooManyRequestsException", times=MAX_ATTEMPTS, operation="Decrypt")
    wrapped, _ = via_proxy.wrap(key_name, b"k" * 32, CONTEXT)

    with pytest.raises(KeyringError, match="KMS is throttling"):
        via_proxy.unwrap(key_name, wrapped, CONTEXT)


def test_access_denied_is_reported_and_not_retried(key_name: str, proxy: FaultProxy) -> None:
    via_proxy = AwsKmsProvider(_factory(proxy.url))
    proxy.fail("AccessDeniedException", times=1, operation="Encrypt")

    with pytest.raises(KeyringError, match=rf"access to KMS key '{key_name}' .* denied") as raised:
        via_proxy.wrap(key_name, b"k" * 32, CONTEXT)

    assert SECRET_KEY not in str(raised.value) and ACCESS_KEY not in str(raised.value)
    assert proxy.targets.count("TrentService.Encrypt") == 1


def test_unreachable_kms_is_a_keyring_error() -> None:
    def unreachable() -> Any:
        import boto3

        return boto3.client(
            "kms", endpoint_url="http://127.0.0.1:9", region_name="us-east-1", config=client_config(1)
        )

    with pytest.raises(KeyringError, match="cannot reach KMS for KMS key 'k'"):
        AwsKmsProvider(unreachable).wrap("k", b"k" * 32, CONTEXT)


# -- factory, hook and CLI -----------------------------------------------------------------------------


def test_provider_for_picks_local_or_kms(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aisec.catalog.models import KeySpec

    local = provider_for(None, keyring=str(tmp_path / "ring.json"))
    assert isinstance(local, LocalKeyProvider) and local.keyring.path == tmp_path / "ring.json"
    assert not local.production_ready

    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_endpoint)
    spec = KeySpec(provider="aws-kms", key_id="alias/aisec-pii-factory", aws_conn_id="aws_default")
    kms = provider_for(spec, key_name="pii-columns")
    assert isinstance(kms, AwsKmsProvider) and kms.production_ready
    assert kms.key_id("pii-columns") == "alias/aisec-pii-factory"
    kms.create("pii-columns")  # the default client reaches moto through AWS_ENDPOINT_URL_KMS
    assert kms.unwrap("pii-columns", kms.wrap("pii-columns", b"k" * 32, CONTEXT)[0], CONTEXT) == b"k" * 32


def test_provider_for_key_reads_the_catalog(tmp_path: Path) -> None:
    from airflow_aisec.catalog import load_catalog

    catalog = load_catalog(Path(__file__).parents[2] / "dags" / "catalog.yaml", {"lake": str(tmp_path)})

    assert isinstance(KeySource(catalog, tmp_path / "r.json").provider("pii-columns"), LocalKeyProvider)
    with pytest.raises(KeyringError, match="'nope' is not declared in the catalog's keys"):
        KeySource(catalog).provider("nope")


def test_kms_hook_builds_the_provider_from_an_airflow_connection(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    from airflow_aisec.hooks.kms import KmsHook

    # Airflow reads AIRFLOW_CONN_<ID> before any other secrets backend, so no database is needed.
    conn = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET_KEY,
        "extra": {"region_name": "us-east-1", "endpoint_url": moto_endpoint},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AISEC_KMS_TEST", json.dumps(conn))
    name = f"aisec-test-{uuid.uuid4().hex[:12]}"

    provider = KmsHook(aws_conn_id="aisec_kms_test").provider()
    provider.create(name)

    data_key = provider.generate_data_key(name, CONTEXT)
    assert provider.unwrap(name, data_key.wrapped, CONTEXT) == data_key.plaintext
    assert SECRET_KEY not in repr(provider)


def test_keys_cli_manages_kms_keys(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_endpoint)
    name = f"aisec-test-{uuid.uuid4().hex[:12]}"
    runner = CliRunner()
    base = ["--keyring", str(tmp_path / "ring.json"), "--log", f"sqlite:///{tmp_path / 'audit.db'}", "keys"]

    def run(*args: str) -> Any:
        result = runner.invoke(keys_cli(), [*base, *args])
        assert result.exit_code == 0, result.output
        return result

    assert "created KMS key" in run("create", name, "--provider", "aws-kms").output
    assert "already exists" in run("create", name, "--provider", "aws-kms").output
    assert "on-demand" in run("rotate", name, "--provider", "aws-kms").output
    assert "deletion scheduled" in run("shred", name, "--provider", "aws-kms").output
    assert "already destroyed" in run("shred", name, "--provider", "aws-kms").output
    assert "nothing to shred" in run("shred", "never-made", "--provider", "aws-kms").output
    bad = runner.invoke(keys_cli(), [*base, "rotate", name, "--provider", "nope"])
    assert bad.exit_code == 2 and "unknown --provider" in bad.output


def test_keys_cli_reports_kms_access_denied(
    tmp_path: Path, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", proxy.url)
    proxy.fail("AccessDeniedException", times=1, operation="DescribeKey")
    args = ["--keyring", str(tmp_path / "ring.json"), "--log", f"sqlite:///{tmp_path / 'audit.db'}", "keys"]

    result = CliRunner().invoke(keys_cli(), [*args, "rotate", "pii-columns", "--provider", "aws-kms"])

    assert result.exit_code == 2
    assert "access to KMS key 'pii-columns' (alias/pii-columns) denied" in result.output
    assert SECRET_KEY not in result.output
