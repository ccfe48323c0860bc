"""The audit log's tables, for SQLite and PostgreSQL.

Evidence: entries, signed checkpoints, settings. Derived from the entries and rebuilt from them when
missing: the Merkle tree's tiles (for O(log n) proofs) and the search terms (for filtered pages). All of
them are append-only; triggers reject UPDATE and DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

APPEND_ONLY_MESSAGE = "aisec audit log is append-only"

SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS aisec_entries (
    idx INTEGER PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    body BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS aisec_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    compact_range TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS aisec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aisec_tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TRIGGER IF NOT EXISTS aisec_tiles_no_update BEFORE UPDATE ON aisec_tiles
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_tiles_no_delete BEFORE DELETE ON aisec_tiles
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TABLE IF NOT EXISTS aisec_terms (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (kind, value, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aisec_terms_by_entry ON aisec_terms (idx);
CREATE TRIGGER IF NOT EXISTS aisec_terms_no_update BEFORE UPDATE ON aisec_terms
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_terms_no_delete BEFORE DELETE ON aisec_terms
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_entries_no_update BEFORE UPDATE ON aisec_entries
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_entries_no_delete BEFORE DELETE ON aisec_entries
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_checkpoints_no_update BEFORE UPDATE ON aisec_checkpoints
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_checkpoints_no_delete BEFORE DELETE ON aisec_checkpoints
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_meta_no_update BEFORE UPDATE ON aisec_meta
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS aisec_meta_no_delete BEFORE DELETE ON aisec_meta
BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END;
"""

PG_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS aisec_entries (
    idx BIGINT PRIMARY KEY,
    idempotency_key TEXT UNIQUE,
    body BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS aisec_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    size BIGINT NOT NULL,
    root BYTEA NOT NULL,
    note TEXT NOT NULL,
    compact_range TEXT NOT NULL,
    created TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
);
CREATE TABLE IF NOT EXISTS aisec_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE OR REPLACE FUNCTION aisec_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$;
DROP TRIGGER IF EXISTS aisec_entries_append_only ON aisec_entries;
CREATE TRIGGER aisec_entries_append_only BEFORE UPDATE OR DELETE ON aisec_entries
FOR EACH ROW EXECUTE FUNCTION aisec_append_only();
DROP TRIGGER IF EXISTS aisec_entries_no_truncate ON aisec_entries;
CREATE TRIGGER aisec_entries_no_truncate BEFORE TRUNCATE ON aisec_entries
FOR EACH STATEMENT EXECUTE FUNCTION aisec_append_only();
DROP TRIGGER IF EXISTS aisec_checkpoints_append_only ON aisec_checkpoints;
CREATE TRIGGER aisec_checkpoints_append_only BEFORE UPDATE OR DELETE ON aisec_checkpoints
FOR EACH ROW EXECUTE FUNCTION aisec_append_only();
DROP TRIGGER IF EXISTS aisec_checkpoints_no_truncate ON aisec_checkpoints;
CREATE TRIGGER aisec_checkpoints_no_truncate BEFORE TRUNCATE ON aisec_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION aisec_append_only();
DROP TRIGGER IF EXISTS aisec_meta_append_only ON aisec_meta;
CREATE TRIGGER aisec_meta_append_only BEFORE UPDATE OR DELETE ON aisec_meta
FOR EACH ROW EXECUTE FUNCTION aisec_append_only();
"""

# The derived tables (tiles, search terms), added to logs created before they existed too; the function
# aisec_append_only() is in every log's schema.
PG_DERIVED_SCHEMA = """
CREATE TABLE IF NOT EXISTS aisec_tiles (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
DROP TRIGGER IF EXISTS aisec_tiles_append_only ON aisec_tiles;
CREATE TRIGGER aisec_tiles_append_only BEFORE UPDATE OR DELETE ON aisec_tiles
FOR EACH ROW EXECUTE FUNCTION aisec_append_only();
DROP TRIGGER IF EXISTS aisec_tiles_no_truncate ON aisec_tiles;
CREATE TRIGGER aisec_tiles_no_truncate BEFORE TRUNCATE ON aisec_tiles
FOR EACH STATEMENT EXECUTE FUNCTION aisec_append_only();
CREATE TABLE IF NOT EXISTS aisec_terms (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    idx BIGINT NOT NULL,
    PRIMARY KEY (kind, value, idx)
);
CREATE INDEX IF NOT EXISTS aisec_terms_by_entry ON aisec_terms (idx);
DROP TRIGGER IF EXISTS aisec_terms_append_only ON aisec_terms;
CREATE TRIGGER aisec_terms_append_only BEFORE UPDATE OR DELETE ON aisec_terms
FOR EACH ROW EXECUTE FUNCTION aisec_append_only();
DROP TRIGGER IF EXISTS aisec_terms_no_truncate ON aisec_terms;
CREATE TRIGGER aisec_terms_no_truncate BEFORE TRUNCATE ON aisec_terms
FOR EACH STATEMENT EXECUTE FUNCTION aisec_append_only();
"""
