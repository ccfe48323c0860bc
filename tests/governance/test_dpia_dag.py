"""The weekly ``aisec_dpia`` DAG, run by Airflow with dag.test(): both reports regenerated into the configured
folder, and what changed since the previous run in changes.json and the XCom, by name only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from dpia_world import SUBJECT, world_catalog, world_log

from airflow_aisec.governance.dpia.output import snapshot
from airflow_aisec.review.assessment import assess

# The Airflow tests' helpers reading a dag.test() run back (task states, XComs).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "airflow"))
from dag_runs import states, xcom

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.mark.integration
def test_the_weekly_dag_regenerates_both_reports_and_says_what_changed(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    catalog = world_catalog(tmp_path)
    with world_log(tmp_path, catalog) as log:
        previous = snapshot(assess(catalog, log))
    # The previous run knew neither the orders nor their shipping addresses.
    previous["datasets"].remove("orders")
    previous["pii_columns"].remove("orders.shipping_address")
    out = tmp_path / "reports"
    out.mkdir()
    (out / "snapshot.json").write_text(json.dumps(previous))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", catalog.source)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={tmp_path / 'lake'}")
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("AIRFLOW__AISEC__KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("AISEC_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__GOVERNANCE_REPORTS", str(out))

    run = DagBag(dag_folder=str(DAGS / "aisec_dpia.py")).dags["aisec_dpia"].test()

    assert states(run) == {"regenerate_dpia": "success"}
    result = xcom(run, "regenerate_dpia")
    assert result["folder"] == str(out)
    assert set(result["files"]) == {
        "dpia.md", "dpia.html", "dpia.pdf", "dpia-cnil.json", "ropa.csv", "ropa.json", "changes.json",
        "snapshot.json",
    }  # fmt: skip
    changes = result["changes"]
    assert changes["datasets"] == {"added": ["orders"], "removed": []}
    assert changes["pii_columns"] == {"added": ["orders.shipping_address"], "removed": []}
    assert changes["purposes"] == {"added": [], "removed": []}
    assert json.loads((out / "changes.json").read_text()) == changes
    assert "orders" in json.loads((out / "snapshot.json").read_text())["datasets"]
    assert result["risks"]["special_categories"] in ("high", "very high")
    assert SUBJECT not in json.dumps(result)
