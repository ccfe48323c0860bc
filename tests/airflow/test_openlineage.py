"""OpenLineage shows where personal data is: tags on each dataset (``pii``) and on its columns
(``pii.entity``, ``pii.masked``, ``pii.strategy``), from the lineage of mask and encrypt steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dag_runs import dag_from
from dag_runs import states as _states

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.io import Location
from airflow_aisec.lineage import DatasetRef, StepLineage, classify
from airflow_aisec.operators.openlineage import operator_lineage
from airflow_aisec.pii.mask import ColumnPlan, Masker
from airflow_aisec.pii.pipeline import mask_dataset, mask_entry

TEST_DAGS = Path(__file__).resolve().parent / "dags"
EMAIL = "ann.lee@example.com"


@pytest.fixture(autouse=True)
def _own_audit_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Steps here write copies of catalog data the catalog does not list: recorded in the shared log, their
    lineage would fail the catalog checks of other tests."""
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")


def _tags(dataset: Any) -> dict[str | None, dict[str, str]]:
    """Tags by field (None: the dataset's own), as ``{key: value}``."""
    found: dict[str | None, dict[str, str]] = {}
    for tag in dataset.facets["tags"].tags:
        assert tag.source == "airflow-aisec"
        found.setdefault(tag.field, {})[tag.key] = tag.value
    return found


def _mask_lineage(tmp_path: Path) -> StepLineage:
    source = tmp_path / "raw"
    source.mkdir()
    pq.write_table(
        pa.table(
            {"id": [1, 2], "email": [EMAIL, None], "name": ["Ann Lee", "Raj"], "ssn": ["078-05-1120", None]}
        ),
        source / "part-0.parquet",
    )
    plans = [
        ColumnPlan("email", "EMAIL_ADDRESS", "pseudonymize", {"key": "aisec-pseudonyms"}),
        ColumnPlan("name", "PERSON", "redact"),
        ColumnPlan("ssn", "US_SSN", "drop"),
    ]
    masker = Masker(plans, LocalKeyring(tmp_path / "ring.json"))
    result = mask_dataset(Location.parse(source), Location.parse(tmp_path / "masked"), masker, fmt="parquet")
    lineage, _fields = mask_entry("contacts", "contacts_masked", result, plans)
    return lineage


def test_a_mask_step_tags_the_entity_of_each_column_and_how_the_output_is_masked(tmp_path: Path) -> None:
    lineage = operator_lineage(_mask_lineage(tmp_path))

    source, target = lineage.inputs[0], lineage.outputs[0]
    assert _tags(source) == {
        None: {"pii": "true"},
        "email": {"pii.entity": "EMAIL_ADDRESS", "pii.masked": "false"},
        "name": {"pii.entity": "PERSON", "pii.masked": "false"},
        "ssn": {"pii.entity": "US_SSN", "pii.masked": "false"},
    }
    assert _tags(target) == {
        None: {"pii": "true"},  # a pseudonym still links to the person: still personal data
        "email": {"pii.entity": "EMAIL_ADDRESS", "pii.masked": "true", "pii.strategy": "pseudonymize"},
        "name": {"pii.entity": "PERSON", "pii.masked": "true", "pii.strategy": "redact"},
    }  # ssn was dropped: the output has no such column to tag
    assert "id" not in _tags(target)
    assert target.facets["columnLineage"].fields["email"].transformationType == "MASKED"
    assert EMAIL not in json.dumps([str(d.facets) for d in (source, target)])


def test_a_dataset_whose_pii_is_all_redacted_is_tagged_pii_false() -> None:
    ref = DatasetRef(
        "/lake/out.parquet", classification=classify({"email": "EMAIL_ADDRESS"}, {"email": "redact"})
    )
    unknown = DatasetRef("/lake/other.parquet")
    none = DatasetRef("/lake/metrics.parquet", classification=())

    lineage = operator_lineage(StepLineage(outputs=[ref, unknown, none]))

    assert _tags(lineage.outputs[0])[None] == {"pii": "false"}
    assert "tags" not in lineage.outputs[1].facets  # nothing known, nothing claimed
    assert _tags(lineage.outputs[2]) == {None: {"pii": "false"}}


