"""PII detection and masking: offline Presidio engine, column classification, vectorized masking.

``scan_table`` and ``mask_table`` scan and mask a DataFrame or an Arrow table inside a task.
"""

from airflow_aisec.pii.api import TableScan, mask_table, scan_table

__all__ = ["TableScan", "mask_table", "scan_table"]
