"""What the pages read, resolved the way the rest of the provider resolves it inside Airflow.

The audit log through ``AuditLogHook`` (``[aisec] audit_log``, a URI or a connection id), opened read-only
for every page; the catalog from ``[aisec] catalog`` and ``catalog_vars`` (its ``subjects.pseudonym_key``
is the key subjects are looked up under); holds, certificates and the trusted checkpoint from their
``[aisec]`` settings; Airflow's Assets from its metadata database. A missing catalog or holds file leaves
its part of a page empty, never an error.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.audit.log import PSEUDONYM_KEY
from airflow_aisec.exceptions import AisecError

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.retention.holds import HoldList

log = logging.getLogger(__name__)


def catalog() -> Catalog | None:
    """The configured catalog, or None when there is none or it does not load (logged, without values)."""
    from airflow_aisec.catalog import load_catalog

    try:
        path = config.catalog_path()
        if not path or not Path(path).is_file():
            return None
        return load_catalog(path, config.catalog_vars())
    except AisecError:
        log.warning("aisec: the configured catalog does not load; pages show no classification")
        return None
    except Exception as e:  # a page without classification is better than no page; the type says why
        log.warning("aisec: the catalog could not be read (%s); no classification shown", type(e).__name__)
        return None


def pseudonym_key(loaded: Catalog | None) -> str:
    """The key subjects are pseudonymized under: the catalog's, else the default."""
    return loaded.subjects.pseudonym_key if loaded is not None else PSEUDONYM_KEY


@contextlib.contextmanager
def reading(key: str = PSEUDONYM_KEY) -> Iterator[AuditLog]:
    """The audit log, read-only: nothing is created, written or signed."""
    from airflow_aisec.hooks.audit import AuditLogHook

    with AuditLogHook().get_log(create=False, pseudonym_key=key) as opened:
        yield opened


@contextlib.contextmanager
def writing(user: Any) -> Iterator[AuditLog]:
    """The audit log opened to record what ``user`` did from the Privacy pages."""
    from airflow_aisec.hooks.audit import AuditLogHook

    actor = {"kind": "airflow-ui", "user": str(user.get_name()), "host": socket.gethostname()}
    with AuditLogHook().get_log(actor=actor) as opened:
        yield opened


def holds() -> HoldList | None:
    """The per-subject holds file, when it exists."""
    from airflow_aisec.retention.holds import HoldList

    path = config.get_setting("holds")
    return HoldList(path) if path and Path(path).is_file() else None


def exports() -> str | None:
    """Where certificates are written (``[aisec] dsr_exports``)."""
    return config.get_setting("dsr_exports") or None


def trusted_checkpoint() -> str | None:
    """The trusted checkpoint file (``[aisec] trusted_checkpoint``)."""
    return config.get_setting("trusted_checkpoint") or None


def asset_ids(names: Iterable[str]) -> dict[str, int]:
    """Airflow's Asset id of each of ``names`` that is an Asset (by name), for links to its page."""
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wanted = sorted(set(names))
    if not wanted:
        return {}
    try:
        with create_session() as session:
            found = session.execute(select(AssetModel.name, AssetModel.id).where(AssetModel.name.in_(wanted)))
            return {str(name): int(asset_id) for name, asset_id in found}
    except Exception:  # a page without Asset links is better than no page
        log.warning("aisec: Airflow's Assets could not be read; pages show no Asset links", exc_info=True)
        return {}
