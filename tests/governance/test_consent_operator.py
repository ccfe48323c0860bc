"""Operators read for a purpose that needs consent through the one purpose check of their base: the scan keeps
only consenting customers' rows (run by Airflow with dag.test()), and an operator that cannot filter is
refused before it reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import types
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from builders import open_log
from consent_setup import consent_catalog

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.exceptions import ConsentError
from airflow_aisec.governance import read_dataset, record_consent
from airflow_aisec.operators.pii import PIIMaskOperator

DAGS = Path(__file__).resolve().parent / "dags"
_BUNDLES = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


@pytest.fixture
def consenting(tmp_path: Path, sample_lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The consent catalog configured, with consent from three customers; their ticket rows and all rows."""
    catalog, path = consent_catalog(sample_lake_dir, tmp_path)
    ring = LocalKeyring(tmp_path / "keyring.json")
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(path))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={sample_lake_dir}")
    monkeypatch.setenv("AIRFLOW__AISEC__KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    keys = KeySource(catalog, ring)
    with open_log(tmp_path, ring, "setup.db") as log:
        tickets = pa.Table.from_batches(
            list(read_dataset("support_tickets", "support", catalog=catalog, keys=keys, audit=log))
        )
        ids = sorted(set(tickets.column("customer_id").to_pylist()))[:3]
        for subject in ids:
            record_consent(
                keys, subject, "newsletter", grant=True, audit=log, at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            )
    kept = sum(1 for v in tickets.column("customer_id").to_pylist() if v in ids)
    return {"kept": kept, "rows": tickets.num_rows}


@pytest.mark.integration
def test_a_scan_for_a_purpose_needing_consent_reads_only_consenting_rows(
    airflow_db: Path, consenting: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bundles = json.loads(os.environ[_BUNDLES])
    bundle = {
        "name": "governance-consent-dags",
        "classpath": bundles[0]["classpath"],
        "kwargs": {"path": str(DAGS)},
    }
    monkeypatch.setenv(_BUNDLES, json.dumps([*bundles, bundle]))
    run = DagBag(dag_folder=str(DAGS)).dags["aisec_test_consent_scan"].test()
    assert {ti.task_id: str(ti.state) for ti in run.get_task_instances()} == {"scan_tickets": "success"}
    with AuditLog.open() as log:
        entries = [e.data for e in log.entries() if (e.data.get("actor") or {}).get("run_id") == run.run_id]
    actions = [e["action"] for e in entries]
    assert actions[0] == "purpose.check" and actions[-1] == "pii.scan"
    filtered = [e for e in entries if e["action"] == "consent.filter"]
    assert filtered and {e["details"]["task"] for e in filtered} == {"aisec_test_consent_scan.scan_tickets"}
    assert sum(e["details"]["kept"] for e in filtered) == consenting["kept"]
    assert sum(e["details"]["dropped"] for e in filtered) == consenting["rows"] - consenting["kept"]


def _context() -> Any:
    ti = types.SimpleNamespace(dag_id="unit", run_id="manual__1", task_id="mask", map_index=-1, try_number=1)
    return {"ti": ti, "params": {}}


def test_an_operator_that_cannot_filter_by_consent_is_refused_before_it_writes(
    consenting: dict[str, int], tmp_path: Path
) -> None:
    operator = PIIMaskOperator(
        task_id="mask", dataset="support_tickets", output_uri=str(tmp_path / "masked"), purpose="newsletter",
        mode="patterns",
    )  # fmt: skip
    with pytest.raises(ConsentError, match=r"^task unit.mask: purpose 'newsletter' needs consent"):
        operator.execute(_context())
    assert not (tmp_path / "masked").exists()
    with AuditLog.open() as log:
        last = [e.data for e in log.entries()][-2:]
    assert [e["action"] for e in last] == ["purpose.check", "consent.filter"]
    assert last[1]["outcome"] == "failure" and last[1]["details"]["purpose"] == "newsletter"
