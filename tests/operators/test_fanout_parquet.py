"""Fan-out by file of Parquet modular encryption: each group stages its files with their key material, the
commit promotes the key material first, and the decrypting reader reads what the single task writes. In
place, each group encrypts its own files where they are (envelopes too), a retried group finishes what its
first try began, and the combine refuses a file changed after its group."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from builders import EXAMPLE
from task_runs import AuditReader, TaskRun

from airflow_aisec.catalog.loader import load_catalog
from airflow_aisec.crypto.datasets import reader_for
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.exceptions import ConcurrentModificationError, FanOutError
from airflow_aisec.io import Location, list_files
from airflow_aisec.operators.crypto import DecryptDatasetOperator, EncryptDatasetOperator
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


def _in_place(run: TaskRun, dataset: str, groups: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """The groups of an in-place encryption (no ``output_uri``), one mapped task each."""
    return [
        EncryptDatasetOperator(task_id="encrypt_group", dataset=dataset, files=group, **extra).execute(
            run.context("encrypt_group", map_index=group["group"])
        )
        for group in groups
    ]


def _in_place_combine(
    run: TaskRun, dataset: str, results: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    task = EncryptCombineOperator(task_id="encrypt", dataset=dataset, results=results, **extra)
    return task.execute(run.context("encrypt"))


def _listing(run: TaskRun, dataset: str, per_task: int) -> list[dict[str, Any]]:
    listing = ListFileGroupsOperator(task_id="encrypt_files", dataset=dataset, max_files_per_task=per_task)
    return listing.execute(run.context("encrypt_files"))


def _digests(folder: Path, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


def test_parquet_groups_in_place_give_the_single_tasks_result_and_one_entry(
    tmp_path: Path, run: TaskRun, lake: Path, audit: AuditReader
) -> None:
    _split(lake, 3)
    keyring = tmp_path / "keyring.json"
    single = tmp_path / "single"
    shutil.copytree(lake / "customers", single)
    plain = _digests(lake / "customers", "*.parquet")
    EncryptDatasetOperator(task_id="single", dataset="customers", input_uri=str(single)).execute(
        run.context("single")
    )

    results = _in_place(run, "customers", _groups(run))
    _in_place_combine(run, "customers", results)

    folder = lake / "customers"
    assert len(results) == 3 and _rows(folder, lake, keyring) == _rows(single, lake, keyring)
    assert len(_rows(folder, lake, keyring)) == 120 and not (folder / "_aisec-staging").exists()

    def shape(where: Path) -> list[str]:  # file names; a key material file by the data file it belongs to
        return sorted(
            p.name.rsplit(".", 2)[0] if p.name.startswith("_KEY") else p.name for p in where.iterdir()
        )

    assert shape(folder) == shape(single) != []
    single_entry, combined = audit.entries("dataset.encrypt")
    assert [i["sha256"] for i in combined.data["inputs"]] == list(plain.values())
    assert [o["sha256"] for o in combined.data["outputs"]] == list(_digests(folder, "*.parquet").values())
    assert len(single_entry.data["outputs"]) == len(combined.data["outputs"]) == 3
    assert [g["files"] for g in combined.data["details"]["groups"]] == [1, 1, 1]


def test_a_parquet_group_in_place_that_failed_half_way_is_finished_by_its_retry(
    tmp_path: Path, run: TaskRun, lake: Path, audit: AuditReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aisec.crypto import in_place_groups

    _split(lake, 3)
    keyring = tmp_path / "keyring.json"
    folder = lake / "customers"
    expected = _rows(folder, lake, keyring)
    plain = _digests(folder, "*.parquet")
    (group,) = _listing(run, "customers", per_task=3)
    real = in_place_groups.encrypt_parquet_file
    calls: list[int] = []

    def lost_on_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("worker lost")
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(in_place_groups, "encrypt_parquet_file", lost_on_the_second)
        with pytest.raises(OSError, match="worker lost"):
            _in_place(run, "customers", [group])
    first = sorted(folder.glob("*.parquet"))[0]
    assert hashlib.sha256(first.read_bytes()).hexdigest() != plain[first.name]  # the first file is done

    (result,) = _in_place(run, "customers", [group])  # the retry of the same mapped task
    _in_place_combine(run, "customers", [result])

    assert [f["reused"] for f in result["files"]] == [True, False, False]
    assert _rows(folder, lake, keyring) == expected  # decrypted once: not encrypted twice
    (entry,) = audit.entries("dataset.encrypt")
    assert [i["sha256"] for i in entry.data["inputs"]] == list(
        plain.values()
    )  # the plaintext, never the ciphertext
    assert [o["sha256"] for o in entry.data["outputs"]] == list(_digests(folder, "*.parquet").values())


def test_an_envelope_group_in_place_killed_before_a_delete_is_finished_by_its_retry(
    tmp_path: Path, run: TaskRun, lake: Path, audit: AuditReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aisec.crypto import in_place

    folder = lake / "support_tickets"
    plain = {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl"))}
    groups = _listing(run, "support_tickets", per_task=5)
    real = in_place.delete_file
    calls: list[int] = []

    def killed_at_the_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker killed between the envelope and the delete
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(in_place, "delete_file", killed_at_the_second)
        with pytest.raises(KeyboardInterrupt):
            _in_place(run, "support_tickets", groups[:1], key="pii-columns")
    results = _in_place(run, "support_tickets", groups, key="pii-columns")  # group 0 retried, then the others
    _in_place_combine(run, "support_tickets", results, key="pii-columns")

    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.aisec" for n in plain)
    assert [f["reused"] for f in results[0]["files"]][:2] == [
        True,
        True,
    ]  # the first replaced, the second written
    (entry,) = audit.entries("dataset.encrypt")
    assert [i["sha256"] for i in entry.data["inputs"]] == [
        hashlib.sha256(d).hexdigest() for d in plain.values()
    ]
    assert entry.data["details"]["plaintext_removed"] == [(folder / n).as_uri() for n in plain]
    DecryptDatasetOperator(
        task_id="decrypt", dataset="support_tickets", key="pii-columns", output_uri=str(tmp_path / "plain")
    ).execute(run.context("decrypt"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "plain").glob("*.jsonl")} == plain


def test_the_combine_refuses_a_file_changed_after_its_group_encrypted_it(
    run: TaskRun, lake: Path, audit: AuditReader
) -> None:
    import pyarrow.parquet as pq

    _split(lake, 3)
    results = _in_place(run, "customers", _groups(run))
    changed = lake / "customers" / "part-001.parquet"
    pq.write_table(pa.table({"customer_id": [1]}), changed)  # someone writes over an encrypted file

    with pytest.raises(FanOutError, match=r"part-001\.parquet is not the file its group wrote"):
        _in_place_combine(run, "customers", results)
    assert audit.entries("dataset.encrypt") == []


def test_a_group_in_place_refuses_a_file_changed_since_the_listing(run: TaskRun, lake: Path) -> None:
    import pyarrow.parquet as pq

    _split(lake, 2)
    group = _groups(run)[1]
    pq.write_table(pa.table({"customer_id": [1]}), lake / "customers" / "part-001.parquet")

    with pytest.raises(
        ConcurrentModificationError, match=r"part-001\.parquet changed since the files were listed"
    ):
        _in_place(run, "customers", [group])
    assert pq.read_table(lake / "customers" / "part-001.parquet").num_rows == 1  # left as it is


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
