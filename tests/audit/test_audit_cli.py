"""`aisec audit show|lineage|prove|export|checkpoint|public-key`, and no raw subject anywhere."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog, verify_inclusion
from airflow_aisec.audit.checkpoint import Verifier
from airflow_aisec.cli.main import app

runner = CliRunner()


@pytest.fixture
def log_args(tmp_path: Path) -> list[str]:
    uri, keyring = f"sqlite:///{tmp_path / 'audit.db'}", str(tmp_path / "keys.json")
    with AuditLog.open(uri, keyring=keyring) as log:
        log.append(
            "pii.mask",
            inputs=[{"dataset": "raw_tickets", "uri": "/lake/raw", "sha256": "aa" * 32}],
            outputs=[{"dataset": "tickets", "uri": "/lake/tickets", "sha256": "bb" * 32}],
            rows=5,
            columns=["body"],
        )
        log.append("dataset.encrypt", inputs=[{"dataset": "tickets"}], outputs=[{"dataset": "tickets_enc"}])
        log.append("dsr.erasure", dataset="customers", rows=1, subject="jane.doe@example.com")
    return ["--log", uri, "--keyring", keyring]


def invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_filters_by_subject_without_revealing_it(log_args: list[str]) -> None:
    found = json.loads(invoke([*log_args, "audit", "show", "--subject-id", "jane.doe@example.com", "--json"]))
    assert [e["action"] for e in found] == ["dsr.erasure"]
    assert found[0]["subject"].startswith("hmac-sha256:")
    everything = invoke([*log_args, "audit", "show", "--json"])
    assert "jane.doe" not in everything
    assert json.loads(invoke([*log_args, "audit", "show", "--dataset", "tickets", "--json"]))[0]["index"] == 0
    assert (
        json.loads(invoke([*log_args, "audit", "show", "--action", "dataset.encrypt", "--json"]))[0]["index"]
        == 1
    )
    assert json.loads(invoke([*log_args, "audit", "show", "--until", "2000-01-01", "--json"])) == []


def test_show_filters_by_request_and_prints_whole_lines_when_piped(tmp_path: Path) -> None:
    uri, keyring = f"sqlite:///{tmp_path / 'audit.db'}", str(tmp_path / "keys.json")
    long_name = "customer_support_tickets_landing_zone_eu_west_" + "x" * 40
    with AuditLog.open(uri, keyring=keyring) as log:
        for request in ("req-1", "req-2"):
            log.append(
                "dsr.erasure", idempotency_key=f"{request}:intent", dataset=long_name, rows=200,
                outcome="intent", details={"request_id": request},
            )  # fmt: skip
            log.append(
                "dsr.erasure", idempotency_key=f"{request}:success", dataset=long_name, rows=3,
                details={"request_id": request},
            )  # fmt: skip
    args = ["--log", uri, "--keyring", keyring, "audit", "show"]
    found = json.loads(invoke([*args, "--request-id", "req-2", "--json"]))
    assert [(e["index"], e["details"]["request_id"]) for e in found] == [(2, "req-2"), (3, "req-2")]
    text = invoke([*args, "--request-id", "req-1"])  # the test runner is no terminal: like a pipe
    lines = [line for line in text.splitlines() if long_name in line]
    assert len(lines) == 2 and all(len(line) > 120 for line in lines)  # neither cut nor wrapped at 80
    assert "…" not in text
    heading = next(line for line in text.splitlines() if "rows read" in line)
    header = [c.strip() for c in heading.replace("┃", "│").split("│")]
    read, affected = header.index("rows read"), header.index("rows affected")
    cells = [line.split("│") for line in lines]
    assert [(c[read].strip(), c[affected].strip()) for c in cells] == [("200", ""), ("", "3")]


def test_lineage_walks_upstream_and_downstream(log_args: list[str]) -> None:
    text = invoke([*log_args, "audit", "lineage", "tickets"])
    assert "raw_tickets -> tickets  (pii.mask #0)" in text
    assert "tickets -> tickets_enc  (dataset.encrypt #1)" in text
    assert invoke([*log_args, "audit", "lineage", "tickets", "--format", "dot"]).startswith(
        "digraph lineage {"
    )
    assert "flowchart LR" in invoke([*log_args, "audit", "lineage", "tickets", "--format", "mermaid"])
    assert runner.invoke(app, [*log_args, "audit", "lineage", "nowhere"]).exit_code == 2


def test_prove_gives_a_proof_anyone_can_check(log_args: list[str]) -> None:
    vkey = invoke([*log_args, "audit", "public-key"]).strip()
    proof = json.loads(invoke([*log_args, "audit", "prove", "1"]))
    checkpoint = Verifier.from_key(vkey).verify(proof["checkpoint"])
    hashes = [bytes.fromhex(h) for h in proof["proof"]]
    assert verify_inclusion(base64.b64decode(proof["entry"]), 1, checkpoint.size, hashes, checkpoint.root)
    assert runner.invoke(app, [*log_args, "audit", "prove", "99"]).exit_code != 0


def test_export_jsonl_and_openlineage(log_args: list[str], tmp_path: Path) -> None:
    lines = invoke([*log_args, "audit", "export"]).splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2]
    out = tmp_path / "ol.jsonl"
    invoke([*log_args, "audit", "export", "--format", "openlineage", "--out", str(out)])
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events[0]["eventType"] == "COMPLETE"
    facets = events[0]["inputs"][0]["facets"]
    assert events[0]["inputs"][0] == {"namespace": "file", "name": "/lake/raw", "facets": facets}
    assert facets["symlinks"]["identifiers"] == [
        {"namespace": "aisec-catalog", "name": "raw_tickets", "type": "DATASET"}
    ]
    assert facets["aisec_files"]["files"] == [{"uri": "/lake/raw", "sha256": "aa" * 32}]
    assert events[1]["inputs"][0]["namespace"] == "aisec-catalog"  # only a name was recorded
    assert events[0]["run"]["facets"]["aisec_audit"]["index"] == 0


def test_trusted_checkpoint_round_trip(log_args: list[str], tmp_path: Path) -> None:
    trusted = tmp_path / "trusted.txt"
    invoke([*log_args, "audit", "checkpoint", "--out", str(trusted)])
    assert "\n3\n" in trusted.read_text()
    result = runner.invoke(app, [*log_args, "audit", "verify", "--trusted-checkpoint", str(trusted)])
    assert result.exit_code == 0, result.output
    missing = runner.invoke(app, [*log_args, "audit", "verify", "--trusted-checkpoint", str(tmp_path / "no")])
    assert missing.exit_code == 2


def test_no_raw_subject_in_logs_of_appends(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", keyring=str(tmp_path / "k.json")) as log:
        log.append("dsr.access", subject="C0042-secret-subject")
    assert "C0042-secret-subject" not in caplog.text


def test_lineage_names_an_operation_once_however_many_files_it_lists() -> None:
    from airflow_aisec.audit.lineage import LineageGraph
    from airflow_aisec.audit.log import Entry

    files = [{"uri": f"file:///lake/raw/{i}.jsonl", "dataset": "raw"} for i in range(3)]
    masked = [{"uri": f"file:///lake/masked/{i}.jsonl", "dataset": "masked"} for i in range(3)]
    entry = Entry(7, {"action": "pii.mask", "inputs": files, "outputs": masked}, b"")
    graph = LineageGraph.from_entries([entry])
    assert graph.upstream("masked") == [("raw", "masked", ["pii.mask #7"])]
