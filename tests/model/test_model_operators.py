"""``SignModelOperator`` and ``VerifyModelOperator``: a ``dag.test()`` run, a failing verification, and no
private key material in any log."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from model_audit import entries

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import ModelSignatureError

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
TEST_DAG = Path(__file__).resolve().parents[1] / "airflow" / "dags" / "aisec_test_model_signing.py"


def _context(task_id: str) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="aisec_unit", run_id="manual__1", task_id=task_id, map_index=-1, try_number=1)
    return {"ti": ti, "params": {}}


def _material(ring: LocalKeyring) -> str:
    return str(json.loads(ring.path.read_text())["keys"]["model-signing"]["versions"][0]["material"])


@pytest.mark.integration
def test_a_dag_signs_then_verifies_a_model_downstream_of_its_training_data(
    airflow_db: Path,
    model: Path,
    ring: LocalKeyring,
    log_path: str,
    sample_lake_dir: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(TEST_DAG)).dags["aisec_test_model_signing"]
    conf = {
        "model": str(model),
        "key": "model-signing",
        "catalog": str(EXAMPLE),
        "lake": str(sample_lake_dir),
    }
    with caplog.at_level(logging.DEBUG):
        run = dag.test(run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"sign_model": "success", "verify_model": "success"}

    [signed] = entries(log_path, "model.sign")
    assert signed["dataset"] == "model://fraud-detector"
    assert [i["dataset"] for i in signed["inputs"]] == ["customers", "orders"]  # type: ignore[attr-defined]
    assert signed["actor"]["task_id"] == "sign_model"  # type: ignore[index]
    [verified] = entries(log_path, "model.verify")
    assert (verified["outcome"], verified["dataset"]) == ("success", "model://fraud-detector")

    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "sign" in logged  # the capture saw the run
    assert _material(ring) not in logged
    assert "PRIVATE KEY" not in logged


def test_the_verify_task_fails_naming_the_changed_files(
    model: Path, ring: LocalKeyring, log_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_aisec.operators.model import SignModelOperator, VerifyModelOperator

    with caplog.at_level(logging.DEBUG):
        SignModelOperator(task_id="sign", model_path=str(model), key="model-signing").execute(
            _context("sign")
        )
        (model / "tokenizer" / "vocab.txt").write_text("z\n")
        (model / "config.json").unlink()
        verify = VerifyModelOperator(task_id="verify", model_path=str(model), key="model-signing")
        with pytest.raises(ModelSignatureError) as failed:
            verify.execute(_context("verify"))
    assert "1 file(s) changed: tokenizer/vocab.txt" in str(failed.value)
    assert "1 file(s) missing: config.json" in str(failed.value)
    [entry] = entries(log_path, "model.verify")
    assert entry["outcome"] == "failure"
    assert entry["details"]["missing"] == ["config.json"]  # type: ignore[index]
    assert _material(ring) not in caplog.text


def test_the_operators_report_the_model_to_openlineage(
    model: Path, ring: LocalKeyring, log_path: str
) -> None:
    from airflow_aisec.operators.model import SignModelOperator

    sign = SignModelOperator(task_id="sign", model_path=str(model), key="model-signing", model_name="m")
    sign.execute(_context("sign"))
    lineage = sign.get_openlineage_facets_on_complete(None)
    [output] = lineage.outputs
    assert (output.namespace, output.name) == ("file", str(model))
    assert output.facets["symlinks"].identifiers[0].name == "model://m"
