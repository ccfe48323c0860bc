"""What the Privacy-page tests seed and share: the request, the subject, the seeded folder, the users."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from builders import SAMPLE

from airflow_aisec.samples import Customer

REQUEST_ID = "ui-erasure-1"


def subject() -> Customer:
    """A customer with orders, so the erasure changes several datasets."""
    ordered = {str(r["customer_id"]) for r in SAMPLE.rows("orders")}
    return next(c for c in SAMPLE.customers if c.customer_id in ordered)


class Seeded(NamedTuple):
    home: Path
    lake: Path
    log_uri: str
    keyring: Path
    exports: Path
    subject: Customer


class Users(NamedTuple):
    admin: str
    viewer: str
    outsider: str
