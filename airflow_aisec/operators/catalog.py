"""Operators that check the privacy catalog, so a broken catalog fails a DAG run instead of a deletion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.catalog import validate_catalog
from airflow_aisec.exceptions import CatalogError, DatasetIOError
from airflow_aisec.lineage import DatasetRef
from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.catalog import Catalog


class CatalogValidateOperator(AisecCatalogOperator):
    """
    Validate the privacy catalog and fail the task on any error.

    Besides the file itself, each dataset's location must exist and hold files of its format (unless the
    dataset says ``may_be_empty: true``): a wrong path or variable must not pass for an empty dataset. With
    ``lineage``, a dataset the audit log shows written from catalog data holding PII but missing from the
    catalog (a landing copy, say) is an error too.

    Returns (to XCom) the summary counts and the list of warnings; problems are logged one per line with
    file, field path and value, and a catalog never contains secrets or PII, so logging them is safe.

    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Values of ``{name}`` placeholders, over ``[aisec] catalog_vars``. (templated)
    :param fail_on_warnings: Also fail when the catalog has warnings (e.g. PII without retention).
    :param check_locations: Check that each dataset's location exists and holds files.
    :param lineage: Check the audit log's lineage for copies the catalog does not list.
    :param check_data: Also read each file's schema (Parquet footer, CSV header, first JSON lines) and fail
        on catalog columns missing from the data or of another type than declared (this includes the
        location check); encrypted Parquet footers are read with the dataset's key.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` datasets; None uses the boto3 chain.
    """

    template_fields: Sequence[str] = ("catalog", "variables")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        fail_on_warnings: bool = False,
        check_locations: bool = True,
        lineage: bool = False,
        check_data: bool = False,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.fail_on_warnings = fail_on_warnings
        self.check_locations = check_locations
        self.lineage_check = lineage
        self.check_data = check_data

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate; raise ``CatalogError`` listing every error."""
        from airflow_aisec.catalog.lake import check_lineage, check_locations

        path = self._catalog_path()
        variables = self._catalog_vars()
        report = validate_catalog(path, variables)
        data = None
        if report.ok and report.catalog is not None and self.check_data:
            data = self._check_data(report)
        elif report.ok and report.catalog is not None and self.check_locations:
            check_locations(report, variables, self._s3_options(report.catalog))
        if report.ok and self.lineage_check:
            check_lineage(report, self._lineage(context))
        for problem in report.errors:
            self.log.error("%s", problem)
        for problem in report.warnings:
            self.log.warning("%s", problem)
        failed = list(report.errors) + (list(report.warnings) if self.fail_on_warnings else [])
        details = {"errors": len(report.errors), "warnings": len(report.warnings)}
        if failed or report.catalog is None:
            self.record(context, "catalog.validate", outcome="failure", details=details)
            raise CatalogError([str(p) for p in failed])
        counts = report.catalog.summary()
        self.record(context, "catalog.validate", details={**details, "datasets": counts["datasets"]})
        self.log.info("Catalog %s is valid: %s", path, counts)
        result = {"catalog": path, "summary": counts, "warnings": [str(p) for p in report.warnings]}
        if data is not None:
            result["data"] = {"files": {name: len(files) for name, files in data.files.items()}}
        return result

    def _check_data(self, report: Any) -> Any:
        """Compare each dataset's files with its catalog columns; errors and warnings go into ``report``."""
        from airflow_aisec.catalog.datacheck import add_to_report, check_data, encrypted_schemas

        catalog = report.catalog
        keys = encrypted_schemas(self._catalog_keys(catalog))
        data = check_data(catalog, self._s3_options(catalog), encrypted_schema=keys)
        add_to_report(report, data)
        for _finding, text in data.grouped("info"):
            self.log.info("%s", text)
        return data

    def _lineage(self, context: Context) -> Any:
        """The lineage of the audit log this task records to (a new log has none yet)."""
        from airflow_aisec.audit.lineage import LineageGraph

        with self.audited(context) as log:
            return LineageGraph.from_entries(log.entries())


class LakeInventoryOperator(AisecCatalogOperator):
    """
    Count each catalog dataset's files and rows and check its columns against the catalog.

    A column in the data that the catalog does not declare may be personal data no rule covers; a declared
    column missing from the data breaks retention and erasure. Returns one summary per dataset (XCom).

    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Values of ``{name}`` placeholders, over ``[aisec] catalog_vars``. (templated)
    :param fail_on_drift: Fail when columns differ or a dataset cannot be read.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` datasets; None uses the boto3 chain.
    """

    template_fields: Sequence[str] = ("catalog", "variables")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        fail_on_drift: bool = True,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.fail_on_drift = fail_on_drift

    def _readers(self, catalog: Catalog) -> dict[str, Any]:
        """Readers that decrypt the datasets the catalog says are encrypted (KMS keys through each key's
        ``aws_conn_id``, else this task's connection)."""
        from airflow_aisec.crypto.datasets import reader_for

        keys = self._catalog_keys(catalog)
        return {name: reader_for(keys, d) for name, d in catalog.datasets.items() if d.encryption}

    def execute(self, context: Context) -> list[dict[str, object]]:
        """Inventory every dataset; raise ``DatasetIOError`` on drift when asked to."""
        from airflow_aisec.inventory import take_inventory

        catalog = self._load_catalog()
        results = take_inventory(catalog, self._s3_options(catalog), readers=self._readers(catalog))
        for item in results:
            self.log.info(
                "%s: %d files, %d rows, %d bytes at %s",
                item.dataset,
                item.files,
                item.rows,
                item.bytes,
                item.uri,
            )
            for problem in item.problems:
                self.log.error("%s: %s", item.dataset, problem)
            if item.missing_columns:
                self.log.error("%s: declared but missing: %s", item.dataset, ", ".join(item.missing_columns))
            if item.undeclared_columns:
                self.log.error("%s: not declared: %s", item.dataset, ", ".join(item.undeclared_columns))
        drifted = [item.dataset for item in results if item.drift]
        self.lineage.inputs = [
            DatasetRef(
                item.uri, item.dataset, columns=tuple(item.columns),
                classification=_as_stored(catalog.datasets[item.dataset]),
            )
            for item in results
        ]  # fmt: skip
        with self.audited(context):
            for item in results:
                self.record(
                    context,
                    "dataset.inventory",
                    step=item.dataset,
                    dataset=item.dataset,
                    inputs=[{"uri": item.uri, "dataset": item.dataset}],
                    rows=item.rows,
                    columns=item.undeclared_columns or None,
                    outcome="failure" if item.drift else "success",
                    details={"files": item.files, "missing_columns": item.missing_columns},
                )
        if drifted and self.fail_on_drift:
            raise DatasetIOError(f"the lake does not match the catalog for: {', '.join(drifted)}")
        return [item.as_dict() for item in results]


def _as_stored(dataset: Any) -> Any:
    """The classification of a catalog dataset as stored: its PII columns, those encrypted at rest masked."""
    from airflow_aisec.lineage import classify

    encrypted = set(dataset.encryption.columns) if dataset.encryption else set()
    return classify(dataset.pii_columns, {c: "encrypt" for c in dataset.pii_columns if c in encrypted})
