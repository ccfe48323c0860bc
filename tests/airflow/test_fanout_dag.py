"""Fan-out by file run by Airflow (dag.test()): mapped groups, then one combine, as one single task."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import lake_copy
from dag_runs import dag_from
from dag_runs import states as _states

from airflow_aisec.audit import AuditLog

TEST_DAGS = Path(__file__).resolve().parent / "dags"


@pytest.mark.integration
def test_a_fanned_out_masking_writes_what_the_single_task_writes_and_records_one_step(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", f"sqlite:///{tmp_path / 'audit.db'}")
    lake = lake_copy(sample_lake_dir, tmp_path)
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={lake}")
    conf = {"single": str(tmp_path / "single"), "fanned": str(tmp_path / "fanned")}
    dag = dag_from(TEST_DAGS / "aisec_test_fanout.py", "aisec_test_fanout")
    run = dag.test(run_conf=conf)
    assert set(_states(run).values()) == {"success"}
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "mask_fanned_group"]
    assert sorted(ti.map_index for ti in mapped) == [0, 1, 2, 3, 4]  # 9 files, 2 per group

    def files(folder: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("*.jsonl"))}

    assert files(conf["fanned"]) == files(conf["single"]) and len(files(conf["single"])) == 9
    with AuditLog.open() as log:
        assert log.verify().ok
        masks = {e.data["actor"]["task_id"]: e.data for e in log.entries() if e.action == "pii.mask"}
    assert set(masks) == {"mask_single", "mask_fanned"}  # the groups record nothing of their own
    single, fanned = masks["mask_single"], masks["mask_fanned"]
    assert fanned["rows"] == single["rows"] and len(fanned["details"]["groups"]) == 5
    assert [o["sha256"] for o in fanned["outputs"]] == [o["sha256"] for o in single["outputs"]]
