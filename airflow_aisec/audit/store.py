"""Where audit entries and checkpoints are stored: SQLite (embedded default) or PostgreSQL.

Both keep append-only tables of entries, signed checkpoints and settings, plus the tree's tiles: the roots
of its perfect subtrees of 2^8, 2^16... entries, stored as entries are appended so that a proof costs
O(log n) reads. Tiles are derived data: a proof built from altered tiles does not verify against the signed
root, and ``verify`` recomputes them. Triggers reject UPDATE and DELETE (and TRUNCATE on PostgreSQL); the
Merkle tree and signed checkpoints catch an attacker who drops the triggers first. Appenders serialise on
one lock (SQLite's write lock, a PostgreSQL advisory lock) so indices stay contiguous across processes.
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_aisec.audit.derived import ENTRY_COLUMNS, DerivedTables, StoredEntry
from airflow_aisec.audit.merkle import TILE_HEIGHT
from airflow_aisec.audit.schema import PG_DERIVED_SCHEMA, PG_SCHEMA, SQLITE_SCHEMA
from airflow_aisec.exceptions import AuditLogError

_PG_LOCK_ID = 0x41495345  # "AISE": one advisory lock shared by every appender of a database


@dataclass(frozen=True)
class StoredCheckpoint:
    """One signed checkpoint row."""

    id: int
    size: int
    root: bytes
    note: str
    compact_range: str
    created: str


# A function given (index, previous leaf hash or None) that returns the entry bytes and its leaf hash.
EntryBuilder = Callable[[int, bytes | None], tuple[bytes, bytes]]


class Store(abc.ABC):
    """One audit log database."""

    uri: str

    @abc.abstractmethod
    def append(self, items: Sequence[tuple[str | None, EntryBuilder]]) -> list[int]:
        """Append entries atomically under the appenders' lock; existing idempotency keys are not repeated."""

    @abc.abstractmethod
    def entries(self, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]:
        """Rows ordered by index, from ``start`` (inclusive) to ``end`` (exclusive)."""

    @abc.abstractmethod
    def entry(self, index: int) -> StoredEntry | None:
        """One row by index."""

    @abc.abstractmethod
    def size(self) -> int:
        """One more than the highest stored index (0 when empty)."""

    @abc.abstractmethod
    def keyed(self, prefix: str) -> list[tuple[str, int]]:
        """(idempotency key, index) of the entries whose key starts with ``prefix``, by index."""

    @abc.abstractmethod
    def tiles(self, level: int, start: int, end: int) -> list[bytes]:
        """The stored tree hashes of ``level`` (a multiple of ``TILE_HEIGHT``; 0 is the leaf hashes) for nodes
        ``[start, end)``, in order; fewer when some are not stored (a log written before tiles existed)."""

    @abc.abstractmethod
    def terms(self, start: int, end: int) -> dict[int, set[tuple[str, str]]]:
        """The stored search terms of entries ``[start, end)`` by index."""

    @abc.abstractmethod
    def indexes(self, kind: str) -> bool:
        """Whether the search terms hold ``kind`` for every entry (``ADDED_KINDS``: once a writer indexed
        the entries written before the kind existed)."""

    @abc.abstractmethod
    def values(self, kind: str) -> list[str]:
        """Every distinct stored value of the search terms of ``kind``, sorted."""

    @abc.abstractmethod
    def newest_by_term(
        self, terms: Sequence[tuple[str, str]], limit: int, cap: int
    ) -> list[tuple[int, list[StoredEntry]]]:
        """For each (kind, value) term of ``terms``: how many entries carry it, counted up to ``cap``, and the
        newest ``limit`` of them (by the terms table), newest first."""

    @abc.abstractmethod
    def search(
        self, filters: Sequence[Sequence[tuple[str, str]]], lo: int, hi: int, limit: int
    ) -> list[StoredEntry]:
        """Entries with an index in ``[lo, hi)`` that carry, for every filter, at least one of its (kind,
        value) search terms (``entry_terms``), newest first, at most ``limit``."""

    @abc.abstractmethod
    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint row, oldest first."""

    @abc.abstractmethod
    def add_checkpoint(
        self, make: Callable[[StoredCheckpoint | None, int], tuple[int, bytes, str, str] | None]
    ) -> StoredCheckpoint | None:
        """Under the appenders' lock, call ``make(latest, size)`` and store the checkpoint it returns."""

    @abc.abstractmethod
    def meta(self, key: str) -> str | None:
        """A value of the log's settings table (e.g. its origin)."""

    @abc.abstractmethod
    def set_meta_once(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` is set; return the value in force."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""


def open_store(uri: str, *, create: bool = True) -> Store:
    """Open the store named by ``uri``; ``create`` makes the database and its tables if needed, else a missing
    log is an :class:`AuditLogError` and the connection is read-only."""
    if uri.startswith("sqlite:///"):
        return SQLiteStore(uri, create=create)
    if uri.startswith(("postgresql://", "postgres://")):
        return PostgresStore(uri, create=create)
    raise AuditLogError(f"unsupported audit log URI {redact(uri)!r}: use sqlite:///path or postgresql://...")


def redact(uri: str) -> str:
    """``uri`` with its whole password replaced by ``***`` (also when the password was not percent-encoded
    and holds ``@``, ``/`` or ``:``)."""
    scheme, sep, rest = uri.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def _scrub(text: str, uri: str) -> str:
    """``text`` (e.g. a driver's error) without any form of the password of ``uri``."""
    _, _, rest = uri.partition("://")
    userinfo = rest.rpartition("@")[0]
    password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
    for form in sorted({password, urllib.parse.unquote(password)} - {""}, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


_INSERT_ENTRY = "INSERT INTO aisec_entries (idx, idempotency_key, body, leaf_hash) VALUES (?, ?, ?, ?)"
_CHECKPOINT_COLUMNS = "id, size, root, note, compact_range, created"


class _SqlStore(DerivedTables, Store):
    """What SQLite and PostgreSQL share; subclasses provide the connection, placeholders and lock."""

    mark = "?"

    @abc.abstractmethod
    def _locked(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction holding the appenders' lock; yields a cursor."""

    @abc.abstractmethod
    def _cursor(self) -> contextlib.AbstractContextManager[Any]:
        """A read-only cursor."""

    def _sql(self, text: str) -> str:
        return text.replace("?", self.mark)

    def append(self, items: Sequence[tuple[str | None, EntryBuilder]]) -> list[int]:
        with self._locked() as cur:
            cur.execute("SELECT idx, leaf_hash FROM aisec_entries ORDER BY idx DESC LIMIT 1")
            last = cur.fetchone()
            next_index = 0 if last is None else int(last[0]) + 1
            prev: bytes | None = None if last is None else bytes(last[1])
            indices, written = [], []
            for key, build in items:
                existing = self._by_key(cur, key)
                if existing is not None:
                    indices.append(existing)
                    continue
                body, leaf = build(next_index, prev)
                cur.execute(
                    self._sql(_INSERT_ENTRY),
                    (next_index, key, body, leaf),
                )
                indices.append(next_index)
                written.append((next_index, body))
                prev, next_index = leaf, next_index + 1
            first = 0 if last is None else int(last[0]) + 1
            self._add_terms(cur, written)
            if next_index >> TILE_HEIGHT > first >> TILE_HEIGHT:
                self._fill_tiles(cur, next_index)
            return indices

    def _by_key(self, cur: Any, key: str | None) -> int | None:
        if key is None:
            return None
        cur.execute(self._sql("SELECT idx FROM aisec_entries WHERE idempotency_key = ?"), (key,))
        row = cur.fetchone()
        return None if row is None else int(row[0])

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[StoredEntry]:
        query = f"SELECT {ENTRY_COLUMNS} FROM aisec_entries WHERE idx >= ?"  # nosec B608 # constant names, bound values
        params: list[int] = [start]
        if end is not None:
            query += " AND idx < ?"
            params.append(end)
        with self._cursor() as cur:
            cur.execute(self._sql(query + " ORDER BY idx"), params)
            while rows := cur.fetchmany(5000):
                for row in rows:
                    yield StoredEntry(int(row[0]), bytes(row[1]), bytes(row[2]), row[3])

    def entry(self, index: int) -> StoredEntry | None:
        return next(iter(self.entries(index, index + 1)), None)

    def keyed(self, prefix: str) -> list[tuple[str, int]]:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = (
            "SELECT idempotency_key, idx FROM aisec_entries WHERE idempotency_key LIKE ? ESCAPE '\\' "
            "ORDER BY idx"
        )
        with self._cursor() as cur:
            cur.execute(self._sql(query), (pattern,))
            return [(str(k), int(i)) for k, i in cur.fetchall() if str(k).startswith(prefix)]

    def size(self) -> int:
        with self._cursor() as cur:
            return self._size(cur)

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._cursor() as cur:
            cur.execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM aisec_checkpoints ORDER BY id")  # nosec B608 # constant names, bound values
            return [_checkpoint(row) for row in cur.fetchall()]

    def add_checkpoint(
        self, make: Callable[[StoredCheckpoint | None, int], tuple[int, bytes, str, str] | None]
    ) -> StoredCheckpoint | None:
        with self._locked() as cur:
            cur.execute(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM aisec_checkpoints ORDER BY size DESC, id DESC LIMIT 1"  # nosec B608 # constant names, bound values
            )
            row = cur.fetchone()
            size = self._size(cur)
            made = make(None if row is None else _checkpoint(row), size)
            if made is None:
                return None
            cur.execute(
                self._sql(
                    "INSERT INTO aisec_checkpoints (size, root, note, compact_range) VALUES (?, ?, ?, ?)"
                ),
                made,
            )
            cur.execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM aisec_checkpoints ORDER BY id DESC LIMIT 1")  # nosec B608 # constant names, bound values
            return _checkpoint(cur.fetchone())

    def meta(self, key: str) -> str | None:
        with self._cursor() as cur:
            cur.execute(self._sql("SELECT value FROM aisec_meta WHERE key = ?"), (key,))
            row = cur.fetchone()
            return None if row is None else str(row[0])

    def set_meta_once(self, key: str, value: str) -> str:
        with self._locked() as cur:
            cur.execute(self._sql("SELECT value FROM aisec_meta WHERE key = ?"), (key,))
            row = cur.fetchone()
            if row is not None:
                return str(row[0])
            cur.execute(self._sql("INSERT INTO aisec_meta (key, value) VALUES (?, ?)"), (key, value))
            return value


def _checkpoint(row: Sequence[Any]) -> StoredCheckpoint:
    return StoredCheckpoint(int(row[0]), int(row[1]), bytes(row[2]), str(row[3]), str(row[4]), str(row[5]))


class SQLiteStore(_SqlStore):
    """The embedded default: one SQLite file in WAL mode, shared safely by several processes."""

    def __init__(self, uri: str, *, create: bool = True) -> None:
        self.uri = uri
        path = uri[len("sqlite:///") :]
        if not path:
            raise AuditLogError("sqlite audit log URI needs a path: sqlite:///path/to/audit.db")
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise AuditLogError(
                f"audit log {self.path} does not exist: point --log, [aisec] audit_log "
                "(AIRFLOW__AISEC__AUDIT_LOG) or AIRFLOW_HOME at the log to read"
            )
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._conn = sqlite3.connect(
                    self.path, timeout=60, isolation_level=None, check_same_thread=False
                )
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                with self._locked() as cur:
                    for statement in SQLITE_SCHEMA.split(";\n"):
                        if statement.strip():
                            cur.execute(statement)
                    self._fill_derived(cur)
            else:
                # mode=ro: reading never creates the file, its tables or the origin.
                location = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(
                    location, uri=True, timeout=60, isolation_level=None, check_same_thread=False
                )
                found = self._conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'aisec_entries'"
                ).fetchone()
                if not found[0]:
                    self._conn.close()
                    raise AuditLogError(f"{self.path} is not an aisec audit log (no aisec_entries table)")
                self._has_tiles = (
                    self._conn.execute(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                        "AND name IN ('aisec_tiles', 'aisec_terms')"
                    ).fetchone()[0]
                    == 2
                )
        except sqlite3.Error as e:
            raise AuditLogError(f"cannot open audit log {self.path}: {e}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        # IMMEDIATE takes the write lock now, so two appenders never read the same "last index".
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        self._conn.close()


class PostgresStore(_SqlStore):
    """The production backend: PostgreSQL through psycopg 3."""

    mark = "%s"

    def __init__(self, uri: str, *, create: bool = True) -> None:
        import psycopg

        self.uri = redact(uri)
        try:
            self._conn = psycopg.connect(uri.replace("postgres://", "postgresql://", 1), autocommit=True)
        except psycopg.ProgrammingError:
            # libpq quotes the part of the URI it cannot parse, which may be a piece of the password.
            raise AuditLogError(
                f"cannot open audit log {self.uri}: the URI is malformed; percent-encode the user and "
                "password (urllib.parse.quote(password, safe=''))"
            ) from None
        except psycopg.Error as e:
            message = _scrub(f"{e.__class__.__name__}: {e}", uri)
            raise AuditLogError(f"cannot open audit log {self.uri}: {message}") from None
        try:
            if not create:
                self._conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            with self._locked() as cur:
                cur.execute("SELECT to_regclass('aisec_entries') IS NOT NULL")
                exists = bool(cur.fetchone()[0])
                if not exists and create:
                    cur.execute(PG_SCHEMA)
                    exists = True
                cur.execute(
                    "SELECT to_regclass('aisec_tiles') IS NOT NULL AND to_regclass('aisec_terms') IS NOT NULL"
                )
                self._has_tiles = bool(cur.fetchone()[0])
                if exists and create:
                    if not self._has_tiles:
                        cur.execute(PG_DERIVED_SCHEMA)
                        self._has_tiles = True
                    self._fill_derived(cur)
        except psycopg.Error as e:
            self._conn.close()
            message = _scrub(f"{e.__class__.__name__}: {e}", uri)
            raise AuditLogError(f"cannot open audit log {self.uri}: {message}") from None
        if not exists:
            self._conn.close()
            raise AuditLogError(
                f"audit log {self.uri} does not exist (no aisec_entries table): point --log or "
                "[aisec] audit_log (AIRFLOW__AISEC__AUDIT_LOG) at the log to read"
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_ID,))
            yield cur

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        # A server-side cursor streams a million entries without loading them all into memory.
        with self._conn.transaction(), self._conn.cursor(name=f"aisec_{uuid.uuid4().hex}") as cur:
            yield cur

    @contextlib.contextmanager
    def _small_cursor(self) -> Iterator[Any]:
        with self._conn.cursor() as cur:
            yield cur

    # One query for a whole batch of terms, planned once (a UNION of a hundred subqueries is slow to plan).
    def _term_counts(self, cur: Any, batch: Sequence[tuple[str, str]], cap: int) -> dict[int, int]:
        cur.execute(
            "SELECT v.n - 1, (SELECT COUNT(*) FROM (SELECT 1 FROM aisec_terms t WHERE t.kind = v.kind "
            "AND t.value = v.value LIMIT %s) AS c) FROM unnest(%s::text[], %s::text[]) "
            "WITH ORDINALITY AS v(kind, value, n)",
            (cap, [k for k, _ in batch], [v for _, v in batch]),
        )
        return {int(n): int(c) for n, c in cur.fetchall()}

    def _term_newest(self, cur: Any, batch: Sequence[tuple[str, str]], limit: int) -> list[tuple[int, int]]:
        cur.execute(
            "SELECT v.n - 1, t.idx FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS v(kind, value, n) "
            "CROSS JOIN LATERAL (SELECT idx FROM aisec_terms WHERE kind = v.kind AND value = v.value "
            "ORDER BY idx DESC LIMIT %s) AS t",
            ([k for k, _ in batch], [v for _, v in batch], limit),
        )
        return [(int(n), int(i)) for n, i in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()
