"""Dataset I/O: locations (local or S3), streaming Parquet/CSV/JSON Lines files, atomic verified replacement.

Nothing here imports Airflow; ``airflow_aisec.hooks.lake.LakeHook`` builds ``S3Options`` from a connection.
"""

from __future__ import annotations

from airflow_aisec.io.atomic import (
    AtomicWriter,
    WriteResult,
    atomic_write,
    delete_file,
    purge_versions,
    put_small_file,
    sha256_file,
)
from airflow_aisec.io.dataset import (
    FileInfo,
    guess_format,
    is_hidden,
    list_dataset_files,
    list_files,
    read_dataset,
    read_file,
    stat_file,
    text_schema,
    write_dataset_file,
)
from airflow_aisec.io.formats import (
    DEFAULT_BATCH_SIZE,
    EXTENSIONS,
    FORMATS,
    extension,
    read_batches,
)
from airflow_aisec.io.storage import Location, S3Options
from airflow_aisec.io.writers import BatchWriter, open_writer

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EXTENSIONS",
    "FORMATS",
    "AtomicWriter",
    "BatchWriter",
    "FileInfo",
    "Location",
    "S3Options",
    "WriteResult",
    "atomic_write",
    "delete_file",
    "extension",
    "guess_format",
    "is_hidden",
    "list_dataset_files",
    "list_files",
    "open_writer",
    "purge_versions",
    "put_small_file",
    "read_batches",
    "read_dataset",
    "read_file",
    "sha256_file",
    "stat_file",
    "text_schema",
    "write_dataset_file",
]
