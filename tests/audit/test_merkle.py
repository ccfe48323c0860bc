"""The Merkle tree matches RFC 6962 / RFC 9162: reference vectors, a naive reference, and proof checks."""

from __future__ import annotations

import hashlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_hash,
)

# The certificate-transparency reference leaves and the roots of their first 1..8 leaves.
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# Hypothesis must not write a database into the shared working tree.
PROPERTY = settings(max_examples=150, deadline=None, database=None)


# --- an independent reference: RFC 6962 §2.1 written as literally as possible -----------------------------


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = ref_split(n)
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = ref_split(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], complete: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if complete else [ref_mth(entries)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], complete), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    return ref_subproof(m, entries, True)


def flip(h: bytes, byte: int = 0) -> bytes:
    return h[:byte] + bytes([h[byte] ^ 0x01]) + h[byte + 1 :]


def max_inclusion_len(size: int) -> int:
    return math.ceil(math.log2(size)) if size > 1 else 0


# --- reference vectors ----------------------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    assert EMPTY_ROOT.hex() == EMPTY_ROOT_HEX
    assert MerkleTree().root().hex() == EMPTY_ROOT_HEX
    assert MerkleTree.from_leaves([]).root() == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_the_rfc6962_reference_vectors(size: int) -> None:
    assert MerkleTree.from_leaves(LEAVES[:size]).root().hex() == ROOTS[size]
    assert MerkleTree.from_leaves(LEAVES).root_at(size).hex() == ROOTS[size]
    assert ref_mth(LEAVES[:size]).hex() == ROOTS[size]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert leaf_hash(left + right) != node_hash(left, right)


def test_known_proofs_match_the_certificate_transparency_vectors() -> None:
    tree = MerkleTree.from_leaves(LEAVES)
    assert [h.hex() for h in tree.inclusion_proof(5)] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ROOTS[4],
    ]
    assert [h.hex() for h in tree.inclusion_proof(2, 3)] == [ROOTS[2]]
    assert [h.hex() for h in tree.consistency_proof(6, 8)] == [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ROOTS[4],
    ]
    assert [h.hex() for h in tree.consistency_proof(2, 5)] == [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]


def test_every_inclusion_proof_of_the_vectors_verifies_and_is_at_most_log2_long() -> None:
    tree = MerkleTree.from_leaves(LEAVES)
    for size in range(1, 9):
        root = bytes.fromhex(ROOTS[size])
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == ref_path(index, LEAVES[:size])
            assert len(proof) <= max_inclusion_len(size)
            assert verify_inclusion(LEAVES[index], index, size, proof, root)
            assert verify_inclusion_hash(leaf_hash(LEAVES[index]), index, size, proof, root)


def test_every_consistency_proof_of_the_vectors_verifies() -> None:
    tree = MerkleTree.from_leaves(LEAVES)
    for new in range(1, 9):
        for old in range(1, new + 1):
            proof = tree.consistency_proof(old, new)
            assert proof == (ref_proof(old, LEAVES[:new]) if old < new else [])
            # RFC 6962 consistency proofs may need one hash more than an audit path, e.g. PROOF(3, D[7]).
            assert len(proof) <= max_inclusion_len(new) + 1
            old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
            assert verify_consistency(old, new, old_root, new_root, proof)


def test_a_tampered_inclusion_proof_hash_leaf_index_or_root_fails() -> None:
    tree = MerkleTree.from_leaves(LEAVES)
    for size in range(1, 9):
        root = bytes.fromhex(ROOTS[size])
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            for i in range(len(proof)):
                bad = [*proof[:i], flip(proof[i], i), *proof[i + 1 :]]
                assert not verify_inclusion(LEAVES[index], index, size, bad, root)
            assert not verify_inclusion(LEAVES[index] + b"x", index, size, proof, root)
            for other in range(size):
                if other != index:
                    assert not verify_inclusion(LEAVES[index], other, size, proof, root)
            assert not verify_inclusion(LEAVES[index], index, size, proof, flip(root))
            for wrong_size in range(1, 9):
                if wrong_size != size:
                    assert not verify_inclusion(
                        LEAVES[index], index, size, proof, bytes.fromhex(ROOTS[wrong_size])
                    )


