"""Parquet statistics: the earliest and latest retention date of a plaintext Parquet file, from its footer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.io import Location
from airflow_aisec.retention.dates import instant


def parquet_bounds(
    location: Location, column: str
) -> tuple[int, dt.datetime | None, dt.datetime | None] | None:
    """(rows, earliest, latest) of ``column`` from a plaintext Parquet file's statistics.

    None when the statistics cannot settle it: a row group without min/max, with nulls (bad dates must be
    counted), or a column that is not a date or timestamp (text must be parsed row by row).
    """
    try:
        with location.filesystem().open_input_file(location.path) as handle:
            meta = pq.ParquetFile(handle).metadata
    except (OSError, pa.ArrowException):
        raise DatasetIOError(f"{location.uri} is not a readable parquet file") from None
    index = next((j for j in range(meta.num_columns) if meta.schema.column(j).path == column), None)
    if index is None:
        return None  # the scan reports the missing column, naming the file
    low: dt.datetime | None = None
    high: dt.datetime | None = None
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if group.num_rows == 0:
            continue
        span = _chunk_bounds(group.column(index).statistics)
        if span is None:
            return None
        low = span[0] if low is None else min(low, span[0])
        high = span[1] if high is None else max(high, span[1])
    return int(meta.num_rows), low, high


def _chunk_bounds(stats: Any) -> tuple[dt.datetime, dt.datetime] | None:
    if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
        return None
    low, high = instant(stats.min), instant(stats.max)
    return (low, high) if low is not None and high is not None else None
