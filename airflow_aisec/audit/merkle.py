"""Merkle hash trees of RFC 6962 / RFC 9162 §2.1: roots, inclusion proofs and consistency proofs.

Leaves are hashed as SHA-256(0x00 ‖ entry) and interior nodes as SHA-256(0x01 ‖ left ‖ right), so a leaf
can never be passed off as an interior node. A tree of ``n`` leaves splits at the largest power of two
smaller than ``n``; equivalently its root folds, right to left, the roots of the perfect subtrees given by
the binary digits of ``n`` (largest first). Every computation here uses that second form, which needs no
recursion and lets whole perfect subtrees be cached once and reused.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
"""Length in bytes of every hash: leaf hashes, node hashes, roots and proof elements."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the tree with no leaves: SHA-256 of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """The hash of the leaf holding ``data`` (the entry bytes): SHA-256(0x00 ‖ data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node with children ``left`` and ``right``: SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root over perfect-subtree roots listed left to right, largest first."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        root = node_hash(hashes[i], root)
    return root


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_proof(proof: object) -> bool:
    # A lone bytes object is a Sequence too, but of ints, never of hashes.
    if not isinstance(proof, Sequence) or isinstance(proof, bytes | bytearray | str):
        return False
    return all(_is_hash(p) for p in proof)


def _check_hash(value: bytes) -> bytes:
    if not _is_hash(value):
        raise ValueError(f"a hash must be {HASH_SIZE} bytes")
    return bytes(value)


class _Tree(abc.ABC):
    """Roots and proofs over perfect-subtree roots, wherever those are kept."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The number of leaves."""

    @abc.abstractmethod
    def _perfect_root(self, level: int, index: int) -> bytes:
        """The root of leaves ``[index·2^level, (index+1)·2^level)``, a complete perfect subtree."""

    def root(self) -> bytes:
        """The root of the whole tree."""
        return self.root_at(self.size)

    def root_at(self, size: int) -> bytes:
        """The root of the tree made of the first ``size`` leaves."""
        return _fold(self._perfect_roots(0, self._check_size(size)))

    def compact_range(self, size: int | None = None) -> CompactRange:
        """The compact range of the first ``size`` leaves (all of them by default)."""
        size = self._check_size(size)
        return CompactRange.from_list(size, self._perfect_roots(0, size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path (RFC 6962 PATH) of leaf ``index`` in the tree of the first ``size`` leaves.

        Hashes are ordered from the leaf's sibling up to the child of the root, as RFC 9162 verifies them.
        """
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
        siblings: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            mid = lo + _split(hi - lo)
            if index < mid:
                siblings.append(self._subtree_root(mid, hi))
                hi = mid
            else:
                siblings.append(self._subtree_root(lo, mid))
                lo = mid
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The proof (RFC 6962 PROOF) that the tree of ``old_size`` leaves is a prefix of ``new_size``.

        Empty when ``old_size`` is 0 or equal to ``new_size``: nothing needs proving then.
        """
        new_size = self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size} must be between 0 and the new size {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        lo, hi, m = 0, new_size, old_size
        old_is_whole_subtree = True
        # Walk SUBPROOF(m, D[lo:hi], b) down to the subtree that is exactly the old tree's last part.
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._subtree_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._subtree_root(lo, lo + k))
                lo, m, old_is_whole_subtree = lo + k, m - k, False
        if not old_is_whole_subtree:
            proof.append(self._subtree_root(lo, hi))
        proof.reverse()
        return proof

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside a tree of {self.size} leaves")
        return size

    def _perfect_roots(self, start: int, end: int) -> list[bytes]:
        """Roots of the aligned perfect subtrees that tile leaves ``[start, end)``, left to right.

        The RFC tree's subtrees start at a multiple of the power of two covering their length, so for them
        the tiles come largest first and fold to exactly the RFC's root; the alignment check keeps the
        tiling valid for any other range too.
        """
        roots: list[bytes] = []
        while start < end:
            k = (end - start).bit_length() - 1
            if start:
                k = min(k, (start & -start).bit_length() - 1)
            roots.append(self._perfect_root(k, start >> k))
            start += 1 << k
        return roots

    def _subtree_root(self, start: int, end: int) -> bytes:
        return _fold(self._perfect_roots(start, end))


class MerkleTree(_Tree):
    """An append-only RFC 6962 Merkle tree that keeps every perfect subtree root for fast proofs.

    ``_levels[k][i]`` is the root of leaves ``[i·2^k, (i+1)·2^k)``; level 0 holds the leaf hashes. Those
    roots never change once complete, so the root and proofs at any earlier size are read from the same
    cache in O(log² n) hashing, and appending costs amortised O(1) hashes.
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """A tree over ``leaves``, the entry bytes (not hashes), in log order."""
        sha, prefix = _sha256, _LEAF_PREFIX
        return cls._build([sha(prefix + data).digest() for data in leaves])

    @classmethod
    def from_leaf_hashes(cls, hashes: Iterable[bytes]) -> MerkleTree:
        """A tree over already computed leaf hashes (see :func:`leaf_hash`), in log order."""
        return cls._build([_check_hash(h) for h in hashes])

    @classmethod
    def _build(cls, level: list[bytes]) -> MerkleTree:
        tree = cls()
        tree._levels = [level]
        sha, prefix = _sha256, _NODE_PREFIX
        while len(level) >= 2:
            # zip over one iterator pairs neighbours; an odd last hash waits for a later append.
            pairs = iter(level)
            level = [sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
            tree._levels.append(level)
        return tree

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    def _perfect_root(self, level: int, index: int) -> bytes:
        return self._levels[level][index]

    def append(self, data: bytes) -> int:
        """Append a leaf holding the entry bytes ``data``; return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, hash_: bytes) -> int:
        """Append a leaf by its leaf hash; return its index."""
        levels = self._levels
        levels[0].append(_check_hash(hash_))
        k = 0
        while len(levels[k]) % 2 == 0:
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].append(node_hash(levels[k][-2], levels[k][-1]))
            k += 1
        return self.size - 1

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf index {index} is outside a tree of {self.size} leaves")
        return self._levels[0][index]


