"""Fan-out by file, the core: grouping a dataset's files, and promoting staged files into place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airflow_aisec.exceptions import ConcurrentModificationError, FanOutError
from airflow_aisec.io import FileInfo, Location, S3Options, list_files
from airflow_aisec.io.groups import check_complete, group_files, group_members, plan_groups, staging_root
from airflow_aisec.io.promote import StagedFile, promote_all, remove_staging

_WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _files(*sizes: int) -> list[FileInfo]:
    return [
        FileInfo(Location("file", f"/lake/d/part-{i:03}.jsonl"), size, f"e{i}", _WHEN)
        for i, size in enumerate(sizes)
    ]


def _names(groups: list[list[FileInfo]]) -> list[list[str]]:
    return [[f.location.name[5:8] for f in group] for group in groups]


def test_a_small_dataset_is_one_group() -> None:
    assert _names(group_files(_files(10, 20, 30))) == [["000", "001", "002"]]


def test_groups_close_at_the_file_and_byte_limits_in_path_order() -> None:
    files = _files(10, 10, 10, 10, 10)
    assert _names(group_files(files, max_files_per_task=2)) == [["000", "001"], ["002", "003"], ["004"]]
    assert _names(group_files(files, target_bytes_per_task=25)) == [["000", "001"], ["002", "003"], ["004"]]
    # A file larger than the target is a group of its own, never split nor dropped.
    assert _names(group_files(_files(5, 100, 5), target_bytes_per_task=20)) == [["000"], ["001"], ["002"]]


def test_more_groups_than_allowed_are_spread_over_max_groups_by_bytes() -> None:
    files = _files(*([1] * 100))
    groups = group_files(files, max_files_per_task=1, max_groups=4)
    assert [len(g) for g in groups] == [25, 25, 25, 25]
    assert [f for g in groups for f in g] == files  # every file once, order kept
    skewed = group_files(_files(90, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), max_files_per_task=1, max_groups=2)
    assert _names(skewed)[0] == ["000"] and len(skewed) == 2


def test_bad_limits_are_refused() -> None:
    with pytest.raises(FanOutError, match="max_groups must be at least 1"):
        group_files(_files(1), max_groups=0)


def test_the_plan_is_stable_and_carries_no_data(tmp_path: Path) -> None:
    tmp_path = tmp_path / "data"
    tmp_path.mkdir()
    for i in range(5):
        (tmp_path / f"part-{i}.jsonl").write_text(f'{{"email": "x{i}@example.com"}}\n')
    files = list_files(Location.parse(tmp_path), "jsonl")
    plan = plan_groups(files, Location.parse(tmp_path), "jsonl", run="dag/run-1/list", max_files_per_task=2)
    again = plan_groups(files, Location.parse(tmp_path), "jsonl", run="dag/run-1/list", max_files_per_task=2)
    other_run = plan_groups(
        files, Location.parse(tmp_path), "jsonl", run="dag/run-2/list", max_files_per_task=2
    )
    assert plan == again and [g["group"] for g in plan] == [0, 1, 2] and {g["groups"] for g in plan} == {3}
    assert other_run[0]["staging"] != plan[0]["staging"] and other_run[0]["listing"] == plan[0]["listing"]
    assert "example.com" not in repr(plan)
    assert [f.uri for f in group_members(plan[1])] == [f.uri for f in files[2:4]]
    (tmp_path / "part-2.jsonl").write_text('{"email": "changed@example.com"}\n')
    with pytest.raises(
        ConcurrentModificationError, match=r"part-2\.jsonl changed since the files were listed"
    ):
        group_members(plan[1])


def _result(
    group: int, listing: str = "a", staging: str = "run1", uri: str | None = None
) -> dict[str, object]:
    files = [{"target": uri or f"/out/d/part-{group}.jsonl"}]
    return {"group": group, "groups": 3, "listing": listing, "staging": staging, "files": files}


def test_combine_needs_every_group_of_one_listing_once() -> None:
    results = [_result(i) for i in range(3)]
    assert [r["group"] for r in check_complete(list(reversed(results)))] == [0, 1, 2]
    with pytest.raises(FanOutError, match=r"\[0, 2\] are not every group"):
        check_complete([results[0], results[2]])
    with pytest.raises(FanOutError, match="2 listings"):
        check_complete([*results[:2], _result(2, listing="b")])


def test_combine_refuses_groups_of_another_run_or_a_file_written_by_two_groups() -> None:
    # Another run over the same input has the same listing digest, but its own staging folder.
    with pytest.raises(FanOutError, match="more than one run"):
        check_complete([_result(0), _result(1), _result(2, staging="run2")])
    with pytest.raises(FanOutError, match="more than once"):
        check_complete([_result(0), _result(1), _result(2, uri="/out/d/part-1.jsonl")])


def test_staged_files_are_promoted_once_all_verify_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    import hashlib

    target = Location.parse(tmp_path / "out")
    stage = staging_root(target, {"staging": "abc123"})
    staged = []
    for name in ("a.jsonl", "b.jsonl"):
        path = Path(stage.join(name).path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}\n")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        staged.append(StagedFile(stage.join(name), target.join(name), digest))
    tampered = [staged[0], StagedFile(staged[1].staged, staged[1].target, "0" * 64)]
    with pytest.raises(FanOutError, match=r"b\.jsonl is not the file its group wrote"):
        promote_all(tampered, "jsonl")
    assert not (tmp_path / "out" / "a.jsonl").exists()  # nothing promoted before every file checked
    assert promote_all(staged, "jsonl") == 2
    assert promote_all(staged, "jsonl") == 0  # already in place: idempotent
    remove_staging(stage)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jsonl", "b.jsonl"]


def test_files_staged_on_s3_are_promoted_verified_and_the_staging_removed(
    s3_options: S3Options, bucket: str
) -> None:
    import pyarrow as pa

    from airflow_aisec.io import atomic_write, read_file
    from airflow_aisec.io.storage import s3_client

    target = Location.parse(f"s3://{bucket}/masked", s3_options)
    stage = staging_root(target, {"staging": "run1"})
    table = pa.table({"email": ["<EMAIL_ADDRESS>", "<EMAIL_ADDRESS>"]})
    staged = []
    for name in ("a.jsonl", "sub/b.jsonl"):
        with atomic_write(stage.join(name), "jsonl", table.schema, overwrite=True) as writer:
            writer.write(table)
        staged.append(StagedFile(stage.join(name), target.join(name), writer.result.sha256))
    assert list_files(target, "jsonl") == []  # staged objects are not part of the dataset
    assert promote_all(staged, "jsonl") == 2
    assert [f.location.relative_to(target) for f in list_files(target, "jsonl")] == ["a.jsonl", "sub/b.jsonl"]
    assert sum(b.num_rows for b in read_file(target.join("sub/b.jsonl"), "jsonl")) == 2
    assert promote_all(staged, "jsonl") == 0
    remove_staging(stage)
    listed = s3_client(s3_options).list_objects_v2(Bucket=bucket, Prefix="masked/_aisec-staging/")
    assert listed.get("KeyCount", 0) == 0
