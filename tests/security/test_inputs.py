"""Hostile or careless inputs: catalogs built to stall, plaintext left readable, tokens sent in clear, and
single files the crypto commands must handle like folders."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from airflow_aisec.catalog import load_catalog, validate_catalog
from airflow_aisec.catalog.loader import MAX_ALIASES, MAX_CATALOG_BYTES
from airflow_aisec.cli.main import app
from airflow_aisec.dsr.client import AirflowClient, is_loopback
from airflow_aisec.exceptions import CatalogError, DsrError

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
EXAMPLE = DAGS / "catalog.yaml"
DSR_DAGS = sorted(DAGS.glob("aisec_dsr_*.py"))
runner = CliRunner()


def alias_bomb(levels: int) -> str:
    """The "billion laughs" document: each level repeats the previous one ten times (10**levels values)."""
    lines = ["version: 1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 10)}]")
    lines.append(f"subjects: {{identities: [*a{levels - 1}], pseudonym_key: k}}")
    return "\n".join(lines) + "\n"


def cli(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(
        app, ["--log", f"sqlite:///{tmp_path / 'a.db'}", "--keyring", str(tmp_path / "k.json"), *args]
    )


def ok(tmp_path: Path, *args: str) -> Any:
    result = cli(tmp_path, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- 14: a catalog cannot stall whoever reads it ------------------------------------------------------------


def test_an_alias_bomb_catalog_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(9))  # 10**9 values once expanded, from 583 bytes
    start = time.perf_counter()
    with pytest.raises(CatalogError) as refused:
        load_catalog(path)
    assert time.perf_counter() - start < 0.5
    (problem,) = refused.value.problems
    assert problem.startswith(f"{path}: line ") and "refused: aliases repeat more than" in problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\na: &a [x, *a]\n", "refused: alias *a refers to a value that contains it"),
        ("version: 1\n" + "".join(f"k{i}: *x\n" if i else "k0: &x 1\n" for i in range(102)),
         f"refused: more than {MAX_ALIASES} aliases"),
        ("version: 1\na: " + "[" * 100 + "]" * 100 + "\n", "refused: nested more than 64 levels deep"),
    ],
    ids=["self-reference", "too-many-aliases", "too-deep"],
)  # fmt: skip
def test_catalogs_that_would_expand_or_recurse_are_refused_with_the_file_named(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    start = time.perf_counter()
    report = validate_catalog(path)
    assert time.perf_counter() - start < 0.5
    assert report.catalog is None and len(report.errors) == 1
    assert str(report.errors[0]).startswith(f"{path}: line ") and message in str(report.errors[0])


def test_a_catalog_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as out:
        out.write(EXAMPLE.read_bytes())
        out.truncate(MAX_CATALOG_BYTES + 1)  # a hole: the size counts, nothing is parsed
    (problem,) = validate_catalog(path, {"lake": str(tmp_path)}).errors
    assert str(problem) == f"{path}: refused: the catalog is larger than 10 MiB"
    small = tmp_path / "small.yaml"
    small.write_text(EXAMPLE.read_text())
    (problem,) = validate_catalog(small, {"lake": str(tmp_path)}, max_bytes=1000).errors
    assert "larger than 1000 bytes" in str(problem)


def test_a_catalog_that_shares_values_through_a_few_aliases_still_loads(tmp_path: Path) -> None:
    data = EXAMPLE.read_text()
    data = data.replace("purposes: [billing, support]", "purposes: &both [billing, support]", 1)
    data = data.replace("purposes: [support]", "purposes: *both", 1)
    path = tmp_path / "catalog.yaml"
    path.write_text(data)
    catalog = load_catalog(path, {"lake": str(tmp_path)})
    assert catalog.dataset("support_tickets").purposes == catalog.dataset("customers").purposes


@pytest.fixture(scope="module")
def airflow_imported() -> None:
    from airflow.dag_processing.dagbag import DagBag

    DagBag(dag_folder=str(DAGS / "__warm_up__"))  # imports Airflow itself once


@pytest.mark.parametrize("catalog", ["bomb", "oversized"])
def test_dag_parsing_is_not_stalled_by_the_configured_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_imported: None, catalog: str
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_aisec.operators.dsr_dag import FORM_CATALOG_BYTES

    path = tmp_path / "catalog.yaml"
    if catalog == "bomb":
        path.write_text(alias_bomb(9))
    else:  # valid, but too large to be read at every parse: about 1.6 s of YAML per 64 KiB at worst
        path.write_text(EXAMPLE.read_text() + "#" * FORM_CATALOG_BYTES + "\n")
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(path))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={tmp_path}")
    assert len(DSR_DAGS) == 4
    for dag_file in DSR_DAGS:
        start = time.perf_counter()
        bag = DagBag(dag_folder=str(dag_file))
        elapsed = time.perf_counter() - start
        assert bag.import_errors == {} and bag.dags, dag_file.name
        assert elapsed < 2.0, f"{dag_file.name} took {elapsed:.2f}s to parse"
        for dag in bag.dags.values():
            if "identity_type" in dag.params:
                # no choices from a catalog it did not read; the request is checked when it runs
                assert "enum" not in dag.params.get_param("identity_type").schema


# --- 15: plaintext outputs are owner-only ----------------------------------------------------------------


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # new files would be 0644 unless the writer says otherwise
    try:
        yield
    finally:
        os.umask(previous)


def test_decrypted_parquet_and_envelopes_are_owner_only(
    lake: Path, tmp_path: Path, usual_umask: None
) -> None:
    ok(tmp_path, "encrypt", str(lake / "customers"), str(tmp_path / "enc"), "--key", "k1")
    ok(tmp_path, "decrypt", str(tmp_path / "enc"), str(tmp_path / "dec"))
    decrypted = sorted((tmp_path / "dec").glob("*.parquet"))
    assert decrypted and {mode(p) for p in decrypted} == {0o600}
    # decrypting in place: the encrypted file was world-readable, its plaintext is not
    encrypted = sorted((tmp_path / "enc").glob("*.parquet"))
    assert {mode(p) for p in encrypted} == {0o644}
    ok(tmp_path, "decrypt", str(tmp_path / "enc"), str(tmp_path / "enc"))
    assert {mode(p) for p in encrypted} == {0o600}
    # envelopes, new target and replaced world-readable target alike
    ok(tmp_path, "encrypt", str(lake / "support_tickets"), str(tmp_path / "t"), "--key", "k1")
    ok(tmp_path, "decrypt", str(tmp_path / "t"), str(tmp_path / "t_plain"))
    plain = sorted((tmp_path / "t_plain").glob("*.jsonl"))
    assert plain and {mode(p) for p in plain} == {0o600}
    for p in plain:
        p.chmod(0o644)
    ok(tmp_path, "decrypt", str(tmp_path / "t"), str(tmp_path / "t_plain"))
    assert {mode(p) for p in plain} == {0o600}


def test_unmasked_output_is_owner_only(lake: Path, tmp_path: Path, usual_umask: None) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        EXAMPLE.read_text().replace(
            "email: {pii: EMAIL_ADDRESS}", "email: {pii: EMAIL_ADDRESS, mask: {strategy: encrypt}}"
        )
    )
    masked, back = tmp_path / "masked", tmp_path / "back"
    ok(tmp_path, "mask", str(lake / "customers"), str(masked), "--catalog", str(catalog),
       "--dataset", "customers", "--var", f"lake={lake}", "--mode", "patterns")  # fmt: skip
    assert {mode(p) for p in masked.glob("*.parquet")} == {0o644}  # masked data: the default
    ok(tmp_path, "unmask", str(masked), str(back), "--columns", "email")
    unmasked = sorted(back.glob("*.parquet"))
    assert unmasked and {mode(p) for p in unmasked} == {0o600}
    assert pq.read_table(back)["email"].to_pylist() == pq.read_table(lake / "customers")["email"].to_pylist()


# --- 17: no token or identity in clear over the network ---------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://airflow.example:8080", "http://10.0.0.7", "http://[2001:db8::1]:8080", "http://127.example"],
)
def test_plain_http_to_another_machine_is_refused_before_connecting(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no connection expected")

    monkeypatch.setattr(httpx.Client, "request", no_network)
    with pytest.raises(DsrError, match="refusing plain HTTP to the Airflow API at http://") as refused:
        AirflowClient(url, token="SECRET-TOKEN")
    assert "--allow-insecure-http" in str(refused.value) and "SECRET" not in str(refused.value)
    with pytest.raises(DsrError) as with_password:
        AirflowClient("http://privacy:SECRET-PW@airflow.example/", username="u", password="p")
    assert "SECRET" not in str(with_password.value) and "airflow.example" in str(with_password.value)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:8080", True), ("http://LOCALHOST.", True), ("http://127.0.0.1:9", True),
        ("http://127.255.3.4", True), ("http://[::1]:8080", True), ("http://[::ffff:127.0.0.1]", True),
        ("http://localhost.example", False), ("http://128.0.0.1", False), ("http://[::2]", False),
        ("http://", False),
    ],
)  # fmt: skip
def test_loopback_means_this_machine_only(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


class _Airflow(http.server.BaseHTTPRequestHandler):
    """Answers ``GET /api/v2/dags/<id>`` like Airflow; records each request's Authorization header."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        _Airflow.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"dag_id": self.path.rsplit("/", 1)[-1], "is_paused": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def local_airflow() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Airflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_plain_http_on_loopback_and_https_anywhere_are_accepted(local_airflow: str) -> None:
    _Airflow.seen.clear()
    with AirflowClient(local_airflow, token="T") as client:
        assert client.dag_paused("aisec_dsr_erasure") is True
    assert _Airflow.seen == ["Bearer T"]
    AirflowClient("https://airflow.example", token="T").close()
    AirflowClient("http://localhost:8080", token="T").close()


