"""Fan-out by file of Parquet modular encryption: each group stages its files with their key material, the
commit promotes the key material first, and the decrypting reader reads what the single task writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from builders import EXAMPLE
from task_runs import AuditReader, TaskRun

from airflow_aisec.catalog.loader import load_catalog
from airflow_aisec.crypto.datasets import reader_for
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.io import Location, list_files
from airflow_aisec.operators.crypto import EncryptDatasetOperator
from airflow_aisec.operators.fanout import EncryptCombineOperator, ListFileGroupsOperator


def _rows(folder: Path, lake: Path, keyring: Path) -> list[dict[str, Any]]:
    """Every row of the Parquet files in ``folder``, read through the catalog's decrypting reader."""
    catalog = load_catalog(EXAMPLE, {"lake": str(lake)})
    reader = reader_for(KeySource(catalog, keyring), catalog.dataset("customers"))
    batches = [
        b for info in list_files(Location.parse(str(folder)), "parquet") for b in reader(info, "parquet")
    ]
    return pa.Table.from_batches(batches).to_pylist()


def _split(lake: Path, parts: int) -> None:
    """Write the customers dataset as ``parts`` files, so that it splits into several groups."""
    import pyarrow.parquet as pq

    folder = lake / "customers"
    table = pq.read_table(folder)
    for path in folder.glob("*.parquet"):
        path.unlink()
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i:03}.parquet")


def _groups(run: TaskRun) -> list[dict[str, Any]]:
    listing = ListFileGroupsOperator(task_id="encrypt_files", dataset="customers", max_files_per_task=1)
    return listing.execute(run.context("encrypt_files"))


def _encrypt_groups(run: TaskRun, out: Path, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        EncryptDatasetOperator(
            task_id="encrypt_group", dataset="customers", output_uri=str(out), files=group
        ).execute(run.context("encrypt_group", map_index=group["group"]))
        for group in groups
    ]


def _combine(run: TaskRun, out: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    task = EncryptCombineOperator(
        task_id="encrypt", dataset="customers", output_uri=str(out), results=results
    )
    return task.execute(run.context("encrypt"))


def _materials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("_KEY_MATERIAL_FOR_*"))


def test_a_parquet_encryption_in_groups_reads_back_as_the_single_tasks_rows(
    tmp_path: Path, run: TaskRun, lake: Path, audit: AuditReader
) -> None:
    _split(lake, 3)
    keyring = tmp_path / "keyring.json"
    single = tmp_path / "single"
    EncryptDatasetOperator(task_id="single", dataset="customers", output_uri=str(single)).execute(
        run.context("single")
    )
    groups = _groups(run)
    assert len(groups) == 3
    out = tmp_path / "fanned"
    results = _encrypt_groups(run, out, groups)
    assert list(out.glob("*.parquet")) == [] and _materials(out) == []  # staged only
    _combine(run, out, results)

    expected = _rows(single, lake, keyring)
    assert len(expected) == 120 and _rows(out, lake, keyring) == expected
    assert len(_materials(out)) == 3 and not (out / "_aisec-staging").exists()
    single_entry, combined = audit.entries("dataset.encrypt")
    assert [o["uri"].rsplit("/", 1)[1] for o in combined.data["outputs"]] == [
        o["uri"].rsplit("/", 1)[1] for o in single_entry.data["outputs"]
    ]
    _combine(run, out, results)  # a rerun of the commit: nothing promoted twice, nothing recorded twice
    assert len(audit.entries("dataset.encrypt")) == 2 and _rows(out, lake, keyring) == expected

    rerun = TaskRun()  # a new run over the same output replaces the files and their key material
    _combine(rerun, out, _encrypt_groups(rerun, out, _groups(rerun)))
    assert _rows(out, lake, keyring) == expected and len(_materials(out)) == 3  # no orphan left


def test_a_commit_that_fails_between_key_material_and_data_leaves_every_promoted_file_readable(
    tmp_path: Path, run: TaskRun, lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aisec.io import promote

    _split(lake, 3)
    keyring = tmp_path / "keyring.json"
    out = tmp_path / "fanned"
    results = _encrypt_groups(run, out, _groups(run))
    real = promote._promote
    calls: list[str] = []

    def fail_on_the_second_data_file(staged: Any, *args: Any) -> None:
        if staged.fmt is None and sum(1 for c in calls if c == "data") == 1:
            raise OSError("worker lost")
        calls.append("data" if staged.fmt is None else "key material")
        real(staged, *args)

    monkeypatch.setattr(promote, "_promote", fail_on_the_second_data_file)
    with pytest.raises(OSError, match="worker lost"):
        _combine(run, out, results)
    assert calls == ["key material"] * 3 + ["data"]
    assert len(_rows(out, lake, keyring)) == 40  # the one promoted data file reads with its key material

    monkeypatch.setattr(promote, "_promote", real)
    _combine(run, out, results)  # the rerun of the commit finishes it
    assert len(_rows(out, lake, keyring)) == 120 and len(_materials(out)) == 3


def test_an_in_place_encryption_is_not_encrypted_in_groups(tmp_path: Path, run: TaskRun, lake: Path) -> None:
    from airflow_aisec.exceptions import EncryptionError

    group = _groups(run)[0]
    task = EncryptDatasetOperator(
        task_id="encrypt_group", dataset="customers", output_uri=str(lake / "customers"), files=group
    )
    with pytest.raises(EncryptionError, match="only encryptions into another location"):
        task.execute(run.context("encrypt_group", map_index=0))
    assert not (lake / "customers" / "_aisec-staging").exists()


def test_a_parquet_encryption_in_groups_to_s3_reads_back_as_the_single_tasks_rows(
    tmp_path: Path,
    run: TaskRun,
    lake: Path,
    moto_endpoint: str,
    bucket: str,
    s3_options: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_aisec.io.storage import s3_client

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    _split(lake, 2)
    keyring = tmp_path / "keyring.json"
    single = tmp_path / "single"
    EncryptDatasetOperator(task_id="single", dataset="customers", output_uri=str(single)).execute(
        run.context("single")
    )
    out = f"s3://{bucket}/encrypted"
    s3 = {"output_uri": out, "aws_conn_id": None}
    results = [
        EncryptDatasetOperator(task_id="group", dataset="customers", files=g, **s3).execute(
            run.context("group", map_index=g["group"])
        )
        for g in _groups(run)
    ]
    EncryptCombineOperator(task_id="encrypt", dataset="customers", results=results, **s3).execute(
        run.context("encrypt")
    )
    keys = sorted(o["Key"] for o in s3_client(s3_options).list_objects_v2(Bucket=bucket)["Contents"])
    assert [k for k in keys if "_KEY_MATERIAL_FOR_" in k] != [] and not any(
        "_aisec-staging" in k for k in keys
    )
    assert len(keys) == 4  # two data files, two key material files, nothing staged left

    catalog = load_catalog(EXAMPLE, {"lake": str(lake)})
    reader = reader_for(KeySource(catalog, keyring), catalog.dataset("customers"))
    files = list_files(Location.parse(out, s3_options), "parquet")
    rows = pa.Table.from_batches([b for info in files for b in reader(info, "parquet")]).to_pylist()
    assert rows == _rows(single, lake, keyring)
