"""`aisec compliance check`: exit codes, JSON, JUnit XML and SARIF over the sample lake and the DAGs."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from builders import DAGS, EXAMPLE, ROOT, catalog_file, lake_copy
from typer.testing import CliRunner

from airflow_aisec.cli.main import app
from airflow_aisec.governance.compliance import RULES

runner = CliRunner()
PLANTED = "planted.person.4711@example.org"


def _invoke(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(app, ["--keyring", str(tmp_path / "keys.json"), "compliance", "check", *args])


def _scan_args(lake: Path, catalog: Path = EXAMPLE) -> list[str]:
    return [
        "--catalog",
        str(catalog),
        "--var",
        f"lake={lake}",
        "--scan",
        "--mode",
        "patterns",
        "--sample",
        "100",
    ]


@pytest.fixture
def planted_lake(sample_lake_dir: Path, tmp_path: Path) -> Path:
    """The sample lake with an undeclared column of e-mail addresses in one orders file."""
    lake = lake_copy(sample_lake_dir, tmp_path)
    first = sorted((lake / "orders").glob("*.parquet"))[0]
    table = pq.read_table(first)
    pq.write_table(table.append_column("contact", pa.array([PLANTED] * table.num_rows)), first)
    return lake


def test_the_example_catalog_over_the_sample_lake_passes(sample_lake_dir: Path, tmp_path: Path) -> None:
    result = _invoke(tmp_path, *_scan_args(sample_lake_dir), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"passed": True, "findings": []}


def test_undeclared_pii_in_the_data_fails_the_gate_without_showing_a_value(
    planted_lake: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    junit, sarif = tmp_path / "out" / "compliance.xml", tmp_path / "out" / "compliance.sarif"
    args = [*_scan_args(planted_lake), "--junit", str(junit), "--sarif", str(sarif)]
    as_json = _invoke(tmp_path, *args, "--json")
    assert as_json.exit_code == 1, as_json.output
    document = json.loads(as_json.stdout)
    assert document["passed"] is False
    [finding] = document["findings"]
    assert set(finding) == {"rule", "severity", "dataset", "path", "file", "line", "message"}
    assert (finding["rule"], finding["dataset"], finding["path"]) == (
        "AISEC-C006",
        "orders",
        "datasets.orders.columns.contact",
    )
    assert "EMAIL_ADDRESS" in finding["message"]
    as_text = _invoke(tmp_path, *args)
    assert as_text.exit_code == 1 and "AISEC-C006" in as_text.output and "FAILED" in as_text.output
    for text in (as_json.output, as_text.output, junit.read_text(), sarif.read_text(), caplog.text):
        assert PLANTED not in text and "4711" not in text


def test_junit_xml_holds_one_testcase_per_rule_and_dataset_with_the_failure(
    planted_lake: Path, tmp_path: Path
) -> None:
    junit = tmp_path / "compliance.xml"
    assert _invoke(tmp_path, *_scan_args(planted_lake), "--junit", str(junit)).exit_code == 1
    root = ET.parse(junit).getroot()
    suites = {suite.get("name", "").split()[0]: suite for suite in root.iter("testsuite")}
    assert list(suites) == list(RULES)
    scanned = {case.get("name"): case for case in suites["AISEC-C006"].iter("testcase")}
    assert set(scanned) == {"chargebacks", "customers", "orders", "support_tickets"}
    [failure] = scanned["orders"].findall("failure")
    assert failure.get("type") == "AISEC-C006" and "contact" in (failure.text or "")
    assert scanned["customers"].find("failure") is None
    assert (root.get("failures"), suites["AISEC-C006"].get("failures")) == ("1", "1")
    assert root.get("tests") == str(sum(int(s.get("tests", "0")) for s in suites.values()))


def test_sarif_lists_the_rules_and_locates_each_result_in_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = catalog_file(tmp_path, lambda d: d["datasets"]["support_tickets"].pop("retention"))
    monkeypatch.chdir(tmp_path)
    sarif = tmp_path / "compliance.sarif"
    result = _invoke(tmp_path, "--catalog", str(catalog), "--var", "lake=/data/lake", "--sarif", str(sarif))
    assert result.exit_code == 1
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    assert all(r["shortDescription"]["text"] and r["help"]["text"] for r in rules)
    [found] = run["results"]
    assert found["ruleId"] == "AISEC-C003" and rules[found["ruleIndex"]]["id"] == "AISEC-C003"
    assert found["level"] == "error" and "support_tickets" in found["message"]["text"]
    [location] = found["locations"]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "catalog.yaml", "uriBaseId": "%SRCROOT%"}
    line = catalog.read_text().splitlines()[physical["region"]["startLine"] - 1]
    assert line.strip() == "support_tickets:"
    assert location["logicalLocations"][0]["fullyQualifiedName"] == "datasets.support_tickets"
    assert "%SRCROOT%" in run["originalUriBaseIds"]


def test_a_catalog_that_does_not_load_exits_1_and_bad_options_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 2\n")
    result = _invoke(tmp_path, "--catalog", str(broken), "--json")
    assert result.exit_code == 1
    assert {f["rule"] for f in json.loads(result.stdout)["findings"]} == {"AISEC-C001"}
    missing = _invoke(
        tmp_path, "--catalog", str(EXAMPLE), "--var", "lake=/x", "--dags", str(tmp_path / "none")
    )
    assert missing.exit_code == 2 and "not a folder of DAG files" in missing.output
    bad_mode = _invoke(tmp_path, "--catalog", str(EXAMPLE), "--var", "lake=/x", "--scan", "--mode", "regex")
    assert bad_mode.exit_code == 2 and "unknown --mode 'regex'" in bad_mode.output


def test_a_dataset_that_cannot_be_scanned_fails_the_gate(sample_lake_dir: Path, tmp_path: Path) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    sorted((lake / "support_tickets").glob("*.jsonl"))[0].write_text('{"ticket_id": "T1", "body": \n')
    result = _invoke(tmp_path, *_scan_args(lake), "--json")
    assert result.exit_code == 1
    rules = {(f["rule"], f["dataset"]) for f in json.loads(result.stdout)["findings"]}
    assert ("AISEC-C006", "support_tickets") in rules


def test_an_encrypted_dataset_is_scanned_with_the_catalogs_key_and_fails_without_it(
    sample_lake_dir: Path, tmp_path: Path
) -> None:
    lake = lake_copy(sample_lake_dir, tmp_path)
    customers = str(lake / "customers")
    encrypt = ["encrypt", customers, customers, "--catalog", str(EXAMPLE), "--dataset", "customers"]
    keyring = str(tmp_path / "keys.json")
    # An audit log of this test's own: the run's shared one is signed by another keyring.
    log = ["--log", f"sqlite:///{tmp_path / 'audit.db'}"]
    done = runner.invoke(app, ["--keyring", keyring, *log, *encrypt, "--var", f"lake={lake}"])
    assert done.exit_code == 0, done.output
    with_key = _invoke(tmp_path, *_scan_args(lake), "--json")
    assert with_key.exit_code == 0, with_key.output
    other = runner.invoke(
        app, ["--keyring", str(tmp_path / "other.json"), "compliance", "check", *_scan_args(lake), "--json"]
    )
    assert other.exit_code == 1, other.output
    failed = [f for f in json.loads(other.stdout)["findings"] if f["severity"] == "error"]
    assert failed and {f["dataset"] for f in failed} == {"customers"}


@dataclasses.dataclass(frozen=True)
class _Violation:
    file: str
    dag_id: str
    task_id: str | None
    rule: str
    message: str


def test_dag_policy_violations_fail_the_gate_with_the_dag_files_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, str | None]] = []

    def check_dags_folder(
        folder: Path, catalog_path: str | None = None, catalog_vars: Any = None
    ) -> list[Any]:
        calls.append((folder, catalog_path))
        return [
            _Violation(
                "aisec_privacy_pipeline.py", "aisec_privacy_pipeline", "mask_pii", "AISEC-P003", "mask"
            )
        ]

    fake = types.ModuleType("airflow_aisec.policies")
    fake.check_dags_folder = check_dags_folder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow_aisec.policies", fake)
    junit = tmp_path / "compliance.xml"
    args = [
        "--catalog",
        str(EXAMPLE),
        "--var",
        "lake=/x",
        "--dags",
        str(DAGS),
        "--junit",
        str(junit),
        "--json",
    ]
    result = _invoke(tmp_path, *args)
    assert result.exit_code == 1 and calls == [(DAGS, str(EXAMPLE))]
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "AISEC-C005" and finding["file"] == str(DAGS / "aisec_privacy_pipeline.py")
    assert "mask_pii" in (DAGS / "aisec_privacy_pipeline.py").read_text().splitlines()[finding["line"] - 1]
    cases = {
        c.get("name"): c
        for c in ET.parse(junit).getroot().iter("testcase")
        if "C005" in c.get("classname", "")
    }
    assert cases[str(DAGS / "aisec_privacy_pipeline.py")].find("failure") is not None
    assert cases[str(DAGS / "aisec_dsr_erasure.py")].find("failure") is None


def test_the_pre_commit_hook_runs_the_gate_on_the_projects_dags(
    tmp_path: Path, sample_lake_dir: Path
) -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "aisec-compliance" and hook["pass_filenames"] is False
    command = hook["entry"].split()
    assert command[:3] == ["aisec", "compliance", "check"]
    args = [*command[3:], *hook["args"], "--catalog", str(EXAMPLE), "--var", f"lake={sample_lake_dir}"]
    result = runner.invoke(
        app, ["--keyring", str(tmp_path / "keys.json"), *command[1:3], *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "AISEC-C005" in result.stdout and "passed" in result.stdout
