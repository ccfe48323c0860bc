"""Tamper-evident lineage audit log: Merkle tree, signed checkpoints, SQLite and PostgreSQL storage."""

from __future__ import annotations

from airflow_aisec.audit.checkpoint import Checkpoint, CheckpointError, Signer, Verifier
from airflow_aisec.audit.entry import KNOWN_ACTIONS, canonical_json
from airflow_aisec.audit.log import AuditLog, Entry
from airflow_aisec.audit.merkle import MerkleTree, verify_consistency, verify_inclusion
from airflow_aisec.audit.query import EntryPage, EntryQuery
from airflow_aisec.audit.verify import Failure, Finding, VerifyReport

__all__ = [
    "KNOWN_ACTIONS",
    "AuditLog",
    "Checkpoint",
    "CheckpointError",
    "Entry",
    "EntryPage",
    "EntryQuery",
    "Failure",
    "Finding",
    "MerkleTree",
    "Signer",
    "Verifier",
    "VerifyReport",
    "canonical_json",
    "verify_consistency",
    "verify_inclusion",
]
