"""Fan-out by file through the operators: listing, mapped groups, combine; a failed group commits nothing."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from task_runs import AuditReader, TaskRun

from airflow_aisec.audit import AuditLog
from airflow_aisec.audit.lineage import LineageGraph
from airflow_aisec.exceptions import FanOutError
from airflow_aisec.operators.fanout import ListFileGroupsOperator, MaskCombineOperator
from airflow_aisec.operators.pii import PIIMaskOperator

MASK = {"dataset": "support_tickets", "mode": "patterns"}


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jsonl"))}


def _groups(run: TaskRun) -> list[dict[str, Any]]:
    return ListFileGroupsOperator(
        task_id="mask_files", dataset="support_tickets", max_files_per_task=2
    ).execute(run.context("mask_files"))


def _mask_group(run: TaskRun, out: Path, group: dict[str, Any], try_number: int = 1) -> dict[str, Any]:
    task = PIIMaskOperator(task_id="mask_group", output_uri=str(out), files=group, **MASK)
    return task.execute(run.context("mask_group", map_index=group["group"], try_number=try_number))


def _combine(run: TaskRun, out: Path, results: list[dict[str, Any]]) -> MaskCombineOperator:
    task = MaskCombineOperator(task_id="mask", output_uri=str(out), results=results, **MASK)
    task.execute(run.context("mask"))
    return task


def test_groups_masked_apart_then_combined_equal_the_single_task_byte_for_byte(
    tmp_path: Path, run: TaskRun, audit: AuditReader
) -> None:
    single = PIIMaskOperator(task_id="single", output_uri=str(tmp_path / "single"), **MASK)
    expected = single.execute(run.context("single"))
    groups = _groups(run)
    assert len(groups) == 5 and sum(len(g["files"]) for g in groups) == 9
    out = tmp_path / "fanned"
    results = [_mask_group(run, out, g) for g in groups]
    assert _outputs(out) == {}  # staged, hidden from the dataset until the combine commits
    combine = _combine(run, out, list(reversed(results)))
    assert _outputs(out) == _outputs(tmp_path / "single")
    assert not (out / "_aisec-staging").exists()

    single_entry, combined = audit.entries("pii.mask")
    assert combined.data["actor"]["task_id"] == "mask"
    assert combined.data["rows"] == single_entry.data["rows"] == expected["rows"]
    assert [g["files"] for g in combined.data["details"]["groups"]] == [2, 2, 2, 2, 1]
    assert combined.data["details"]["masked_per_entity"] == single_entry.data["details"]["masked_per_entity"]
    assert [o["sha256"] for o in combined.data["outputs"]] == [
        o["sha256"] for o in single_entry.data["outputs"]
    ]
    assert {d.dataset for d in combine.lineage.outputs} == {"support_tickets_masked"}
    with AuditLog.open(audit.uri, create=False) as log:
        assert log.verify().ok
        graph = LineageGraph.from_entries([e for e in log.entries() if e.data["actor"]["task_id"] == "mask"])
    assert {pair: len(labels) for pair, labels in graph.edges.items()} == {
        ("support_tickets", "support_tickets_masked"): 1
    }  # one edge, of one step


def test_a_failed_group_commits_nothing_and_its_rerun_then_the_combine_succeed(
    tmp_path: Path, run: TaskRun, audit: AuditReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aisec.pii import pipeline

    groups = _groups(run)
    out = tmp_path / "fanned"
    real = pipeline.MaskResult.as_group

    def fail_in_group_two(result: Any, group: Any) -> Any:
        if group["group"] == 2:
            raise OSError("worker lost")
        return real(result, group)

    monkeypatch.setattr(pipeline.MaskResult, "as_group", fail_in_group_two)
    results = []
    for group in groups:
        with contextlib.suppress(OSError):
            results.append(_mask_group(run, out, group))
    monkeypatch.setattr(pipeline.MaskResult, "as_group", real)
    with pytest.raises(FanOutError, match=r"\[0, 1, 3, 4\] are not every group"):
        _combine(run, out, results)
    assert _outputs(out) == {} and audit.entries("pii.mask") == []

    results.append(_mask_group(run, out, groups[2], try_number=2))  # the rerun writes over its own part
    _combine(run, out, results)
    (entry,) = audit.entries("pii.mask")
    rows = b"".join(_outputs(out).values()).count(b"\n")
    assert entry.data["rows"] == rows and len(_outputs(out)) == 9  # no duplicate rows nor files
    _combine(run, out, results)  # a rerun of the combine: nothing promoted twice, nothing recorded twice
    assert len(audit.entries("pii.mask")) == 1


def test_a_group_of_files_is_not_masked_by_a_scan_of_it(tmp_path: Path, run: TaskRun) -> None:
    group = _groups(run)[0]
    task = PIIMaskOperator(
        task_id="mask_group", input_uri=str(tmp_path), output_uri=str(tmp_path / "out"), files=group
    )
    with pytest.raises(Exception, match="not by a scan of the group"):
        task.execute(run.context("mask_group", map_index=0))


def test_groups_on_s3_are_committed_as_the_single_task_writes_them_locally(
    tmp_path: Path,
    run: TaskRun,
    lake: Path,
    moto_endpoint: str,
    bucket: str,
    s3_options: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_aisec.io import Location, list_files
    from airflow_aisec.io.storage import s3_client

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    client = s3_client(s3_options)
    for path in sorted((lake / "support_tickets").glob("*.jsonl")):
        client.put_object(Bucket=bucket, Key=f"landing/{path.name}", Body=path.read_bytes())
    s3 = {"input_uri": f"s3://{bucket}/landing", "aws_conn_id": None}
    PIIMaskOperator(task_id="single", output_uri=str(tmp_path / "single"), **MASK).execute(
        run.context("single")
    )
    listing = ListFileGroupsOperator(task_id="files", dataset="support_tickets", max_files_per_task=4, **s3)
    groups = listing.execute(run.context("files"))
    out = f"s3://{bucket}/masked"
    results = [
        PIIMaskOperator(task_id="group", output_uri=out, files=g, **MASK, **s3).execute(
            run.context("group", map_index=g["group"])
        )
        for g in groups
    ]
    assert len(results) == 3 and list_files(Location.parse(out, s3_options), "jsonl") == []
    MaskCombineOperator(task_id="mask", output_uri=out, results=results, **MASK, **s3).execute(
        run.context("mask")
    )
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="masked/")["Contents"])
    assert keys == [f"masked/{name}" for name in _outputs(tmp_path / "single")]  # staging gone
    for name, data in _outputs(tmp_path / "single").items():
        assert client.get_object(Bucket=bucket, Key=f"masked/{name}")["Body"].read() == data


def test_an_encryption_in_place_on_s3_fans_out_and_leaves_only_the_envelopes(
    tmp_path: Path,
    run: TaskRun,
    lake: Path,
    audit: AuditReader,
    moto_endpoint: str,
    bucket: str,
    s3_options: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hashlib

    from airflow_aisec.io.storage import s3_client
    from airflow_aisec.operators.crypto import DecryptDatasetOperator, EncryptDatasetOperator
    from airflow_aisec.operators.fanout import EncryptCombineOperator

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    client = s3_client(s3_options)
    plain = {p.name: p.read_bytes() for p in sorted((lake / "support_tickets").glob("*.jsonl"))}
    for name, data in plain.items():
        client.put_object(Bucket=bucket, Key=f"tickets/{name}", Body=data)
    common = {"dataset": "support_tickets", "key": "pii-columns", "input_uri": f"s3://{bucket}/tickets",
              "aws_conn_id": None}  # fmt: skip
    listing = ListFileGroupsOperator(
        task_id="files", dataset="support_tickets", input_uri=common["input_uri"], max_files_per_task=4,
        output_uri=common["input_uri"], aws_conn_id=None,
    )  # fmt: skip
    groups = listing.execute(run.context("files"))
    results = [
        EncryptDatasetOperator(task_id="group", files=g, **common).execute(
            run.context("group", map_index=g["group"])
        )
        for g in groups
    ]
    EncryptCombineOperator(task_id="encrypt", results=results, **common).execute(run.context("encrypt"))

    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="tickets/")["Contents"])
    assert len(groups) == 3 and keys == [f"tickets/{name}.aisec" for name in plain]  # no plaintext, no ledger
    (entry,) = audit.entries("dataset.encrypt")
    assert [i["sha256"] for i in entry.data["inputs"]] == [
        hashlib.sha256(d).hexdigest() for d in plain.values()
    ]
    assert len(entry.data["details"]["plaintext_removed"]) == len(plain)
    DecryptDatasetOperator(task_id="decrypt", output_uri=str(tmp_path / "plain"), **common).execute(
        run.context("decrypt")
    )
    assert _outputs(tmp_path / "plain") == plain
