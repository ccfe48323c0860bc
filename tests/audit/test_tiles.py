"""The tree's tiles: stored as entries are appended, read for O(log n) proofs, checked by verify."""

from __future__ import annotations

import base64
import math
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_audit_tamper import tamper

from airflow_aisec.audit import AuditLog, Failure, MerkleTree, verify_inclusion
from airflow_aisec.audit.merkle import (
    TILE_WIDTH,
    MissingTilesError,
    TileBuilder,
    TiledTree,
    leaf_hash,
    perfect_root,
)


def _tiles_of(leaves: list[bytes]) -> dict[int, list[bytes]]:
    stored: dict[int, list[bytes]] = {0: leaves}
    builder = TileBuilder()
    for leaf in leaves:
        for level, index, node in builder.feed(leaf):
            assert index == len(stored.setdefault(level, []))
            stored[level].append(node)
    return stored


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 65_535, 65_536, 65_537, 70_001])
def test_a_tiled_tree_gives_the_roots_and_proofs_of_the_full_tree(size: int) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    full = MerkleTree.from_leaf_hashes(leaves)
    stored = _tiles_of(leaves)
    tiled = TiledTree(size, lambda level, start, end: stored.get(level, [])[start:end])
    rng = random.Random(size)
    assert tiled.root() == full.root()
    for index in {0, size - 1, *rng.sample(range(size), min(size, 25))}:
        assert tiled.inclusion_proof(index) == full.inclusion_proof(index)
    for old in {0, 1, size, *rng.sample(range(size + 1), min(size, 10))}:
        assert tiled.consistency_proof(old) == full.consistency_proof(old)
        assert tiled.root_at(old) == full.root_at(old)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 3 * TILE_WIDTH * 2), data=st.data())
def test_tiled_proofs_at_any_earlier_size_match(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    stored = _tiles_of(leaves)
    tiled = TiledTree(size, lambda level, start, end: stored.get(level, [])[start:end])
    full = MerkleTree.from_leaf_hashes(leaves)
    at = data.draw(st.integers(1, size))
    index = data.draw(st.integers(0, at - 1))
    assert tiled.inclusion_proof(index, at) == full.inclusion_proof(index, at)


def test_missing_tiles_are_an_error_not_a_wrong_proof() -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(300)]
    tiled = TiledTree(300, lambda level, start, end: leaves[start:end] if level == 0 else [])
    assert tiled.inclusion_proof(3) == MerkleTree.from_leaf_hashes(leaves).inclusion_proof(3)  # level 0 only
    with pytest.raises(MissingTilesError):
        tiled.root()  # needs the root of the first 256 leaves, a level-8 tile
    with pytest.raises(ValueError, match="power-of-two"):
        perfect_root(leaves[:3])


def _fill(log: AuditLog, count: int) -> None:
    done = 0
    while done < count:
        step = min(97, count - done)  # batches that straddle tile boundaries
        log.append_many(
            [{"action": "retention.delete", "dataset": "orders", "rows": done + i} for i in range(step)]
        )
        done += step


def test_tiles_are_stored_as_entries_are_appended(log_uri: str, keyring_path: Path) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        for i in range(10):
            log.append("retention.delete", dataset="orders", rows=i)  # one at a time, then in batches
        _fill(log, 3 * TILE_WIDTH + 5 - 10)
        size = log.size()
        leaves = [e.leaf_hash for e in log.entries()]
        assert log.store.tiles(8, 0, 100) == _tiles_of(leaves)[8] and len(log.store.tiles(8, 0, 100)) == 3
        log.checkpoint()
        full = MerkleTree.from_leaf_hashes(leaves)
        for index in (0, 255, 256, size - 1):
            proof = log.prove(index)
            assert [bytes.fromhex(h) for h in proof["proof"]] == full.inclusion_proof(index, size)
            body = base64.b64decode(proof["entry"])
            assert verify_inclusion(
                body, index, size, [bytes.fromhex(h) for h in proof["proof"]], full.root()
            )


def test_a_proof_reads_log_n_tiles_not_every_entry(tmp_path: Path, keyring_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    with AuditLog.open(uri, keyring=str(keyring_path), checkpoint_every=0) as log:
        log.append_many([{"action": "retention.delete", "rows": i} for i in range(70_000)])
        log.checkpoint()
        reads: list[tuple[int, int, int]] = []
        original = log.store.tiles

        def counted(level: int, start: int, end: int) -> list[bytes]:
            reads.append((level, start, end))
            return original(level, start, end)

        log.store.tiles = counted  # type: ignore[method-assign]
        log.prove(12_345)
    assert len(reads) <= 2 * math.ceil(math.log2(70_000)), reads
    assert sum(end - start for _, start, end in reads) <= 20 * TILE_WIDTH


def test_a_log_written_before_tiles_gets_them_when_opened_for_writing(
    tmp_path: Path, keyring_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    with AuditLog.open(uri, keyring=str(keyring_path)) as log:
        _fill(log, 600)
    conn = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    conn.execute("DROP TABLE aisec_tiles")  # what a log of an earlier release looks like
    conn.close()
    with AuditLog.open(uri, keyring=str(keyring_path), create=False) as log:  # read-only: reads every entry
        assert log.store.tiles(8, 0, 10) == []
        assert log.prove(400)["size"] == 600
    with AuditLog.open(uri, keyring=str(keyring_path)) as log:
        leaves = [e.leaf_hash for e in log.entries()]
        assert log.store.tiles(8, 0, 10) == _tiles_of(leaves)[8]
        assert log.verify().ok


def test_an_altered_tile_is_found_by_verify_and_cannot_make_a_false_proof(
    log_uri: str, keyring_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        _fill(log, 2 * TILE_WIDTH + 10)
        log.checkpoint()
        root = log.latest_checkpoint()[0].root  # type: ignore[index]
    tamper(
        log_uri, lambda a: a.run("UPDATE aisec_tiles SET hash = ? WHERE level = 8 AND idx = 1", b"\x07" * 32)
    )
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        report = log.verify()
        assert report.exit_code == Failure.MODIFIED
        assert "entries 256-511 differs" in str(report.findings[0]) or "tiles table was altered" in str(
            report.findings[0]
        ), report.findings
        proof = log.prove(3)  # its path passes through the altered tile
        body = base64.b64decode(proof["entry"])
        assert not verify_inclusion(body, 3, proof["size"], [bytes.fromhex(h) for h in proof["proof"]], root)