def test_an_encrypt_step_tags_the_encrypted_pii_columns(sample_lake_dir: Path, tmp_path: Path) -> None:
    from airflow_aisec.operators.crypto import EncryptDatasetOperator

    shutil.copytree(sample_lake_dir / "customers", tmp_path / "customers")
    operator = EncryptDatasetOperator(
        task_id="encrypt",
        dataset="customers",
        variables={"lake": str(sample_lake_dir)},
        input_uri=str(tmp_path / "customers"),
        output_uri=str(tmp_path / "encrypted"),
        columns=["email", "phone"],
        keyring=str(tmp_path / "ring.json"),
    )
    operator.execute(context={})  # type: ignore[arg-type]

    lineage = operator.get_openlineage_facets_on_complete(None)

    # The files of a folder are one dataset, named by the folder (as the audit log's export names it).
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("file", str(tmp_path / "encrypted"))]
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("file", str(tmp_path / "customers"))]
    source, target = _tags(lineage.inputs[0]), _tags(lineage.outputs[0])
    assert source["email"] == {"pii.entity": "EMAIL_ADDRESS", "pii.masked": "false"}
    assert target["email"] == {"pii.entity": "EMAIL_ADDRESS", "pii.masked": "true", "pii.strategy": "encrypt"}
    assert target["phone"]["pii.strategy"] == "encrypt"
    assert target["full_name"] == {"pii.entity": "PERSON", "pii.masked": "false"}  # not among the columns
    assert target[None] == {"pii": "true"}


def test_a_scan_step_tags_the_entities_it_found(sample_lake_dir: Path) -> None:
    from airflow_aisec.operators.pii import PIIScanOperator

    operator = PIIScanOperator(
        task_id="scan",
        dataset="customers",
        mode="patterns",
        variables={"lake": str(sample_lake_dir)},
        fail_on_undeclared=False,
    )
    operator.execute(context={})  # type: ignore[arg-type]

    tags = _tags(operator.get_openlineage_facets_on_complete(None).inputs[0])

    assert tags[None] == {"pii": "true"}
    assert tags["email"] == {"pii.entity": "EMAIL_ADDRESS", "pii.masked": "false"}
    assert "customer_id" not in tags


@pytest.mark.integration
def test_dag_run_emits_pii_tags_through_the_openlineage_listener(
    airflow_db: Path, lake_vars: dict[str, str], tmp_path: Path, openlineage_events: Path
) -> None:
    dag = dag_from(TEST_DAGS / "aisec_test_pii_tags.py")
    masked, encrypted = tmp_path / "masked", tmp_path / "encrypted"
    run = dag.test(run_conf={"masked": str(masked), "encrypted": str(encrypted)})
    assert _states(run) == {"mask": "success", "encrypt": "success"}

    events = [
        json.loads(line) for f in sorted(openlineage_events.glob("*")) for line in f.read_text().splitlines()
    ]
    complete = {
        e["job"]["name"]: e
        for e in events
        if e.get("eventType") == "COMPLETE"
        and e["run"]["facets"].get("airflow", {}).get("dagRun", {}).get("run_id") in (None, run.run_id)
        and e["job"]["name"].startswith("aisec_test_pii_tags.")
    }
    mask_output = complete["aisec_test_pii_tags.mask"]["outputs"][0]
    tags = {(t.get("field"), t["key"]): t["value"] for t in mask_output["facets"]["tags"]["tags"]}
    assert tags[(None, "pii")] == "true"
    assert tags[("email", "pii.entity")] == "EMAIL_ADDRESS"
    assert tags[("email", "pii.masked")] == "true"
    assert tags[("email", "pii.strategy")] == "pseudonymize"
    assert mask_output["name"].startswith(str(masked))
    encrypt_output = complete["aisec_test_pii_tags.encrypt"]["outputs"][0]
    assert {t["key"] for t in encrypt_output["facets"]["tags"]["tags"] if t.get("field") == "phone"} >= {
        "pii.entity",
        "pii.masked",
    }
    raw = pq.read_table(Path(lake_vars["lake"]) / "customers").column("email").to_pylist()
    text = json.dumps([complete[name] for name in complete])
    assert not any(email in text for email in raw if email)
