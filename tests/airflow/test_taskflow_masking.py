"""Masking inside TaskFlow tasks (`aisec_taskflow_masking`) and ``PIIMaskOperator`` without a catalog dataset,
run by Airflow with dag.test() on a copy of the sample lake."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest
from builders import DAGS, lake_copy
from dag_runs import dag_from
from dag_runs import states as _states
from dag_runs import xcom as _xcom

from airflow_aisec.audit import AuditLog
from airflow_aisec.operators.pii import PIIMaskOperator

TEST_DAGS = Path(__file__).resolve().parent / "dags"
EMAILS = ["ann.lee@example.com", "raj.patel@example.org", "eva.novak@example.net"]


def _entries(run: Any) -> list[dict[str, Any]]:
    with AuditLog.open() as log:
        return [e.data for e in log.entries() if (e.data.get("actor") or {}).get("run_id") == run.run_id]


def _test_dag(dag_id: str) -> Any:
    return dag_from(TEST_DAGS / "aisec_test_pii_mask.py", dag_id)


@pytest.fixture(autouse=True)
def own_audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh audit log per test: the masked copies written here must not reach the lineage other tests
    check (``catalog validate --lineage`` rightly flags copies the catalog does not list)."""
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.fixture
def lake(sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = lake_copy(sample_lake_dir, tmp_path)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={copy}")
    return copy


@pytest.mark.integration
def test_taskflow_tasks_read_encrypted_customers_through_the_catalog_key(
    airflow_db: Path, lake: Path
) -> None:
    # The catalog encrypts customers' e-mail, phone and name with `pii-columns`: the tasks read them
    # decrypted (the catalog's reader), mask them, and write no plaintext.
    import os

    from airflow_aisec.crypto.datasets import encrypt_files
    from airflow_aisec.crypto.providers import LocalKeyProvider
    from airflow_aisec.io import Location

    raw = pq.read_table(lake / "customers").to_pylist()
    customers = Location.parse(lake / "customers")
    provider = LocalKeyProvider(os.environ["AISEC_KEYRING"])
    encrypt_files(
        customers, customers, "parquet", provider, "pii-columns", columns=["email", "phone", "full_name"]
    )

    run = dag_from(DAGS / "aisec_taskflow_masking.py").test()
    assert _states(run) == {"extract_customers": "success", "orders_report": "success"}
    extract = pq.read_table(lake / "analytics" / "customers" / "customers.parquet").to_pylist()
    assert len(extract) == 100 and all(row["email"].startswith("pseu_") for row in extract)
    written = json.dumps(
        [pq.read_table(p).to_pylist() for p in (lake / "analytics").rglob("*.parquet")], default=str
    )
    assert not any(row["email"] in written or row["full_name"] in written for row in raw)


@pytest.mark.integration
def test_taskflow_tasks_mask_by_the_catalog_and_by_rules(airflow_db: Path, lake: Path) -> None:

    run = dag_from(DAGS / "aisec_taskflow_masking.py").test()
    assert _states(run) == {"extract_customers": "success", "orders_report": "success"}

    raw = pq.read_table(lake / "customers").slice(0, 100).to_pylist()
    extract = pq.read_table(lake / "analytics" / "customers" / "customers.parquet")
    assert extract.num_rows == 100
    by_id = {row["customer_id"]: row for row in extract.to_pylist()}
    for row in raw:
        masked = by_id[row["customer_id"]]  # not declared as PII: kept, so the extract still joins
        assert masked["email"].startswith("pseu_") and masked["full_name"] == "<PERSON>"
        assert masked["birth_date"] == dt.date(row["birth_date"].year, 1, 1)
    report = pq.read_table(lake / "analytics" / "orders_report" / "orders_report.parquet")
    assert "full_name" not in report.column_names and report.num_rows > 0
    assert all(v.startswith("pseu_") for v in report.column("email").to_pylist())
    # Customer ids and e-mails are pseudonymized by rule with the same key: the same customer, the same token.
    assert not set(report.column("customer_id").to_pylist()) & set(by_id)

    written = (lake / "analytics").rglob("*.parquet")
    text = json.dumps([pq.read_table(p).to_pylist() for p in written], default=str)
    assert not any(row["email"] in text or row["full_name"] in text for row in raw)
    xcoms = {task: _xcom(run, task) for task in ("extract_customers", "orders_report")}
    assert xcoms["extract_customers"]["rows"] == 100
    assert "@" not in json.dumps(xcoms)

    entries = [e for e in _entries(run) if e["action"] == "pii.mask"]
    by_task = {e["actor"]["task_id"]: e for e in entries}
    assert set(by_task) == {"extract_customers", "orders_report"}
    assert by_task["extract_customers"]["dataset"] == "customers"
    assert by_task["extract_customers"]["details"]["masked_per_entity"]["EMAIL_ADDRESS"] == 100
    assert by_task["orders_report"]["details"]["strategies"]["full_name"] == "drop"
    assert all(len(e["inputs"][0]["sha256"]) == 64 for e in entries)
    assert not any(row["email"] in json.dumps(entries) for row in raw)
    # Every read of a catalog dataset went through read_dataset: checked against its purposes and recorded.
    checks = [e for e in _entries(run) if e["action"] == "purpose.check"]
    assert sorted((e["actor"]["task_id"], e["dataset"]) for e in checks) == [
        ("extract_customers", "customers"),
        ("orders_report", "customers"),
        ("orders_report", "orders"),
    ]
    assert {e["details"]["purpose"] for e in checks} == {"billing"}
    assert all(e["outcome"] == "success" for e in checks)


@pytest.mark.integration
def test_mask_operator_and_mask_table_give_the_same_pseudonyms(airflow_db: Path, lake: Path) -> None:
    from airflow_aisec.pii import mask_table

    out = lake / "masked" / "customers"
    run = _test_dag("aisec_test_mask_customers").test(run_conf={"output": str(out)})
    assert _states(run) == {"mask": "success"}
    by_operator = pq.read_table(out).sort_by("customer_id")
    raw = pq.read_table(lake / "customers").sort_by("customer_id")
    in_task = mask_table(raw, dataset="customers")
    assert in_task.column("email").to_pylist() == by_operator.column("email").to_pylist()
    assert in_task.column("phone").to_pylist() == by_operator.column("phone").to_pylist()
    assert in_task.column("email").to_pylist() != raw.column("email").to_pylist()


@pytest.mark.integration
def test_mask_operator_without_a_catalog_dataset(
    airflow_db: Path, tmp_path: Path, openlineage_events: Path
) -> None:
    incoming = tmp_path / "incoming" / "leads.csv"
    incoming.parent.mkdir()
    leads = pa.table(
        {
            "lead_id": [f"L{i:03d}" for i in range(30)],
            "email": [EMAILS[i % 3] for i in range(30)],
            "score": list(range(30)),
        }
    )
    pv.write_csv(leads, incoming)
    by_rules, by_scan = tmp_path / "masked" / "by_rules", tmp_path / "masked" / "by_scan"
    conf = {"input": str(incoming), "by_rules": str(by_rules), "by_scan": str(by_scan)}
    run = _test_dag("aisec_test_mask_without_catalog").test(run_conf=conf)
    assert _states(run) == {"mask_by_rules": "success", "mask_what_the_scan_finds": "success"}

    ruled = pv.read_csv(by_rules / "leads.csv")
    scanned = pv.read_csv(by_scan / "leads.csv")
    assert ruled.column("score").to_pylist() == [i // 10 * 10 for i in range(30)]
    assert scanned.column("score").to_pylist() == list(range(30))  # not found to be PII: untouched
    assert ruled.column("email").to_pylist() == scanned.column("email").to_pylist()  # both: default key
    assert all(v.startswith("pseu_") for v in ruled.column("email").to_pylist())
    assert _xcom(run, "mask_by_rules")["masked"] == {"email": {"PII": 30}, "score": {"PII": 30}}

    entries = {e["actor"]["task_id"]: e for e in _entries(run) if e["action"] == "pii.mask"}
    ruled_entry = entries["mask_by_rules"]
    assert (
        ruled_entry["inputs"][0]["uri"].endswith(str(incoming))
        and len(ruled_entry["inputs"][0]["sha256"]) == 64
    )
    assert ruled_entry["outputs"][0]["dataset"] == "leads_masked"
    assert ruled_entry["columns"] == ["email", "score"]
    assert entries["mask_what_the_scan_finds"]["details"]["strategies"] == {"email": "pseudonymize"}
    assert not any(email in json.dumps(entries) for email in EMAILS)

    events = [
        json.loads(line) for f in sorted(openlineage_events.glob("*")) for line in f.read_text().splitlines()
    ]
    complete = [
        e
        for e in events
        if e.get("eventType") == "COMPLETE"
        and e.get("job", {}).get("name") == "aisec_test_mask_without_catalog.mask_by_rules"
    ]
    assert complete, [e.get("job") for e in events]
    output = complete[-1]["outputs"][0]
    assert output["name"] == str(by_rules)  # one dataset, named by its folder, however many files
    fields = output["facets"]["columnLineage"]["fields"]
    assert fields["email"]["transformationType"] == "MASKED"
    assert fields["lead_id"]["transformationType"] == "IDENTITY"


def test_mask_operator_without_a_dataset_needs_an_input(tmp_path: Path) -> None:
    from airflow_aisec.exceptions import PIIError

    operator = PIIMaskOperator(task_id="m", output_uri=str(tmp_path / "out"), columns={"email": "redact"})
    with pytest.raises(PIIError, match=r"without a catalog dataset, input_uri names the data to mask"):
        operator.execute(context={})  # type: ignore[arg-type]
    both = PIIMaskOperator(
        task_id="m", dataset="customers", output_uri=str(tmp_path), columns={"email": "redact"}
    )
    with pytest.raises(PIIError, match=r"the catalog's mask rules apply; columns= is for data without one"):
        both.execute(context={})  # type: ignore[arg-type]


def test_scan_operator_passes_and_tags_no_pii_for_a_column_reviewed_as_not_personal(tmp_path: Path) -> None:
    import uuid

    from airflow_aisec.operators.pii import PIIScanOperator

    (tmp_path / "events").mkdir()
    keys = [str(uuid.uuid4()) for _ in range(40)]
    pq.write_table(
        pa.table({"event_id": keys, "kind": ["click"] * 40}), tmp_path / "events" / "part-0.parquet"
    )
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "version: 1\n"
        "subjects: {identities: [email]}\n"
        "keys: {aisec-pseudonyms: {provider: local}}\n"
        "datasets:\n"
        f"  events:\n    uri: {tmp_path / 'events'}\n    format: parquet\n"
        "    columns: {event_id: {pii: none}, kind: {}}\n"
    )
    operator = PIIScanOperator(task_id="scan", dataset="events", catalog=str(catalog), mode="patterns")
    result = operator.execute(context={})  # type: ignore[arg-type]
    assert result["columns"]["event_id"]["entity"] == "UUID" and result["undeclared"] == []
    facets = operator.get_openlineage_facets_on_complete(None).inputs[0].facets
    tags = {(tag.field, tag.key): tag.value for tag in facets["tags"].tags}
    assert tags[(None, "pii")] == "false"
    assert ("event_id", "pii.entity") not in tags
