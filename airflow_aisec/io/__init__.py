"""Dataset I/O: locations (local or S3), streaming Parquet/CSV/JSON Lines files, atomic verified replacement.

Nothing here imports Airflow; ``airflow_aisec.hooks.lake.LakeHook`` builds ``S3Options`` from a connection.
"""

from __future__ import annotations

from airflow_aisec.io.atomic import (
    AtomicWriter,
    WriteResult,
    atomic_write,
    delete_file,
    put_small_file,
    sha256_file,
)
from airflow_aisec.io.dataset import (
    FileInfo,
    is_hidden,
    list_dataset_files,
    list_files,
    read_dataset,
    read_file,
    stat_file,
    write_dataset_file,
)
from airflow_aisec.io.formats import (
    DEFAULT_BATCH_SIZE,
    EXTENSIONS,
    FORMATS,
    BatchWriter,
    extension,
    open_writer,
    read_batches,
)
from airflow_aisec.io.storage import Location, S3Options

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
    "is_hidden",
    "list_dataset_files",
    "list_files",
    "open_writer",
    "put_small_file",
    "read_batches",
    "read_dataset",
    "read_file",
    "sha256_file",
    "stat_file",
    "write_dataset_file",
]
