"""Checks across fields of a catalog that the field types alone cannot express."""

from __future__ import annotations

from collections.abc import Callable

from airflow_aisec.catalog.consent import check_consent
from airflow_aisec.catalog.graph import ReferenceCycleError, ReferenceGraph
from airflow_aisec.catalog.models import Catalog, Dataset
from airflow_aisec.catalog.problems import Report
from airflow_aisec.catalog.purposes import check_purposes
from airflow_aisec.catalog.roles import check_roles
from airflow_aisec.exceptions import FieldPathError
from airflow_aisec.io.nested import FieldPath, looks_nested, parse_path

_URI_SCHEMES = ("s3://", "file://")


def check_catalog(catalog: Catalog, report: Report) -> None:
    """Record every cross-field error and warning of ``catalog`` in ``report``."""
    _check_keys(catalog, report)
    for name, dataset in catalog.datasets.items():
        for check in _DATASET_CHECKS:
            check(catalog, name, dataset, report)
    _check_graph(catalog, report)
    check_purposes(catalog, report)
    check_roles(catalog, report)
    check_consent(catalog, report)


def _check_keys(catalog: Catalog, report: Report) -> None:
    if catalog.subjects.pseudonym_key not in catalog.keys:
        report.error(
            ("subjects", "pseudonym_key"),
            f"key {catalog.subjects.pseudonym_key!r} is not declared under keys",
        )
    for name, key in catalog.keys.items():
        if key.provider == "aws-kms" and not key.key_id:
            report.error(("keys", name, "key_id"), "an aws-kms key needs key_id (a key id, ARN or alias)")
        if key.provider != "aws-kms" and key.subject_keys is not None:
            report.error(
                ("keys", name, "subject_keys"),
                "subject_keys is for aws-kms keys; local per-subject keys live in the keyring",
            )


def _column_error(report: Report, path: tuple[str, ...], column: str, dataset: str) -> None:
    report.error(path, f"column {column!r} is not among the columns of dataset {dataset!r}")


def _top_level_only(report: Report, path: tuple[str, ...], column: str, role: str) -> bool:
    """Report a path where only a top-level column will do; True if ``column`` is one."""
    if looks_nested(column):
        report.error(
            path,
            f"{column!r}: {role} must be a top-level column, not a path to a field inside one "
            f"(only PII columns and free text may be paths)",
        )
        return False
    return True


