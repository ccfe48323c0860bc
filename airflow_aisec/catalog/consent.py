"""The catalog's consent source: which dataset holds subjects' consents, how its rows name a subject, and the
checks of both.

The consent dataset is a catalog dataset like any other (so requests, retention and encryption reach it) with
the columns ``purpose``, ``granted_at`` and ``withdrawn_at`` and at least one identity column (its
``identity`` map: identity type → column). A row names its subject in one identity column; a purpose of the
catalog's own says ``needs_consent: true`` for the reads that keep only subjects with a current consent.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from airflow_aisec.catalog.purposes import Taxonomy

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog, Dataset
    from airflow_aisec.catalog.problems import Report

PURPOSE, GRANTED_AT, WITHDRAWN_AT = "purpose", "granted_at", "withdrawn_at"
CONSENT_COLUMNS = (PURPOSE, GRANTED_AT, WITHDRAWN_AT)
_CASEFOLDED = "EMAIL_ADDRESS"


@dataclasses.dataclass(frozen=True)
class SubjectColumn:
    """The column of a dataset naming each row's subject, by the identity type it holds."""

    identity: str
    column: str
    casefold: bool


def consent_dataset(catalog: Catalog) -> Dataset | None:
    """The consent source dataset, or None when the catalog names none (or names an unknown one)."""
    if catalog.consent is None:
        return None
    return catalog.datasets.get(catalog.consent.dataset)


def consent_purpose(catalog: Catalog, purpose: str) -> str | None:
    """The purpose that makes a read for ``purpose`` need consent: itself or the nearest purpose above it
    that says ``needs_consent``; None when the read needs none."""
    for key in Taxonomy.of(catalog).lineage(purpose):
        spec = catalog.purposes.get(key)
        if spec is not None and spec.needs_consent:
            return key
    return None


def identity_columns(catalog: Catalog, dataset: Dataset) -> dict[str, str]:
    """Identity type → the column of ``dataset`` holding it: its identity columns, and the columns that
    reference another dataset's identity column."""
    found = dict(dataset.identity)
    for column, (target, target_column) in dataset.reference_targets().items():
        parent = catalog.datasets.get(target)
        if parent is None:
            continue
        for kind, held in parent.identity.items():
            if held == target_column:
                found.setdefault(kind, column)
    return found


def consent_subject(catalog: Catalog, dataset: Dataset) -> SubjectColumn | None:
    """How rows of ``dataset`` are matched to consents: the first identity type, in ``subjects.identities``
    order, that both the consent dataset and ``dataset`` hold; None when they share none."""
    source = consent_dataset(catalog)
    if source is None:
        return None
    held = identity_columns(catalog, dataset)
    for kind in catalog.subjects.identities:
        if kind in source.identity and kind in held:
            spec = source.columns.get(source.identity[kind])
            casefold = spec is not None and spec.pii == _CASEFOLDED
            return SubjectColumn(kind, held[kind], casefold)
    return None


def check_consent(catalog: Catalog, report: Report) -> None:
    """Record the problems of ``consent:`` and of the purposes that say ``needs_consent``."""
    needing = sorted(key for key, spec in catalog.purposes.items() if spec.needs_consent)
    if catalog.consent is None:
        for key in needing:
            report.error(
                ("purposes", key, "needs_consent"),
                f"purpose {key!r} needs consent, but the catalog names no consent source (consent.dataset)",
            )
        return
    name = catalog.consent.dataset
    path = ("consent", "dataset")
    dataset = catalog.datasets.get(name)
    if dataset is None:
        known = ", ".join(sorted(catalog.datasets))
        report.error(path, f"unknown dataset {name!r} (known: {known})")
        return
    missing = [column for column in CONSENT_COLUMNS if column not in dataset.columns]
    if missing:
        report.error(path, f"consent dataset {name!r} lacks the column(s) {', '.join(missing)}")
    if not any(kind in dataset.identity for kind in catalog.subjects.identities):
        report.error(
            path,
            f"consent dataset {name!r} has no identity column: name the subject's column under its identity "
            f"(one of {', '.join(catalog.subjects.identities)})",
        )
    if dataset.encryption is not None:
        report.error(path, f"consent dataset {name!r} is encrypted: consents are written as plain files")
    if not needing:
        report.warning(path, "no purpose says needs_consent: the consent source is not used at read time")