def test_allow_insecure_http_is_an_explicit_choice_of_the_cli(
    lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def unreachable(self: httpx.Client, method: str, url: Any, **kwargs: Any) -> Any:
        attempts.append(f"{method} {self.base_url}")
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(httpx.Client, "request", unreachable)
    args = ["dsr", "submit", "--type", "erasure", "--identity", "customer_id=SECRET-C1",
            "--catalog", str(EXAMPLE), "--var", f"lake={lake}",
            "--api-url", "http://airflow.example:8080", "--token", "SECRET-TOKEN"]  # fmt: skip
    refused = cli(tmp_path, *args)
    assert refused.exit_code == 2
    assert "refusing plain HTTP to the Airflow API at http://airflow.example:8080" in refused.stderr
    assert attempts == [] and "SECRET" not in refused.output
    allowed = cli(tmp_path, *args, "--allow-insecure-http")
    assert allowed.exit_code == 2 and "cannot reach the Airflow API" in allowed.stderr
    assert attempts == ["POST http://airflow.example:8080"] and "SECRET" not in allowed.output


# --- 21: one file in, one file out --------------------------------------------------------------------------


def test_encrypting_and_decrypting_a_single_file_works_like_a_folder(lake: Path, tmp_path: Path) -> None:
    source = sorted((lake / "customers").glob("*.parquet"))[0]
    ok(tmp_path, "encrypt", str(source), str(tmp_path / "enc.parquet"), "--key", "k1")
    result = ok(tmp_path, "decrypt", str(tmp_path / "enc.parquet"), str(tmp_path / "dec.parquet"), "--json")
    assert [f["method"] for f in json.loads(result.stdout)["files"]] == ["parquet-modular"]
    assert pq.read_table(tmp_path / "dec.parquet").equals(pq.read_table(source))

    tickets = sorted((lake / "chargebacks").glob("*.csv"))[0]
    ok(tmp_path, "encrypt", str(tickets), str(tmp_path / "c.csv.aisec"), "--key", "k1")
    ok(tmp_path, "decrypt", str(tmp_path / "c.csv.aisec"), str(tmp_path / "c.csv"))
    assert (tmp_path / "c.csv").read_bytes() == tickets.read_bytes()
    # an envelope renamed without its suffix is still recognised by its content
    shutil.copy(tmp_path / "c.csv.aisec", tmp_path / "renamed.bin")
    ok(tmp_path, "decrypt", str(tmp_path / "renamed.bin"), str(tmp_path / "c2.csv"))
    assert (tmp_path / "c2.csv").read_bytes() == tickets.read_bytes()
    # a plaintext file is not something to decrypt: a clear error, no output
    refused = cli(tmp_path, "decrypt", str(tickets), str(tmp_path / "never.csv"))
    assert refused.exit_code != 0 and "no encrypted Parquet or .aisec files" in str(refused.exception)
    assert not (tmp_path / "never.csv").exists()
