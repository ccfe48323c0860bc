"""Tamper-evident lineage audit log."""
