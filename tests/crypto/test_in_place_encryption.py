"""In-place encryption: the envelope replaces its plaintext, a killed run is finished by a rerun, a plaintext
changed under the encryption is kept; Parquet files are replaced by their encrypted version; readers see
each row once. Local folders and a real S3 API (moto) on loopback."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import airflow_aisec.crypto.in_place as in_place
from airflow_aisec.audit import AuditLog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.datasets import DatasetReader, decrypt_files, describe, encrypt_files
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.exceptions import EmptyDatasetError, EncryptionError
from airflow_aisec.io import Location, S3Options, list_dataset_files
from airflow_aisec.io.storage import s3_client

KEY = "k1"
PLAIN = {
    "a/x.csv": b"id,email\n1,ann@example.com\n2,bob@example.com\n",
    "b.csv": b"id,email\n3,cy@example.com\n",
}


class Killed(BaseException):
    """The process dying at a chosen step (not an ``Exception``: nothing may catch and carry on)."""


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """A dataset folder with two CSV files, once local and once under an S3 prefix."""
    if request.param == "local":
        location = Location.parse(tmp_path / "lake")
    else:
        bucket: str = request.getfixturevalue("bucket")
        location = Location.parse(f"s3://{bucket}/lake", request.getfixturevalue("s3_options"))
    for name, data in PLAIN.items():
        write(location.join(name), data)
    return location


@pytest.fixture
def provider(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(LocalKeyring(tmp_path / "ring.json"))


def write(location: Location, data: bytes) -> None:
    if location.is_s3:
        location.s3_client().put_object(Bucket=location.bucket, Key=location.key, Body=data)
        return
    Path(location.path).parent.mkdir(parents=True, exist_ok=True)
    Path(location.path).write_bytes(data)


def read(location: Location) -> bytes:
    with location.filesystem().open_input_stream(location.path) as stream:
        return bytes(stream.read())


def names(root: Location) -> list[str]:
    """Every file below ``root`` (hidden ones included), relative."""
    if root.is_s3:
        listed = root.s3_client().list_objects_v2(Bucket=root.bucket, Prefix=f"{root.key}/")
        return sorted(o["Key"][len(root.key) + 1 :] for o in listed.get("Contents", []))
    return sorted(str(p.relative_to(root.path)) for p in Path(root.path).rglob("*") if p.is_file())


def decrypted(root: Location, provider: LocalKeyProvider, tmp_path: Path) -> dict[str, bytes]:
    out = tmp_path / f"plain-{uuid.uuid4().hex[:6]}"
    decrypt_files(root, Location.parse(out), provider)
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_in_place_encryption_leaves_only_the_envelopes(
    root: Location, provider: LocalKeyProvider, tmp_path: Path
) -> None:
    files = encrypt_files(root, root, "csv", provider, KEY)

    assert names(root) == ["a/x.csv.aisec", "b.csv.aisec"]
    assert decrypted(root, provider, tmp_path) == PLAIN
    fields = describe(files)
    assert fields["inputs"] == [{"uri": root.join(n).uri, "sha256": sha(d)} for n, d in sorted(PLAIN.items())]
    assert [o["uri"] for o in fields["outputs"]] == [root.join(f"{n}.aisec").uri for n in sorted(PLAIN)]
    assert [o["sha256"] for o in fields["outputs"]] == [
        sha(read(root.join(f"{n}.aisec"))) for n in sorted(PLAIN)
    ]
    assert fields["details"]["plaintext_removed"] == [root.join(n).uri for n in sorted(PLAIN)]


def test_a_run_killed_between_the_envelope_and_the_delete_is_finished_by_a_rerun(
    root: Location, provider: LocalKeyProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(location: Location, expected_etag: str | None = None) -> bool:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(in_place, "delete_file", killed)
        with pytest.raises(Killed):
            encrypt_files(root, root, "csv", provider, KEY)
    assert names(root) == ["a/x.csv", "a/x.csv.aisec", "b.csv"]  # the first envelope written, nothing deleted
    envelope = read(root.join("a/x.csv.aisec"))

    files = encrypt_files(root, root, "csv", provider, KEY)

    assert names(root) == ["a/x.csv.aisec", "b.csv.aisec"]
    assert read(root.join("a/x.csv.aisec")) == envelope  # recognised, not written twice
    assert [f.reused for f in files] == [True, False]
    assert describe(files)["details"]["envelopes_reused"] == [root.join("a/x.csv.aisec").uri]
    assert decrypted(root, provider, tmp_path) == PLAIN


def test_a_plaintext_changed_before_its_delete_is_kept_with_its_envelope(
    root: Location, provider: LocalKeyProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = b"id,email\n9,new@example.com\n10,newer@example.com\n"
    real = in_place.encrypt_file

    def then_changed(source: Location, *args: object, **kwargs: object) -> object:
        result = real(source, *args, **kwargs)  # type: ignore[arg-type]
        write(source, changed)  # another writer, after the encryption read it and before the delete
        return result

    monkeypatch.setattr(in_place, "encrypt_file", then_changed)
    with pytest.raises(
        EncryptionError, match=r"a/x\.csv changed after it was encrypted .* it was not deleted"
    ):
        encrypt_files(root, root, "csv", provider, KEY)

    assert names(root) == ["a/x.csv", "a/x.csv.aisec", "b.csv"]
    assert read(root.join("a/x.csv")) == changed
    assert decrypted(root, provider, tmp_path) == {"a/x.csv": PLAIN["a/x.csv"]}  # the version read


def test_an_envelope_of_another_version_is_replaced_not_taken_for_done(
    root: Location, provider: LocalKeyProvider, tmp_path: Path
) -> None:
    other = root.join("elsewhere")
    write(other.join("a/x.csv"), b"id,email\n0,old@example.com\n")
    encrypt_files(other, other, "csv", provider, KEY)
    write(root.join("a/x.csv.aisec"), read(other.join("a/x.csv.aisec")))  # a stale envelope of an older file

    files = encrypt_files(root, root, "csv", provider, KEY)

    assert [f.reused for f in files] == [False, False]
    assert [n for n in names(root) if not n.startswith("elsewhere")] == ["a/x.csv.aisec", "b.csv.aisec"]
    assert decrypted(root.join("a"), provider, tmp_path) == {"x.csv": PLAIN["a/x.csv"]}


def test_an_encryption_into_another_location_leaves_the_source_untouched(
    root: Location, provider: LocalKeyProvider, tmp_path: Path
) -> None:
    out = Location.parse(tmp_path / "sealed")

    files = encrypt_files(root, out, "csv", provider, KEY)

    assert names(root) == sorted(PLAIN) and all(read(root.join(n)) == d for n, d in PLAIN.items())
    assert names(out) == ["a/x.csv.aisec", "b.csv.aisec"]
    assert "plaintext_removed" not in describe(files)["details"]


def test_readers_count_each_row_once_whatever_a_killed_run_left(
    root: Location, provider: LocalKeyProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(location: Location, expected_etag: str | None = None) -> bool:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(in_place, "delete_file", killed)
        with pytest.raises(Killed):
            encrypt_files(root, root, "csv", provider, KEY)
    # Plaintext and envelope side by side: the dataset is its plaintext files, each read once.
    listed = list_dataset_files(root, "csv", dataset="tickets")
    reader = DatasetReader(provider)
    assert [f.uri for f in listed] == [root.join(n).uri for n in sorted(PLAIN)]
    assert sum(reader.shape(f, "csv")[0] for f in listed) == 3

    encrypt_files(root, root, "csv", provider, KEY)

    # Only envelopes: no plaintext file is listed, and an empty listing is refused, not read as no rows.
    with pytest.raises(EmptyDatasetError, match=r"dataset tickets: .* no \.csv"):
        list_dataset_files(root, "csv", dataset="tickets")


@pytest.mark.integration
@pytest.mark.parametrize("purge", [True, False])
def test_purge_versions_leaves_no_old_version_of_the_plaintext_in_a_versioned_bucket(
    purge: bool, s3_options: S3Options, provider: LocalKeyProvider
) -> None:
    bucket = f"aisec-test-{uuid.uuid4().hex[:16]}"
    client = s3_client(s3_options)
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    root = Location.parse(f"s3://{bucket}/lake", s3_options)
    write(root.join("b.csv"), PLAIN["b.csv"])

    (done,) = encrypt_files(root, root, "csv", provider, KEY, purge_versions=purge)

    listed = client.list_object_versions(Bucket=bucket, Prefix="lake/b.csv")
    plain = [v for v in listed.get("Versions", []) if v["Key"] == "lake/b.csv"]
    if purge:
        assert plain == [] and listed.get("DeleteMarkers", []) == [] and done.versions_purged == 2
    else:  # without the catalog's purge_versions the old version keeps the plaintext (documented)
        assert len(plain) == 1 and done.versions_purged == 0
        old = client.get_object(Bucket=bucket, Key="lake/b.csv", VersionId=plain[0]["VersionId"])
        assert old["Body"].read() == PLAIN["b.csv"]


def test_parquet_in_place_is_replaced_by_its_encrypted_version(
    provider: LocalKeyProvider, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    root.mkdir()
    table = pa.table({"id": [1, 2, 3], "email": ["a@x.org", "b@x.org", "c@x.org"]})
    pq.write_table(table, root / "part-0.parquet")
    location = Location.parse(root)

    (done,) = encrypt_files(location, location, "parquet", provider, KEY, columns=["email"])

    visible = sorted(p.name for p in root.iterdir() if not p.name.startswith((".", "_")))
    assert visible == ["part-0.parquet"] and done.target == done.source and not done.plaintext_removed
    assert done.target_sha256 == sha((root / "part-0.parquet").read_bytes()) != done.source_sha256
    with pytest.raises(OSError):
        pq.read_table(root / "part-0.parquet")  # the footer is encrypted: no plaintext copy is left
    (info,) = list_dataset_files(location, "parquet", dataset="d")
    assert pa.Table.from_batches(list(DatasetReader(provider)(info, "parquet"))).equals(table)


@pytest.fixture
def cli_root(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "b.csv").write_bytes(PLAIN["b.csv"])
    yield folder


def test_the_cli_encrypts_in_place_and_records_the_removal(cli_root: Path, tmp_path: Path) -> None:
    log, ring = f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "k.json")
    result = CliRunner().invoke(
        app,
        ["--log", log, "--keyring", ring, "encrypt", str(cli_root), str(cli_root), "--key", KEY, "--json"],
    )

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in cli_root.iterdir()) == ["b.csv.aisec"]
    assert json.loads(result.stdout)["files"][0]["plaintext_removed"] is True
    with AuditLog.open(log, keyring=ring) as audit:
        (entry,) = [e for e in audit.entries() if e.action == "dataset.encrypt"]
    assert entry.data["details"]["plaintext_removed"] == [(cli_root / "b.csv").as_uri()]
    assert entry.data["inputs"][0]["sha256"] == sha(PLAIN["b.csv"])