def test_a_tampered_consistency_proof_or_wrong_root_fails() -> None:
    tree = MerkleTree.from_leaves(LEAVES)
    for new in range(2, 9):
        for old in range(1, new):
            proof = tree.consistency_proof(old, new)
            old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
            for i in range(len(proof)):
                bad = [*proof[:i], flip(proof[i], 31), *proof[i + 1 :]]
                assert not verify_consistency(old, new, old_root, new_root, bad)
            assert not verify_consistency(old, new, flip(old_root), new_root, proof)
            assert not verify_consistency(old, new, old_root, flip(new_root), proof)
            assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
            assert not verify_consistency(old, new, old_root, new_root, [*proof, proof[-1]])


# --- edge cases and malformed input -----------------------------------------------------------------------


def test_consistency_with_equal_sizes_or_from_the_empty_tree_needs_no_proof() -> None:
    root = bytes.fromhex(ROOTS[5])
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, flip(root), [])
    assert not verify_consistency(5, 5, root, root, [root])
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root, [root])
    assert not verify_consistency(0, 5, root, root, [])
    tree = MerkleTree.from_leaves(LEAVES)
    assert tree.consistency_proof(0) == []
    assert tree.consistency_proof(8) == []


@pytest.mark.parametrize(
    ("index", "size", "proof", "root"),
    [
        (0, 0, [], EMPTY_ROOT),
        (3, 3, [], bytes(32)),
        (-1, 3, [bytes(32)], bytes(32)),
        (0, -1, [], bytes(32)),
        (0, 2, [b"short"], bytes(32)),
        (0, 2, bytes(32), bytes(32)),
        (0, 2, [bytes(32)], b"short"),
        (0, 2, ["00" * 32], bytes(32)),
        (0, 2, None, bytes(32)),
        ("0", 2, [bytes(32)], bytes(32)),
        (0, 2.0, [bytes(32)], bytes(32)),
        (0, 2, [bytes(32)] * 70, bytes(32)),
    ],
)
def test_malformed_inclusion_arguments_return_false_instead_of_raising(
    index: object, size: object, proof: object, root: object
) -> None:
    assert not verify_inclusion(b"leaf", index, size, proof, root)  # type: ignore[arg-type]
    assert not verify_inclusion_hash(bytes(32), index, size, proof, root)  # type: ignore[arg-type]


def test_malformed_consistency_arguments_return_false_instead_of_raising() -> None:
    r = bytes(32)
    assert not verify_consistency(5, 4, r, r, [r])
    assert not verify_consistency(-1, 4, r, r, [r])
    assert not verify_consistency(2, 4, r, r, [])
    assert not verify_consistency(2, 4, r, r, [b"x"])
    assert not verify_consistency(2, 4, b"x", r, [r])
    assert not verify_consistency(2, 4, r, r, None)  # type: ignore[arg-type]
    assert not verify_consistency(3, 4, r, r, [r] * 70)
    assert not verify_consistency(1.0, 4, r, r, [r])  # type: ignore[arg-type]
    assert not verify_inclusion("text", 0, 1, [], r)  # type: ignore[arg-type]


