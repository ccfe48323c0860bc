"""The audit log's derived tables, kept under the appenders' lock as entries are appended.

- ``aisec_tiles``: the roots of the Merkle tree's perfect subtrees of 2^8, 2^16, 2^24... entries, so an
  inclusion or consistency proof costs O(log n) reads (``TiledTree``).
- ``aisec_terms``: the (kind, value, index) search terms of every entry (``entry_terms``), so a filtered
  page is found by keyset pagination on the index.

Both are rebuilt from the entries when missing (a log written before they existed gets them the first
time it is opened for writing) and neither is trusted: ``verify`` recomputes the tiles, and a page's
entries are checked against the query from their own bytes. A term kind added later (``ADDED_KINDS``: the
``lineage`` terms) is indexed for the older entries the same way, and ``aisec_meta`` then records
``terms.<kind>``: until it does, nothing reads that kind and ``verify --index`` does not compare it.
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec.audit.entry import ADDED_KINDS, entry_terms
from airflow_aisec.audit.merkle import TILE_HEIGHT, TILE_WIDTH, perfect_root

ENTRY_COLUMNS = "idx, body, leaf_hash, idempotency_key"
_KIND_META = "terms."  # the settings key saying a kind of ADDED_KINDS is indexed for every entry


@dataclass(frozen=True)
class StoredEntry:
    """One row of the entries table, as stored (nothing here is trusted by ``verify``)."""

    index: int
    body: bytes
    leaf_hash: bytes
    idempotency_key: str | None = None


class DerivedTables(abc.ABC):
    """Tiles and search terms over a SQL connection; the store provides cursors and placeholders."""

    _has_tiles = True

    @abc.abstractmethod
    def _cursor(self) -> contextlib.AbstractContextManager[Any]:
        """A read-only cursor."""

    def _small_cursor(self) -> contextlib.AbstractContextManager[Any]:
        """A read-only cursor for a bounded result (a tile range, a page): no server-side cursor needed."""
        return self._cursor()

    @abc.abstractmethod
    def _sql(self, text: str) -> str:
        """``text`` with the driver's placeholders."""

    @staticmethod
    def _size(cur: Any) -> int:
        cur.execute("SELECT MAX(idx) FROM aisec_entries")
        row = cur.fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def _fill_derived(self, cur: Any) -> None:
        """Add the tiles and search terms that a log written before they existed lacks (under the lock)."""
        size = self._size(cur)
        cur.execute("SELECT MAX(idx) FROM aisec_terms")
        row = cur.fetchone()
        done = 0 if row is None or row[0] is None else int(row[0]) + 1
        for start in range(done, size, 10_000):
            query = "SELECT idx, body FROM aisec_entries WHERE idx >= ? AND idx < ?"
            cur.execute(self._sql(query), (start, start + 10_000))
            self._add_terms(cur, [(int(index), bytes(body)) for index, body in cur.fetchall()])
        for kind in ADDED_KINDS:
            self._fill_kind(cur, kind, size)
        self._fill_tiles(cur, size)

    def _fill_kind(self, cur: Any, kind: str, size: int) -> None:
        """Index ``kind`` for the entries written before it existed, then record that every entry has it."""
        cur.execute(self._sql("SELECT value FROM aisec_meta WHERE key = ?"), (_KIND_META + kind,))
        if cur.fetchone() is not None:
            return
        for start in range(0, size, 10_000):
            query = "SELECT idx, body FROM aisec_entries WHERE idx >= ? AND idx < ?"
            cur.execute(self._sql(query), (start, start + 10_000))
            self._add_terms(cur, [(int(index), bytes(body)) for index, body in cur.fetchall()], kind)
        cur.execute(
            self._sql("INSERT INTO aisec_meta (key, value) VALUES (?, ?)"), (_KIND_META + kind, "all")
        )

    def indexes(self, kind: str) -> bool:
        """Whether the terms hold ``kind`` for every entry (a kind of ``ADDED_KINDS`` only once a writer
        indexed the entries written before it existed)."""
        if kind not in ADDED_KINDS:
            return True
        with self._small_cursor() as cur:
            cur.execute(self._sql("SELECT value FROM aisec_meta WHERE key = ?"), (_KIND_META + kind,))
            return cur.fetchone() is not None

    def values(self, kind: str) -> list[str]:
        """Every distinct value of ``kind`` in the terms, sorted: one index seek per value (a loose index
        scan), not a read of every term."""
        query = (
            "WITH RECURSIVE v(value) AS (SELECT MIN(value) FROM aisec_terms WHERE kind = ? UNION ALL "
            "SELECT (SELECT MIN(t.value) FROM aisec_terms t WHERE t.kind = ? AND t.value > v.value) "
            "FROM v WHERE v.value IS NOT NULL) SELECT value FROM v WHERE value IS NOT NULL"
        )
        with self._small_cursor() as cur:
            cur.execute(self._sql(query), (kind, kind))
            return [str(row[0]) for row in cur.fetchall()]

    def newest_by_term(
        self, terms: Sequence[tuple[str, str]], limit: int, cap: int
    ) -> list[tuple[int, list[StoredEntry]]]:
        """For each of ``terms``: how many entries carry it (counted up to ``cap``) and the newest ``limit``
        of them, newest first; three queries per hundred terms, not one per term."""
        found: list[tuple[int, list[StoredEntry]]] = []
        for start in range(0, len(terms), 100):
            batch = terms[start : start + 100]
            with self._small_cursor() as cur:
                counted = self._term_counts(cur, batch, cap)
                rows = self._term_newest(cur, batch, limit) if limit else []
                bodies = self._at(cur, sorted({i for _, i in rows}))
            mine: dict[int, list[int]] = defaultdict(list)
            for n, index in rows:
                if index in bodies:
                    mine[n].append(index)
            for n in range(len(batch)):
                found.append((counted.get(n, 0), [bodies[i] for i in sorted(mine[n], reverse=True)]))
        return found

    def _term_counts(self, cur: Any, batch: Sequence[tuple[str, str]], cap: int) -> dict[int, int]:
        """Position in ``batch`` → entries carrying that term, up to ``cap``."""
        query = " UNION ALL ".join(
            f"SELECT {n}, COUNT(*) FROM (SELECT 1 FROM aisec_terms WHERE kind = ? AND value = ? LIMIT ?) "  # nosec B608 # constant names, bound values
            f"AS c{n}"
            for n in range(len(batch))
        )
        cur.execute(self._sql(query), [part for term in batch for part in (*term, cap)])
        return {int(n): int(c) for n, c in cur.fetchall()}

    def _term_newest(self, cur: Any, batch: Sequence[tuple[str, str]], limit: int) -> list[tuple[int, int]]:
        """(position in ``batch``, index) of the newest ``limit`` entries carrying each term."""
        query = " UNION ALL ".join(
            f"SELECT {n}, idx FROM (SELECT idx FROM aisec_terms WHERE kind = ? AND value = ? "  # nosec B608 # constant names, bound values
            f"ORDER BY idx DESC LIMIT ?) AS n{n}"
            for n in range(len(batch))
        )
        cur.execute(self._sql(query), [part for term in batch for part in (*term, limit)])
        return [(int(n), int(i)) for n, i in cur.fetchall()]

    def _at(self, cur: Any, indices: Sequence[int]) -> dict[int, StoredEntry]:
        if not indices:
            return {}
        marks = ", ".join("?" * len(indices))
        cur.execute(self._sql(f"SELECT {ENTRY_COLUMNS} FROM aisec_entries WHERE idx IN ({marks})"), indices)  # nosec B608 # constant names, bound values
        return {int(r[0]): StoredEntry(int(r[0]), bytes(r[1]), bytes(r[2]), r[3]) for r in cur.fetchall()}

    def _add_terms(self, cur: Any, entries: Sequence[tuple[int, bytes]], only: str | None = None) -> None:
        """Index the search terms of ``entries`` (index, body): all of them, or those of kind ``only``."""
        rows: list[tuple[str, str, int]] = []
        for index, body in entries:
            try:
                data = json.loads(body)
            except ValueError:
                continue  # not an entry: verify names it; it is found by no filter
            terms = entry_terms(data)
            rows.extend((kind, value, index) for kind, value in terms if only is None or kind == only)
        if rows:
            # A conflict only happens when someone removed entries and left their terms: the stale terms stay
            # (``verify --index`` names them) and pages re-check every entry against its own bytes.
            insert = "INSERT INTO aisec_terms (kind, value, idx) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
            cur.executemany(self._sql(insert), rows)

    def terms(self, start: int, end: int) -> dict[int, set[tuple[str, str]]]:
        """The stored search terms of entries ``[start, end)`` by index (entries without any are absent)."""
        found: dict[int, set[tuple[str, str]]] = {}
        query = "SELECT idx, kind, value FROM aisec_terms WHERE idx >= ? AND idx < ?"
        with self._cursor() as cur:
            cur.execute(self._sql(query), (start, end))
            while rows := cur.fetchmany(10_000):
                for index, kind, value in rows:
                    found.setdefault(int(index), set()).add((str(kind), str(value)))
        return found

    def search(
        self, filters: Sequence[Sequence[tuple[str, str]]], lo: int, hi: int, limit: int
    ) -> list[StoredEntry]:
        if any(not accepted for accepted in filters):
            return []
        if not filters:
            query = (
                f"SELECT {ENTRY_COLUMNS} FROM aisec_entries WHERE idx >= ? AND idx < ? "  # nosec B608 # constant names, bound values
                "ORDER BY idx DESC LIMIT ?"
            )
            with self._small_cursor() as cur:
                cur.execute(self._sql(query), (lo, hi, limit))
                return [StoredEntry(int(r[0]), bytes(r[1]), bytes(r[2]), r[3]) for r in cur.fetchall()]
        with self._small_cursor() as cur:
            # Drive the scan by the filter that matches fewest entries, newest first; check the others per
            # entry through the terms' index on idx.
            ordered = list(filters)
            if len(filters) > 1:
                ordered.sort(key=lambda accepted: self._matches(cur, accepted, lo, hi))
            driver, params = _any_term("d", ordered[0])
            checks, check_params = "", []
            for accepted in ordered[1:]:
                inner, more = _any_term("t", accepted)
                checks += f" AND EXISTS (SELECT 1 FROM aisec_terms t WHERE t.idx = d.idx AND ({inner}))"  # nosec B608 # constant names, bound values
                check_params += more
            cur.execute(
                self._sql(
                    f"SELECT DISTINCT d.idx FROM aisec_terms d WHERE ({driver}) AND d.idx >= ? AND d.idx < ?"  # nosec B608 # constant names, bound values
                    f"{checks} ORDER BY d.idx DESC LIMIT ?"
                ),
                [*params, lo, hi, *check_params, limit],
            )
            indices = [int(r[0]) for r in cur.fetchall()]
        if not indices:
            return []
        marks = ", ".join("?" * len(indices))
        with self._small_cursor() as cur:
            cur.execute(
                self._sql(
                    f"SELECT {ENTRY_COLUMNS} FROM aisec_entries WHERE idx IN ({marks}) ORDER BY idx DESC"  # nosec B608 # constant names, bound values
                ),
                indices,
            )
            return [StoredEntry(int(r[0]), bytes(r[1]), bytes(r[2]), r[3]) for r in cur.fetchall()]

    def _matches(
        self, cur: Any, accepted: Sequence[tuple[str, str]], lo: int, hi: int, cap: int = 5000
    ) -> int:
        """How many entries in ``[lo, hi)`` carry one of the terms, counted up to ``cap``."""
        where, params = _any_term("d", accepted)
        cur.execute(
            self._sql(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM aisec_terms d WHERE ({where}) "  # nosec B608 # constant names, bound values
                "AND d.idx >= ? AND d.idx < ? LIMIT ?) AS capped"
            ),
            [*params, lo, hi, cap],
        )
        return int(cur.fetchone()[0])

    def _fill_tiles(self, cur: Any, size: int) -> None:
        """Store every tile node that the first ``size`` entries complete and the table lacks yet.

        Called under the appenders' lock after each append that crosses a tile boundary, and when a log
        is opened for writing (so a log written before tiles existed gets them once). A gap in the entries
        (a damaged log) stops the filling there; ``verify`` reports the gap.
        """
        level = TILE_HEIGHT
        while size >> level:
            cur.execute(self._sql("SELECT MAX(idx) FROM aisec_tiles WHERE level = ?"), (level,))
            row = cur.fetchone()
            have = 0 if row is None or row[0] is None else int(row[0]) + 1
            for index in range(have, size >> level):
                below = self._read_level(
                    cur, level - TILE_HEIGHT, index * TILE_WIDTH, (index + 1) * TILE_WIDTH
                )
                if len(below) != TILE_WIDTH:
                    return
                cur.execute(
                    self._sql("INSERT INTO aisec_tiles (level, idx, hash) VALUES (?, ?, ?)"),
                    (level, index, perfect_root(below)),
                )
            level += TILE_HEIGHT

    def _read_level(self, cur: Any, level: int, start: int, end: int) -> list[bytes]:
        if level == 0:
            query, params = "SELECT leaf_hash FROM aisec_entries WHERE idx >= ? AND idx < ?", [start, end]
        else:
            query = "SELECT hash FROM aisec_tiles WHERE level = ? AND idx >= ? AND idx < ?"
            params = [level, start, end]
        cur.execute(self._sql(query + " ORDER BY idx"), params)
        return [bytes(row[0]) for row in cur.fetchall()]

    def tiles(self, level: int, start: int, end: int) -> list[bytes]:
        if level and not self._has_tiles:
            return []
        with self._small_cursor() as cur:
            return self._read_level(cur, level, start, end)


def _any_term(alias: str, accepted: Sequence[tuple[str, str]]) -> tuple[str, list[str]]:
    """SQL true when row ``alias`` of aisec_terms is one of ``accepted``, and its parameters."""
    where = " OR ".join(f"({alias}.kind = ? AND {alias}.value = ?)" for _ in accepted)
    return where, [part for term in accepted for part in term]