TILE_HEIGHT = 8
"""Levels per tile: a log stores the roots of its perfect subtrees of 2^8, 2^16, 2^24... leaves only."""

TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes per full tile: the nodes of one stored level that make one node of the next stored level."""

# (level, start, end) -> the stored hashes of that level for nodes [start, end); level 0 is the leaf hashes.
TileReader = Callable[[int, int, int], Sequence[bytes]]


class MissingTilesError(LookupError):
    """A tiled tree lacks stored hashes that a computation needs (a log written before tiles existed)."""


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root over ``hashes`` of one level, whose count is a power of two (RFC 6962 perfect subtree)."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a perfect subtree has a power-of-two number of nodes, not {len(level)}")
    sha, prefix = _sha256, _NODE_PREFIX
    while len(level) > 1:
        pairs = iter(level)
        level = [sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=True)]
    return level[0]


class TiledTree(_Tree):
    """Roots and proofs of a tree of ``size`` leaves read from stored tiles, as Trillian's tlog tiles do.

    Only the roots of perfect subtrees of 2^(8·j) leaves are stored (level 0 being the leaf hashes), so any
    perfect subtree root is at most 128 stored hashes folded; an inclusion or consistency proof costs
    O(log n) range reads however long the log, instead of every leaf.
    """

    __slots__ = ("_cache", "_read", "_size")

    def __init__(self, size: int, read: TileReader) -> None:
        if not _is_count(size):
            raise ValueError(f"size must be a non-negative integer, not {size!r}")
        self._size = size
        self._read = read
        self._cache: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def _perfect_root(self, level: int, index: int) -> bytes:
        found = self._cache.get((level, index))
        if found is None:
            stored = level - level % TILE_HEIGHT
            width = 1 << (level - stored)
            hashes = self._read(stored, index * width, (index + 1) * width)
            if len(hashes) != width:
                raise MissingTilesError(
                    f"the log stores {len(hashes)} of the {width} hashes of level {stored} needed"
                )
            found = self._cache[(level, index)] = perfect_root(hashes)
        return found


class TileBuilder:
    """Computes, from leaf hashes fed in order, the stored-level hashes a tiled log keeps.

    ``feed`` returns the ``(level, index, hash)`` of every stored node the leaf completes; memory stays at
    one partial tile per level.
    """

    __slots__ = ("_counts", "_pending")

    def __init__(self) -> None:
        self._pending: list[list[bytes]] = []  # per stored level: the hashes of its unfinished tile
        self._counts: list[int] = []  # per stored level above: how many nodes it completed

    def feed(self, hash_: bytes) -> list[tuple[int, int, bytes]]:
        """Add the next leaf hash; the stored nodes it completes, lowest level first."""
        done: list[tuple[int, int, bytes]] = []
        node, depth = hash_, 0
        counts = self._counts
        while True:
            if depth == len(self._pending):
                self._pending.append([])
                counts.append(0)
            row = self._pending[depth]
            row.append(node)
            if len(row) < TILE_WIDTH:
                return done
            node = perfect_root(row)
            row.clear()
            done.append(((depth + 1) * TILE_HEIGHT, counts[depth], node))
            counts[depth] += 1
            depth += 1


class CompactRange:
    """The O(log n) perfect-subtree roots of a tree's leaves: enough to append and compute the root.

    An appender persists this instead of every leaf hash. The roots are kept left to right, largest first;
    their sizes are the binary digits of :attr:`size`.
    """

    __slots__ = ("_roots", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._roots: list[bytes] = []

    @classmethod
    def from_list(cls, size: int, hashes: Sequence[bytes | str]) -> CompactRange:
        """Rebuild a range of ``size`` leaves from :meth:`to_list` output (hex strings or raw bytes)."""
        if not _is_count(size):
            raise ValueError(f"size must be a non-negative integer, not {size!r}")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a range of {size} leaves has {size.bit_count()} roots, not {len(hashes)}")
        compact = cls()
        compact._size = size
        compact._roots = [_check_hash(bytes.fromhex(h) if isinstance(h, str) else h) for h in hashes]
        return compact

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The perfect-subtree roots, left to right."""
        return tuple(self._roots)

    def to_list(self) -> list[str]:
        """The perfect-subtree roots as hex strings; store them with :attr:`size`."""
        return [h.hex() for h in self._roots]

    def append(self, data: bytes) -> int:
        """Append a leaf holding the entry bytes ``data``; return its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, hash_: bytes) -> int:
        """Append a leaf by its leaf hash; return its index."""
        node = _check_hash(hash_)
        index = self._size
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf now completes.
        carry = index
        while carry & 1:
            node = node_hash(self._roots.pop(), node)
            carry >>= 1
        self._roots.append(node)
        self._size += 1
        return index

    def root(self) -> bytes:
        """The root of the tree of all leaves appended so far."""
        return _fold(self._roots)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._roots == other._roots

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows the entry bytes ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    Never raises: a malformed proof or out-of-range argument is simply not a proof.
    """
    if not isinstance(leaf, bytes | bytearray):
        return False
    return verify_inclusion_hash(leaf_hash(bytes(leaf)), index, size, proof, root)


