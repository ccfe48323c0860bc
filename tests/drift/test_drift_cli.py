"""``aisec drift check|anomalies|profile`` on files of the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from airflow_aisec.cli.main import app


def write(folder: Path, shift: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    folder.mkdir()
    for i in range(2):
        table = pa.table({"x": rng.normal(shift, 1, 3000), "c": rng.choice(["a", "b", "c"], 3000)})
        pq.write_table(table, folder / f"part-{i}.parquet")
    return str(folder)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(tmp_path / "no-catalog.yaml"))
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "keyring.json"))
    return CliRunner()


def test_check_exits_1_on_drift_and_writes_the_report(cli: CliRunner, tmp_path: Path) -> None:
    ref, cur = write(tmp_path / "ref", 0.0, 1), write(tmp_path / "cur", 1.0, 2)
    report = tmp_path / "drift.html"
    done = cli.invoke(
        app, ["drift", "check", ref, cur, "--json", "--report", str(report), "--drift-share", "0.4"]
    )
    assert done.exit_code == 1, done.output
    result = json.loads(done.stdout)
    assert result["drifted_columns"] == ["x"] and not result["passed"]
    assert "<svg" in report.read_text()


def test_a_saved_profile_is_a_reference(cli: CliRunner, tmp_path: Path) -> None:
    ref, cur = write(tmp_path / "ref", 0.0, 1), write(tmp_path / "cur", 0.0, 2)
    profile = tmp_path / "ref.json"
    made = cli.invoke(app, ["drift", "profile", ref, "--out", str(profile)])
    assert made.exit_code == 0, made.output
    done = cli.invoke(app, ["drift", "check", str(profile), cur, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["passed"] and json.loads(done.stdout)["reference_rows"] == 6000
    anomalies = cli.invoke(app, ["drift", "anomalies", str(profile), cur])
    assert anomalies.exit_code == 0, anomalies.output
