"""A file group is task input from XCom: only files its dataset's listing could give are ever touched."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.crypto.in_place_groups import InPlaceGroup, Ledger, encrypt_group_in_place
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.parquet import is_encrypted_parquet
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.exceptions import FanOutError
from airflow_aisec.io import Location, stat_file
from airflow_aisec.io.groups import group_members, member_location, staging_root


def _group(*paths: Path) -> dict[str, object]:
    files = []
    for path in paths:
        info = stat_file(Location.parse(path))
        assert info is not None
        files.append({"uri": info.uri, "size": info.size, "etag": info.etag})
    return {"group": 0, "groups": 1, "listing": "L", "staging": "abc", "files": files}


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    (tmp_path / "lake" / "year=2026").mkdir(parents=True)
    pq.write_table(pa.table({"id": [1]}), tmp_path / "lake" / "year=2026" / "a.parquet")
    (tmp_path / "other").mkdir()
    pq.write_table(pa.table({"email": ["x@example.com"]}), tmp_path / "other" / "v.parquet")
    (tmp_path / "lake" / "notes.txt").write_text("not a dataset file")
    (tmp_path / "lake" / "_aisec-staging").mkdir()
    pq.write_table(pa.table({"id": [2]}), tmp_path / "lake" / "_aisec-staging" / "b.parquet")
    return tmp_path


def test_a_file_of_the_dataset_is_a_member(lake: Path) -> None:
    root = Location.parse(lake / "lake")
    members = group_members(_group(lake / "lake" / "year=2026" / "a.parquet"), root=root, fmt="parquet")
    assert [m.location.name for m in members] == ["a.parquet"]


@pytest.mark.parametrize(
    "path",
    [
        "other/v.parquet",  # outside the dataset
        "lake/../other/v.parquet",  # outside, spelled from inside
        "lake/notes.txt",  # not of the dataset's format
        "lake/_aisec-staging/b.parquet",  # hidden: staging
    ],
)
def test_a_file_its_listing_would_not_give_is_refused(lake: Path, path: str) -> None:
    root = Location.parse(lake / "lake")
    with pytest.raises(FanOutError, match="that its listing would give"):
        member_location({"uri": str(lake / path)}, root, "parquet")


def test_an_in_place_group_naming_a_file_outside_its_dataset_changes_nothing(lake: Path) -> None:
    outside = lake / "other" / "v.parquet"
    before = outside.read_bytes()
    source = Location.parse(lake / "lake")
    group = _group(outside)
    provider = LocalKeyProvider(LocalKeyring(lake / "ring.json"))
    job = InPlaceGroup(source, "parquet", provider, "k1", Ledger(staging_root(source, group)))
    with pytest.raises(FanOutError):
        encrypt_group_in_place(job, group)
    assert outside.read_bytes() == before
    assert not is_encrypted_parquet(Location.parse(outside).filesystem(), str(outside))
    assert sorted(p.name for p in (lake / "other").iterdir()) == ["v.parquet"]  # no key material beside it