def _check_paths(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    """Paths to nested fields (``payload.ip``, ``items[].email``) parse, and no declared PII path holds
    another one (both would be masked, one inside the other)."""
    parsed: dict[str, FieldPath] = {}
    for column in dataset.columns:
        if not looks_nested(column):
            parsed[column] = FieldPath(column)
            continue
        try:
            parsed[column] = parse_path(column)
        except FieldPathError as e:
            report.error(("datasets", name, "columns", column), str(e))
    pii = {c: p for c, p in parsed.items() if dataset.columns[c].pii}
    for column, path in pii.items():
        for other, outer in pii.items():
            if (
                other != column
                and outer.column == path.column
                and path.steps[: len(outer.steps)] == outer.steps
            ):
                report.error(
                    ("datasets", name, "columns", column),
                    f"{column!r} is inside {other!r}, which is declared as PII too: declare one of them",
                )


def _check_uri(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    uri = dataset.uri
    if "://" in uri and not uri.startswith(_URI_SCHEMES):
        report.error(("datasets", name, "uri"), f"unsupported location {uri!r} (use a local path or s3://)")
    elif uri.startswith("s3://") and len(uri) <= len("s3://"):
        report.error(("datasets", name, "uri"), f"missing bucket in {uri!r}")


def _check_identity(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    for identity, column in dataset.identity.items():
        path = ("datasets", name, "identity", identity)
        if identity not in catalog.subjects.identities:
            known = ", ".join(catalog.subjects.identities)
            report.error(path, f"unknown identity type {identity!r} (subjects.identities: {known})")
        if _top_level_only(report, path, column, "an identity") and column not in dataset.columns:
            _column_error(report, path, column, name)


def _check_primary_key(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    key, path = dataset.primary_key, ("datasets", name, "primary_key")
    if (
        key is not None
        and _top_level_only(report, path, key, "the primary key")
        and key not in dataset.columns
    ):
        _column_error(report, path, key, name)


def _check_references(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    for column, target in dataset.references.items():
        path = ("datasets", name, "references", column)
        if _top_level_only(report, path, column, "a reference") and column not in dataset.columns:
            _column_error(report, path, column, name)
        target_name, _, target_column = target.partition(".")
        if not target_column:
            report.error(path, f"reference {target!r} must be written dataset.column")
        elif target_name not in report.dataset_names and target_name not in catalog.datasets:
            report.error(path, f"unknown dataset {target_name!r}")
        elif target_name in catalog.datasets and target_column not in catalog.datasets[target_name].columns:
            report.error(path, f"unknown column {target_column!r} in dataset {target_name!r}")


def _check_retention(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    if dataset.retention is None:
        if dataset.pii_columns and "retention" not in report.dropped.get(name, ()):
            report.warning(
                ("datasets", name),
                "dataset holds PII but has no retention rule: its rows are kept forever",
            )
        return
    column, path = dataset.retention.column, ("datasets", name, "retention", "column")
    if _top_level_only(report, path, column, "the retention column") and column not in dataset.columns:
        _column_error(report, path, column, name)


def _check_encryption(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    enc = dataset.encryption
    if enc is None:
        return
    if enc.key not in catalog.keys:
        report.error(("datasets", name, "encryption", "key"), f"key {enc.key!r} is not declared under keys")
    for i, column in enumerate(enc.columns):
        if column not in dataset.columns:
            _column_error(report, ("datasets", name, "encryption", "columns", str(i)), column, name)
    for i, column in enumerate(enc.per_subject_columns):
        if column not in enc.columns:
            report.error(
                ("datasets", name, "encryption", "per_subject_columns", str(i)),
                f"column {column!r} is not among the encrypted columns",
            )
    key = catalog.keys.get(enc.key)
    if enc.per_subject_columns and key is not None and key.provider == "aws-kms" and not key.subject_keys:
        report.error(
            ("datasets", name, "encryption", "per_subject_columns"),
            f"per-subject keys are wrapped under the aws-kms key {enc.key!r}: set "
            f"keys.{enc.key}.subject_keys to the folder or s3:// prefix that keeps them",
        )


def _check_masks(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    for column, spec in dataset.columns.items():
        if spec.mask is not None and not spec.pii:
            report.warning(
                ("datasets", name, "columns", column, "mask"),
                "a mask is set but the column is not declared as pii, so it is never masked",
            )


def _check_protected(catalog: Catalog, name: str, dataset: Dataset, report: Report) -> None:
    # Bias checks compare the groups of whole columns.
    for column in dataset.protected_attributes:
        _top_level_only(
            report, ("datasets", name, "columns", column, "protected"), column, "a protected attribute"
        )


_DATASET_CHECKS: tuple[Callable[[Catalog, str, Dataset, Report], None], ...] = (
    _check_uri,
    _check_paths,
    _check_identity,
    _check_primary_key,
    _check_references,
    _check_retention,
    _check_encryption,
    _check_masks,
    _check_protected,
)


def _check_graph(catalog: Catalog, report: Report) -> None:
    try:
        graph = ReferenceGraph(catalog)
    except ReferenceCycleError as e:
        report.error(("datasets", e.datasets[0], "references"), str(e))
        return
    reachable = graph.reachable_datasets()
    for name, dataset in catalog.datasets.items():
        dropped = report.dropped.get(name, set())
        if dataset.pii_columns and name not in reachable and not dropped & {"identity", "references"}:
            report.warning(
                ("datasets", name),
                "dataset holds PII but is not reachable from any identity: "
                "data subject requests cannot find its rows (add identity or references)",
            )
