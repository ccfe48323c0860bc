"""The example catalog with a consent source: a purpose ``newsletter`` that needs consent, the consents
dataset (in a folder of the test's own, in the format asked for), and sample datasets that may serve it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from builders import catalog_file

from airflow_aisec.catalog import Catalog, load_catalog

SERVES_NEWSLETTER = ("customers", "orders", "support_tickets", "chargebacks")


def consent_edit(
    consents: Path, fmt: str = "parquet", identities: tuple[str, ...] = ("customer_id", "email")
) -> Any:
    """An edit of the example catalog's YAML data adding consent (see the module docstring)."""

    def edit(data: Any) -> None:
        data["purposes"]["newsletter"] = {
            "parent": "marketing.communications",
            "needs_consent": True,
            "description": "The monthly newsletter",
        }
        data["consent"] = {"dataset": "consents"}
        columns: dict[str, Any] = {
            kind: {"pii": "EMAIL_ADDRESS"} if kind == "email" else {} for kind in identities
        }
        columns.update({"purpose": {}, "granted_at": {}, "withdrawn_at": {}})
        data["datasets"]["consents"] = {
            "uri": str(consents),
            "format": fmt,
            "may_be_empty": True,
            "identity": {kind: kind for kind in identities},
            "columns": columns,
            "purposes": ["essential.service"],
        }
        for name in SERVES_NEWSLETTER:
            data["datasets"][name]["purposes"].append("newsletter")

    return edit


def consent_catalog(lake: Path, tmp_path: Path, fmt: str = "parquet", **options: Any) -> tuple[Catalog, Path]:
    """The catalog over ``lake`` with consents in ``tmp_path / "consents"``, and its file."""
    path = catalog_file(tmp_path, consent_edit(tmp_path / "consents", fmt, **options))
    return load_catalog(path, {"lake": str(lake)}), path


def customer_ids(lake: Path, n: int) -> list[str]:
    """The first ``n`` customer ids of the lake's orders, in order."""
    ids = pq.read_table(lake / "orders", columns=["customer_id"]).column("customer_id").to_pylist()
    return sorted(set(ids))[:n]


def rows_of(table: pa.Table, ids: list[str]) -> int:
    """Rows of ``table`` whose customer is one of ``ids``."""
    return sum(1 for value in table.column("customer_id").to_pylist() if value in ids)