def verify_inclusion_hash(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Like :func:`verify_inclusion`, for a leaf given by its leaf hash (RFC 9162 §2.1.3.2)."""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    if not (_is_count(index) and _is_count(size) and index < size):
        return False
    fn, sn = index, size - 1
    node = bytes(leaf_hash)
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            # A right edge: climb past the levels where this node has no right sibling.
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(node, bytes(root))


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of the new tree.

    Follows RFC 9162 §2.1.4.2. Equal sizes need equal roots and an empty proof; an old size of 0 needs the
    empty-tree root and an empty proof. Never raises on malformed input.
    """
    if not (_is_count(old_size) and _is_count(new_size) and old_size <= new_size):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof)):
        return False
    old_root, new_root = bytes(old_root), bytes(new_root)
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    roots = _consistency_roots(old_size, new_size, old_root, [bytes(p) for p in proof])
    if roots is None:
        return False
    return hmac.compare_digest(roots[0], old_root) and hmac.compare_digest(roots[1], new_root)


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: list[bytes]
) -> tuple[bytes, bytes] | None:
    """The (old, new) roots that ``proof`` implies, or None when its shape does not fit the sizes."""
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so the proof omits its root.
        proof = [old_root, *proof]
    if not proof:
        return None
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_node = new_node = proof[0]
    for sibling in proof[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            old_node = node_hash(sibling, old_node)
            new_node = node_hash(sibling, new_node)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_node = node_hash(new_node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return (old_node, new_node) if sn == 0 else None
