"""Benchmark of the audit-log Merkle tree: roots, proofs and verification over a million entries.

Run with ``python benchmarks/bench_merkle.py``; ``--leaves`` and ``--baseline-leaves`` change the sizes.
The baseline is the plain recursive RFC 6962 definition, timed on fewer leaves because it is slow.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from airflow_aisec.audit.merkle import (
    CompactRange,
    MerkleTree,
    verify_consistency,
    verify_inclusion_hash,
)

T = TypeVar("T")
ENTRY_SIZE = 200


def make_entries(count: int) -> list[bytes]:
    """``count`` distinct, JSON-like audit entries of exactly ``ENTRY_SIZE`` bytes."""
    entries = []
    for i in range(count):
        head = f'{{"seq":{i},"dag":"pii_masking","task":"mask_customers","run":"scheduled__{i:012d}",'
        entries.append(head.encode().ljust(ENTRY_SIZE - 1, b"x") + b"}")
    return entries


def naive_root(entries: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 6962 §2.1 defines it, recursion and list slicing included."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(entries[:k]) + naive_root(entries[k:])).digest()


def naive_path(m: int, entries: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) exactly as RFC 6962 §2.1.1 defines it: every sibling recomputed from its leaves."""
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*naive_path(m, entries[:k]), naive_root(entries[k:])]
    return [*naive_path(m - k, entries[k:]), naive_root(entries[:k])]


def timed(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once, print and return its result's wall-clock time."""
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"  {label:<44} {elapsed:9.3f} s")
    return result, elapsed


def bench_roots(entries: list[bytes]) -> MerkleTree:
    """Time the root of all entries, by full tree and by compact range, and check they agree."""
    n = len(entries)
    print(f"root of {n:,} entries of {ENTRY_SIZE} bytes")
    tree, build = timed("MerkleTree.from_leaves (hash + all levels)", lambda: MerkleTree.from_leaves(entries))
    root, _ = timed("MerkleTree.root()", tree.root)

    def compact_root() -> bytes:
        compact = CompactRange()
        for entry in entries:
            compact.append(entry)
        return compact.root()

    compact, stream = timed("CompactRange.append x n, then root()", compact_root)
    assert compact == root, "compact range and tree disagree"
    print(f"  -> tree build {n / build:,.0f} entries/s; compact range {n / stream:,.0f} entries/s")
    print(f"  -> root {root.hex()}")
    return tree


def bench_proofs(tree: MerkleTree, count: int, rng: random.Random) -> None:
    """Time generation and verification of random inclusion and consistency proofs."""
    n = tree.size
    root = tree.root()
    indexes = [rng.randrange(n) for _ in range(count)]
    olds = [rng.randrange(1, n) for _ in range(count)]
    print(f"{count:,} random inclusion and consistency proofs in the {n:,}-leaf tree")
    inclusion, t_inc = timed("inclusion_proof", lambda: [tree.inclusion_proof(i) for i in indexes])
    leaf_hashes = [tree.leaf_hash_at(i) for i in indexes]
    ok, t_vinc = timed(
        "verify_inclusion_hash",
        lambda: all(
            verify_inclusion_hash(h, i, n, p, root)
            for h, i, p in zip(leaf_hashes, indexes, inclusion, strict=True)
        ),
    )
    assert ok, "an inclusion proof failed to verify"
    consistency, t_con = timed("consistency_proof", lambda: [tree.consistency_proof(m) for m in olds])
    old_roots = [tree.root_at(m) for m in olds]
    ok, t_vcon = timed(
        "verify_consistency",
        lambda: all(
            verify_consistency(m, n, r, root, p) for m, r, p in zip(olds, old_roots, consistency, strict=True)
        ),
    )
    assert ok, "a consistency proof failed to verify"
    for name, proofs, gen, ver in (
        ("inclusion", inclusion, t_inc, t_vinc),
        ("consistency", consistency, t_con, t_vcon),
    ):
        sizes = [len(p) for p in proofs]
        print(
            f"  -> {name}: {count / gen:,.0f} proofs/s generated, {count / ver:,.0f} proofs/s verified; "
            f"size mean {statistics.fmean(sizes):.1f}, max {max(sizes)} hashes ({max(sizes) * 32} bytes)"
        )


def bench_baseline(entries: list[bytes], proofs: int) -> None:
    """Compare the tree with the naive recursive definition on the same entries."""
    n = len(entries)
    print(f"baseline: naive recursive RFC 6962 MTH on {n:,} entries")
    naive, t_naive = timed("naive recursive MTH", lambda: naive_root(entries))
    tree, t_tree = timed("MerkleTree.from_leaves + root()", lambda: MerkleTree.from_leaves(entries).root())
    assert naive == tree, "the tree and the naive definition disagree"
    print(
        f"  -> naive {n / t_naive:,.0f} entries/s, tree {n / t_tree:,.0f} entries/s: {t_naive / t_tree:.1f}x"
    )
    indexes = random.Random(9162).sample(range(n), min(proofs, n))
    merkle = MerkleTree.from_leaves(entries)
    slow, t_slow = timed(f"naive PATH x {len(indexes)}", lambda: [naive_path(i, entries) for i in indexes])
    fast, t_fast = timed(
        f"inclusion_proof x {len(indexes)}", lambda: [merkle.inclusion_proof(i) for i in indexes]
    )
    assert slow == fast, "the tree and the naive definition disagree on audit paths"
    print(
        f"  -> per proof: naive {t_slow / len(indexes) * 1e3:.1f} ms, "
        f"tree {t_fast / len(indexes) * 1e6:.0f} µs: {t_slow / t_fast:,.0f}x"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--baseline-leaves", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    parser.add_argument("--baseline-proofs", type=int, default=20)
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}")
    entries, _ = timed(f"generate {args.leaves:,} entries", lambda: make_entries(args.leaves))
    tree = bench_roots(entries)
    bench_proofs(tree, args.proofs, random.Random(6962))
    bench_baseline(entries[: args.baseline_leaves], args.baseline_proofs)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
