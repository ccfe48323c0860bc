"""A location without dataset files says why: missing, empty, hidden files only, or files of other kinds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io import Location, guess_format
from airflow_aisec.io.storage import S3Options, s3_client


def aisec(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "aisec"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_scan_of_a_missing_folder_says_so_and_does_not_suggest_a_format() -> None:
    result = aisec("scan", "/no/such/dir")

    assert result.returncode == 2
    assert result.stderr.strip() == "file:///no/such/dir: no such file or folder"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([], "the folder is empty"),
        (["_SUCCESS", ".part-0.parquet.tmp"], "the folder holds only hidden files"),
        (
            ["notes.txt", "export/people.xlsx"],
            "a folder with no parquet, jsonl or csv files (it holds .txt, .xlsx files)",
        ),
    ],
    ids=["empty", "hidden-only", "other-files"],
)
def test_scan_of_a_folder_without_dataset_files_says_what_it_holds(
    tmp_path: Path, files: list[str], expected: str
) -> None:
    folder = tmp_path / "lake"
    folder.mkdir()
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")

    result = aisec("scan", str(folder))

    assert result.returncode == 2
    assert result.stderr.startswith(f"file://{folder}: {expected}"), result.stderr
    assert "--format" not in result.stderr


def test_a_file_of_unknown_kind_is_named_as_a_file(tmp_path: Path) -> None:
    path = tmp_path / "people.txt"
    path.write_text("id\n1\n")

    with pytest.raises(DatasetIOError, match="cannot be told from its name"):
        guess_format(Location.parse(path))


@pytest.mark.integration
def test_s3_prefixes_without_dataset_files_say_why(s3_options: S3Options, bucket: str) -> None:
    client = s3_client(s3_options)
    client.put_object(Bucket=bucket, Key="raw/notes.txt", Body=b"x")
    client.put_object(Bucket=bucket, Key="marker/_SUCCESS", Body=b"")
    client.put_object(Bucket=bucket, Key="ok/part-0.csv", Body=b"id\n1\n")

    def why(prefix: str) -> str:
        with pytest.raises(DatasetIOError) as caught:
            guess_format(Location.parse(f"s3://{bucket}/{prefix}", s3_options))
        return str(caught.value)

    assert why("nothing") == f"s3://{bucket}/nothing: no object under this prefix"
    assert why("marker").endswith(
        "the prefix holds only hidden files (names starting with . or _ are not part of a dataset)"
    )
    assert "a prefix with no parquet, jsonl or csv files (it holds .txt files)" in why("raw")
    assert guess_format(Location.parse(f"s3://{bucket}/ok", s3_options)) == "csv"
