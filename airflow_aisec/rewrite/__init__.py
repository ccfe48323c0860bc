"""Changing one file of a catalog dataset in place, safely: the one mechanism retention and DSRs share.

``source``: the file's batches (decrypted when encrypted) and an atomic sink for its new version;
``journal``: the change between an intent and an outcome entry of the audit log, and crash recovery.
"""

from __future__ import annotations

from airflow_aisec.rewrite.journal import (
    BatchEdit,
    Change,
    FileChange,
    Journal,
    change_file,
    key_material,
    operation_id,
    recover,
)
from airflow_aisec.rewrite.source import Rewrite, open_rewrite, plain_source

__all__ = [
    "BatchEdit",
    "Change",
    "FileChange",
    "Journal",
    "Rewrite",
    "change_file",
    "key_material",
    "open_rewrite",
    "operation_id",
    "plain_source",
    "recover",
]