def test_proof_requests_outside_the_tree_raise_value_error() -> None:
    tree = MerkleTree.from_leaves(LEAVES[:5])
    for bad in (
        lambda: tree.inclusion_proof(5),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.inclusion_proof(0, 6),
        lambda: tree.inclusion_proof(0, 0),
        lambda: tree.consistency_proof(3, 2),
        lambda: tree.consistency_proof(1, 6),
        lambda: tree.root_at(6),
        lambda: tree.root_at(-1),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(IndexError):
        tree.leaf_hash_at(5)
    with pytest.raises(ValueError):
        MerkleTree.from_leaf_hashes([b"not a hash"])
    with pytest.raises(ValueError):
        tree.append_hash(b"short")


def test_appending_grows_the_tree_and_keeps_earlier_roots() -> None:
    tree = MerkleTree()
    for i, entry in enumerate(LEAVES):
        assert tree.append(entry) == i
        assert tree.size == len(tree) == i + 1
        assert tree.root().hex() == ROOTS[i + 1]
    for size in range(1, 9):
        assert tree.root_at(size).hex() == ROOTS[size]
    assert tree.leaf_hash_at(3) == leaf_hash(LEAVES[3])
    assert MerkleTree.from_leaf_hashes([leaf_hash(e) for e in LEAVES]).root() == tree.root()


# --- compact ranges ---------------------------------------------------------------------------------------


def test_compact_range_matches_the_reference_vectors_after_every_append() -> None:
    compact = CompactRange()
    for i, entry in enumerate(LEAVES):
        assert compact.append(entry) == i
        assert compact.size == i + 1
        assert len(compact.hashes) == compact.size.bit_count()
        assert compact.root().hex() == ROOTS[i + 1]


def test_compact_range_round_trips_through_hex_and_bytes_lists() -> None:
    tree = MerkleTree.from_leaves(LEAVES[:7])
    compact = tree.compact_range()
    assert CompactRange.from_list(7, compact.to_list()) == compact
    assert CompactRange.from_list(7, list(compact.hashes)) == compact
    restored = CompactRange.from_list(compact.size, compact.to_list())
    restored.append(LEAVES[7])
    assert restored.root().hex() == ROOTS[8]
    assert tree.compact_range(3).root().hex() == ROOTS[3]


def test_compact_range_rejects_inconsistent_serialisations() -> None:
    with pytest.raises(ValueError):
        CompactRange.from_list(7, ["00" * 32])
    with pytest.raises(ValueError):
        CompactRange.from_list(1, ["00" * 31])
    with pytest.raises(ValueError):
        CompactRange.from_list(-1, [])
    with pytest.raises(ValueError):
        CompactRange().append_hash(b"short")


# --- properties against the reference ---------------------------------------------------------------------

entries = st.lists(st.binary(max_size=12), max_size=70)
nonempty_entries = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@PROPERTY
@given(entries)
def test_roots_at_every_size_match_the_reference(leaves: list[bytes]) -> None:
    tree = MerkleTree.from_leaves(leaves)
    compact = CompactRange()
    grown = MerkleTree()
    assert tree.root() == ref_mth(leaves)
    for size in range(1, len(leaves) + 1):
        compact.append(leaves[size - 1])
        grown.append(leaves[size - 1])
        expected = ref_mth(leaves[:size])
        assert tree.root_at(size) == expected
        assert compact.root() == expected
        assert grown.root() == expected
    assert tree.compact_range() == compact


@PROPERTY
@given(nonempty_entries, st.data())
def test_inclusion_proofs_match_the_reference_and_verify(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_leaves(leaves)
    size = data.draw(st.integers(1, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = tree.inclusion_proof(index, size)
    assert proof == ref_path(index, leaves[:size])
    assert len(proof) <= max_inclusion_len(size)
    assert verify_inclusion(leaves[index], index, size, proof, ref_mth(leaves[:size]))


@PROPERTY
@given(nonempty_entries, st.data())
def test_consistency_proofs_match_the_reference_and_verify(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.from_leaves(leaves)
    new = data.draw(st.integers(1, len(leaves)), label="new")
    old = data.draw(st.integers(1, new), label="old")
    proof = tree.consistency_proof(old, new)
    assert proof == (ref_proof(old, leaves[:new]) if old < new else [])
    assert verify_consistency(old, new, ref_mth(leaves[:old]), ref_mth(leaves[:new]), proof)


hashes = st.binary(min_size=32, max_size=32)


@PROPERTY
@given(nonempty_entries, st.data(), st.lists(hashes, max_size=8))
def test_random_inclusion_proofs_never_verify(
    leaves: list[bytes], data: st.DataObject, forged: list[bytes]
) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    tree = MerkleTree.from_leaves(leaves)
    real = tree.inclusion_proof(index)
    if forged != real:
        assert not verify_inclusion(leaves[index], index, size, forged, tree.root())
    if real:
        i = data.draw(st.integers(0, len(real) - 1), label="tampered")
        byte = data.draw(st.integers(0, 31), label="byte")
        tampered = [*real[:i], flip(real[i], byte), *real[i + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, tampered, tree.root())


@PROPERTY
@given(st.lists(st.binary(max_size=12), min_size=2, max_size=70), st.data(), st.lists(hashes, max_size=8))
def test_random_consistency_proofs_never_verify(
    leaves: list[bytes], data: st.DataObject, forged: list[bytes]
) -> None:
    new = len(leaves)
    old = data.draw(st.integers(1, new - 1), label="old")
    tree = MerkleTree.from_leaves(leaves)
    old_root, new_root = tree.root_at(old), tree.root()
    real = tree.consistency_proof(old)
    if forged != real:
        assert not verify_consistency(old, new, old_root, new_root, forged)
    i = data.draw(st.integers(0, len(real) - 1), label="tampered")
    tampered = [*real[:i], flip(real[i], data.draw(st.integers(0, 31), label="byte")), *real[i + 1 :]]
    assert not verify_consistency(old, new, old_root, new_root, tampered)
