"""Abandoned fan-out staging: the listing removes other runs' staging past the grace, nothing else."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
from task_runs import TaskRun

from airflow_aisec.io import Location
from airflow_aisec.io.abandoned import remove_abandoned_staging
from airflow_aisec.operators.fanout import ListFileGroupsOperator

DAY = 86_400


def _stage(out: Path, token: str, age_seconds: float) -> Path:
    """A staging folder of ``token`` holding one file, all of it ``age_seconds`` old."""
    folder = out / "_aisec-staging" / token / "sub"
    folder.mkdir(parents=True)
    (folder / "part-000.jsonl").write_text("{}\n")
    when = time.time() - age_seconds
    for path in (folder / "part-000.jsonl", folder, folder.parent):
        os.utime(path, (when, when))
    return folder.parent


def test_the_listing_removes_only_other_runs_staging_older_than_the_grace(
    tmp_path: Path, run: TaskRun, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "masked"
    old = _stage(out, "abandoned0old", 2 * DAY)
    recent = _stage(out, "stillrunning1", 60)
    (out / "part-000.jsonl").write_text("{}\n")  # the output itself
    (out / "_aisec-staging" / "not-a-token").mkdir()  # no staging name: not ours to judge
    listing = ListFileGroupsOperator(
        task_id="mask_files", dataset="support_tickets", output_uri=str(out), max_files_per_task=2
    )
    groups = listing.execute(run.context("mask_files"))
    own = _stage(out, groups[0]["staging"], 3 * DAY)  # this run's own staging, however old
    assert not old.exists() and recent.exists() and (out / "part-000.jsonl").exists()
    assert (out / "_aisec-staging" / "not-a-token").exists()
    logged = capsys.readouterr().out  # the task log: the folder's name, nothing of its files
    assert "removed abandoned staging abandoned0old" in logged and "part-000" not in logged

    listing.execute(run.context("mask_files"))  # the same run listed again keeps its own staging
    assert own.exists() and recent.exists()
    ListFileGroupsOperator(
        task_id="mask_files", dataset="support_tickets", output_uri=str(out), staging_grace=None
    ).execute(TaskRun().context("mask_files"))
    assert own.exists()  # no grace: nothing removed


def test_abandoned_staging_on_s3_is_removed_past_the_grace_and_nothing_outside_it(
    moto_endpoint: str, bucket: str, s3_options: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_aisec.io.storage import s3_client

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    client = s3_client(s3_options)
    keys = [
        "out/_aisec-staging/abandoned0/part-000.aisec",
        "out/_aisec-staging/abandoned0/sub/part-001.aisec",
        "out/_aisec-staging/current0/part-000.aisec",
        "out/part-000.aisec",
        "other/_aisec-staging/abandoned0/part-000.aisec",
    ]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    target = Location.parse(f"s3://{bucket}/out", s3_options)
    assert remove_abandoned_staging(target, "current0") == []  # all of it within the grace
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert remove_abandoned_staging(target, "current0", now=later) == ["abandoned0"]
    left = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert left == sorted(k for k in keys if not k.startswith("out/_aisec-staging/abandoned0/"))
