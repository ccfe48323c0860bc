"""`aisec catalog validate|graph`, `aisec config show` and the global flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from airflow_aisec import __version__
from airflow_aisec.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
runner = CliRunner()


def aisec(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "aisec"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_version_flag_prints_the_version() -> None:
    result = aisec("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"aisec {__version__}"


@pytest.mark.parametrize(
    "command",
    [[], ["catalog"], ["catalog", "validate"], ["catalog", "graph"], ["sample-lake"], ["config", "show"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_validate_example_exits_zero_with_summary(sample_lake_dir: Path) -> None:
    result = aisec("catalog", "validate", str(EXAMPLE), "--var", f"lake={sample_lake_dir}")
    assert result.returncode == 0, result.stderr
    assert "valid: 6 datasets, 8 PII columns" in result.stdout
    assert "1 legal holds" in result.stdout


def test_validate_broken_catalog_exits_two_and_lists_every_problem(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["datasets"]["orders"]["references"]["customer_id"] = "customer.customer_id"
    data["datasets"]["chargebacks"]["format"] = "xml"
    broken = tmp_path / "catalog.yaml"
    broken.write_text(yaml.safe_dump(data))
    result = aisec("catalog", "validate", str(broken), "--var", "lake=/data/lake")
    assert result.returncode == 2
    assert f"{broken}: datasets.orders.references.customer_id: unknown dataset 'customer'" in result.stderr
    assert f"{broken}: datasets.chargebacks.format: unknown value 'xml'" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_json_output_is_machine_readable(sample_lake_dir: Path) -> None:
    result = runner.invoke(
        app, ["catalog", "validate", str(EXAMPLE), "--var", f"lake={sample_lake_dir}", "--json"]
    )
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["valid"] is True
    assert document["summary"]["datasets"] == 6
    assert document["errors"] == [] and document["warnings"] == []


def test_strict_turns_warnings_into_failure(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    del data["datasets"]["orders"]["retention"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    offline = ["catalog", "validate", str(path), "--var", "lake=/x", "--offline"]  # the file only
    assert runner.invoke(app, offline).exit_code == 0
    assert runner.invoke(app, [*offline, "--strict"]).exit_code == 2


def test_catalog_comes_from_global_flag_or_configuration(
    monkeypatch: pytest.MonkeyPatch, sample_lake_dir: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={sample_lake_dir}")
    result = runner.invoke(app, ["--catalog", str(EXAMPLE), "catalog", "validate", "--json"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(EXAMPLE))
    assert runner.invoke(app, ["catalog", "validate"]).exit_code == 0


def test_missing_catalog_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", "")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    result = runner.invoke(app, ["catalog", "validate"])
    assert result.exit_code == 2
    assert "no catalog configured" in result.output


def test_bad_var_flag_is_rejected() -> None:
    result = runner.invoke(app, ["catalog", "validate", str(EXAMPLE), "--var", "lake"])
    assert result.exit_code == 2
    assert "expected name=value" in result.output


def test_graph_shows_dependency_order_and_reachability() -> None:
    result = runner.invoke(app, ["catalog", "graph", str(EXAMPLE), "--var", "lake=/x", "--json"])
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert graph["order"][0] == "customers"
    assert set(graph["order"]) == {
        "customers",
        "orders",
        "support_tickets",
        "chargebacks",
        "support_tickets_landing",
        "support_tickets_masked",
    }
    email = {step["dataset"]: step for step in graph["reachability"]["email"]}
    assert email["customers"]["identity_column"] == "email"
    assert email["orders"]["via"] == ["customer_id -> customers.customer_id"]
    assert graph["unreachable"] == []
    text = runner.invoke(app, ["catalog", "graph", str(EXAMPLE), "--var", "lake=/x"])
    assert "identity email" in text.stdout and "customer_id in customers.customer_id" in text.stdout


def test_config_show_reflects_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", "sqlite:///from-env.db")
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "ring.json"))
    result = runner.invoke(app, ["--catalog", "c.yaml", "config", "show", "--json"])
    values = json.loads(result.stdout)
    assert values["catalog"] == "c.yaml"
    assert values["audit_log"] == "sqlite:///from-env.db"
    assert values["keyring"] == str(tmp_path / "ring.json")
    flagged = runner.invoke(
        app, ["--keyring", "k.json", "--log", "sqlite:///x.db", "config", "show", "--json"]
    )
    assert json.loads(flagged.stdout)["keyring"] == "k.json"
    assert json.loads(flagged.stdout)["audit_log"] == "sqlite:///x.db"


def test_check_data_passes_on_the_sample_lake_after_reading_every_file(sample_lake_dir: Path) -> None:
    result = aisec("catalog", "validate", str(EXAMPLE), "--var", f"lake={sample_lake_dir}", "--check-data")

    assert result.returncode == 0, result.stderr
    assert "valid: 6 datasets" in result.stdout
    files = sum(1 for path in sample_lake_dir.rglob("*") if path.suffix in (".parquet", ".csv", ".jsonl"))
    assert f"data: {files} file(s) of 6 dataset(s) read" in result.stderr


def test_check_data_names_the_misspelt_column_the_file_and_a_near_name(
    tmp_path: Path, sample_lake_dir: Path
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    customers = data["datasets"]["customers"]
    customers["columns"]["phnoe"] = customers["columns"].pop("phone")
    customers["encryption"]["columns"] = ["email", "full_name"]
    data["datasets"]["orders"]["uri"] = "{lake}/no-such-orders"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    args = ["catalog", "validate", str(path), "--var", f"lake={sample_lake_dir}", "--check-data"]

    result = aisec(*args)
    document = json.loads(runner.invoke(app, [*args, "--json"]).stdout)

    assert result.returncode == 2
    files = sorted((sample_lake_dir / "customers").glob("*.parquet"))
    assert (  # the same finding in every file of the dataset is one line
        f"error {path}: datasets.customers.columns.phnoe: dataset customers: column phnoe is not in the data "
        f"(did you mean 'phone'?) (in {len(files)} files: file://{files[0]} and {len(files) - 1} more)"
    ) in result.stderr
    assert (
        f"datasets.orders.uri: dataset orders: file://{sample_lake_dir}/no-such-orders: "
        "the location does not exist" in result.stderr
    )
    assert (
        "info dataset customers:" in result.stderr
        and "column 'phone' (string) is in the data" in result.stderr
    )
    assert document["valid"] is False
    kinds = {(p["dataset"], p["kind"]) for p in document["data"]["errors"]}
    assert kinds == {("customers", "missing_column"), ("orders", "location")}
    missing = [p for p in document["data"]["errors"] if p["kind"] == "missing_column"]
    assert [p["file"] for p in missing] == [f"file://{f}" for f in files]  # JSON: one finding per file
    assert {p["kind"] for p in document["data"]["info"]} == {"unlisted_column", "empty"}  # may_be_empty
