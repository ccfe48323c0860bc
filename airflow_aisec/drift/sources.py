"""Where the data of a drift check comes from: a saved profile, a catalog dataset, or a file or folder.

A catalog dataset is read for a declared purpose (checked and recorded as ``purpose.check``), decrypted
transparently, and its declared PII columns are profiled without their values; a path or ``s3://`` URI is
read as it is (Parquet, CSV or JSON Lines, from its extension or the files it holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_aisec.drift.dataset import DatasetProfile, is_profile_file, load_profile, profile_batches
from airflow_aisec.io import Location, guess_format, read_dataset

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.io import S3Options


@dataclass(frozen=True)
class SourceOptions:
    """How catalog datasets and URIs are reached: the catalog, its keys, the purpose, the audit log, S3."""

    catalog: Catalog | None = None
    keys: KeySource | None = None
    purpose: str | None = None
    audit: AuditLog | None = None
    s3: S3Options | None = None
    task: str | None = None


def source_kind(source: str, catalog: Catalog | None, s3: S3Options | None = None) -> str:
    """``profile``, ``dataset`` (a catalog dataset's name) or ``uri``."""
    if is_profile_file(source, s3):
        return "profile"
    if catalog is not None and source in catalog.datasets:
        return "dataset"
    return "uri"


def pii_columns(source: str, catalog: Catalog | None) -> frozenset[str]:
    """The columns the catalog declares as PII, for a catalog dataset or a location of one."""
    if catalog is None:
        return frozenset()
    if source in catalog.datasets:
        return frozenset(catalog.dataset(source).pii_columns)
    return frozenset()


def load_source(
    source: str,
    options: SourceOptions | None = None,
    *,
    columns: Sequence[str] | None = None,
    salt: bytes | None = None,
    pii: Iterable[str] = (),
) -> DatasetProfile:
    """The profile of ``source``: loaded when it is a saved profile, else built by streaming its batches.

    :param columns: the columns to profile (a saved profile keeps all of its own).
    :param salt: the digest key of PII categories; pass the reference's when profiling the current data.
    :param pii: more columns to profile as PII, besides those the catalog declares for ``source``.
    """
    options = options or SourceOptions()
    kind = source_kind(source, options.catalog, options.s3)
    if kind == "profile":
        return load_profile(source, options.s3)
    if kind == "dataset":
        from airflow_aisec.governance import read_dataset as read_catalog_dataset

        batches = read_catalog_dataset(
            source,
            options.purpose,
            catalog=options.catalog,
            columns=columns,
            keys=options.keys,
            audit=options.audit,
            s3=options.s3,
            task=options.task,
        )
        hidden = pii_columns(source, options.catalog) | frozenset(pii)
        return profile_batches(batches, dataset=source, columns=columns, pii=hidden, salt=salt)
    location = Location.parse(source, options.s3)
    batches = read_dataset(location, guess_format(location), columns=columns)
    return profile_batches(batches, dataset=source, columns=columns, pii=pii, salt=salt)


def load_pair(
    reference: str,
    current: str,
    options: SourceOptions | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> tuple[DatasetProfile, DatasetProfile]:
    """Profiles of the reference and the current data: PII columns declared for either side are hidden on
    both, and the current data is profiled under the reference's digest key, so their categories compare."""
    catalog = (options or SourceOptions()).catalog
    pii = pii_columns(reference, catalog) | pii_columns(current, catalog)
    ref = load_source(reference, options, columns=columns, pii=pii)
    cur = load_source(current, options, columns=columns, salt=ref.salt, pii=pii | ref.pii)
    return ref, cur
