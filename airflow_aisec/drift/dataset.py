"""The profile of a whole dataset: its schema, rows and a profile per column, built one batch at a time.

A saved profile is one JSON document (``aisec drift profile`` writes it, atomically)::

    {"format": "aisec-drift-profile", "version": 1, "dataset": "customers", "rows": 1000000,
     "schema": {"age": "int64", ...}, "pii": ["email"], "salt": "<hex>",
     "columns": {"age": {"kind": "numeric", "count": ..., "sketch": "<base64 KLL>", ...}, ...}}

Quantile sketches retain some of a numeric column's values, so a profile file is stored like the dataset it
describes; a PII column's categories are keyed digests under ``salt`` and its min/max are left out.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from airflow_aisec.drift.profile import (
    ColumnProfile,
    column_from_dict,
    column_kind,
    new_profile,
)
from airflow_aisec.exceptions import DriftError
from airflow_aisec.io import Location, S3Options, put_small_file

FORMAT = "aisec-drift-profile"
VERSION = 1


@dataclass
class DatasetProfile:
    """Profiles of a dataset's columns, its Arrow schema (type names) and row count; mergeable."""

    dataset: str = ""
    rows: int = 0
    schema: dict[str, str] = field(default_factory=dict)
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    pii: frozenset[str] = frozenset()
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def update(self, batch: pa.RecordBatch, columns: Sequence[str] | None = None) -> None:
        """Add one batch: every column (or those named) of a type drift checks."""
        self.rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            self.schema.setdefault(name, str(column.type))
            if columns is not None and name not in columns:
                continue
            profile = self.columns.get(name)
            if profile is None:
                kind = column_kind(column.type)
                if kind is None:
                    continue
                profile = self.columns[name] = new_profile(kind, self.salt if name in self.pii else None)
            profile.update(column)

    def merge(self, other: DatasetProfile) -> None:
        """Add another profile of the same dataset (another file or partition); same salt required."""
        if other.salt != self.salt and (self.pii | other.pii):
            raise DriftError(f"dataset {self.dataset!r}: profiles with different salts cannot be merged")
        self.rows += other.rows
        for name, type_name in other.schema.items():
            self.schema.setdefault(name, type_name)
        for name, profile in other.columns.items():
            mine = self.columns.get(name)
            if mine is None:
                self.columns[name] = profile
            elif mine.kind != profile.kind:
                raise DriftError(f"dataset {self.dataset!r}, column {name!r}: profiles of different kinds")
            else:
                mine.merge(profile)  # type: ignore[arg-type]  # same kind checked above

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "dataset": self.dataset,
            "rows": self.rows,
            "schema": self.schema,
            "pii": sorted(self.pii),
            "salt": self.salt.hex(),
            "columns": {n: p.to_dict(pii=n in self.pii) for n, p in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, doc: Any, where: str = "profile") -> DatasetProfile:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise DriftError(f"{where}: not a drift profile (format {FORMAT!r} expected)")
        if doc.get("version") != VERSION:
            raise DriftError(f"{where}: unsupported drift profile version {doc.get('version')!r}")
        try:
            salt = bytes.fromhex(doc["salt"])
            pii = frozenset(doc.get("pii", []))
            columns = {
                name: column_from_dict(col, salt if name in pii else None)
                for name, col in doc["columns"].items()
            }
            return cls(str(doc["dataset"]), int(doc["rows"]), dict(doc["schema"]), columns, pii, salt)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise DriftError(f"{where}: malformed drift profile ({type(e).__name__})") from None


def profile_batches(
    batches: Iterable[pa.RecordBatch],
    *,
    dataset: str = "",
    columns: Sequence[str] | None = None,
    pii: Iterable[str] = (),
    salt: bytes | None = None,
) -> DatasetProfile:
    """Profile a stream of record batches; memory is bounded by one batch and the sketches.

    :param columns: the columns to profile; default all of a type drift checks (the schema lists all).
    :param pii: columns whose category values are kept only as keyed digests.
    :param salt: the digest key; pass a reference profile's ``salt`` to compare against it.
    """
    profile = DatasetProfile(dataset=dataset, pii=frozenset(pii))
    if salt is not None:
        profile.salt = salt
    for batch in batches:
        profile.update(batch, columns)
    return profile


def _read(location: Location, size: int | None = None) -> bytes:
    """The file's bytes (the first ``size`` of them, if given)."""
    with location.filesystem().open_input_stream(location.path) as stream:
        data: bytes = stream.read() if size is None else stream.read(size)
    return data


def is_profile_file(path: str, s3: S3Options | None = None) -> bool:
    """Whether ``path`` (local or ``s3://``) is a saved profile: a ``.json`` file whose content says so."""
    if not path.endswith(".json"):
        return False
    location = Location.parse(path, s3)
    try:
        return FORMAT.encode() in _read(location, 256)
    except OSError:
        return False  # not a readable file: read as a dataset, whose errors name what is wrong


def load_profile(path: str | os.PathLike[str], s3: S3Options | None = None) -> DatasetProfile:
    """A saved profile (local or ``s3://``); ``DriftError`` naming the file when it is not one."""
    location = Location.parse(path, s3)
    try:
        doc = json.loads(_read(location))
    except (OSError, ValueError) as e:
        raise DriftError(f"{location.uri}: cannot read drift profile ({type(e).__name__})") from None
    return DatasetProfile.from_dict(doc, location.uri)


def save_profile(profile: DatasetProfile, path: str | os.PathLike[str], s3: S3Options | None = None) -> str:
    """Write ``profile`` as JSON (local: owner-only temporary file, fsync, rename; S3: one PUT), read it back
    to check it, and return its URI."""
    location = Location.parse(path, s3)
    data = json.dumps(profile.to_dict(), separators=(",", ":")).encode()
    put_small_file(location, data)
    if _read(location) != data:
        raise DriftError(f"{location.uri}: profile did not read back as written")
    return location.uri
