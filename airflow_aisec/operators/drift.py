"""``DriftCheckOperator`` and ``InputAnomalyOperator``: compare current data with a reference, per column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import DriftDetectedError
from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.drift import CheckRun, SourceOptions
    from airflow_aisec.lineage import DatasetRef


class _ProfileCheckOperator(AisecCatalogOperator):
    """What both checks share: the two sides, the catalog, the audit entry, the XCom result, fail or skip."""

    action = ""

    def __init__(
        self,
        *,
        reference: str,
        current: str,
        columns: Sequence[str] | None = None,
        soft_fail: bool = False,
        report_path: str | None = None,
        keyring: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reference = reference
        self.current = current
        self.columns = columns
        self.soft_fail = soft_fail
        self.report_path = report_path
        self.keyring = keyring
        self._current_dataset: str | None = None

    def _options(self, context: Context, log: AuditLog) -> SourceOptions:
        from airflow_aisec.drift import SourceOptions

        catalog = self._load_catalog()
        self._current_dataset = self.current if self.current in catalog.datasets else None
        s3 = self._s3_options(catalog, self.reference, self.current, self.report_path or "")
        keys = self._catalog_keys(catalog, self.keyring, s3)
        self.lineage.inputs = [self._input(catalog, side) for side in (self.reference, self.current)]
        return SourceOptions(
            catalog, keys, self._task_purpose(context), log, s3, task=self._task_name(context)
        )

    def _input(self, catalog: Catalog, source: str) -> DatasetRef:
        """What a side is, for lineage: a catalog dataset by its location, else the path or URI given."""
        from airflow_aisec.lineage import DatasetRef

        if source in catalog.datasets:
            return DatasetRef(catalog.dataset(source).uri, source)
        return DatasetRef(source, self._dataset_at(catalog, source))

    def _run(self, options: SourceOptions) -> CheckRun:
        raise NotImplementedError

    def execute(self, context: Context) -> dict[str, Any]:
        """Profile both sides, test, record ``drift.check``/``anomaly.check``, then fail or skip if the share
        of drifted columns is past the limit; the result (aggregates only) is the task's XCom."""
        with self.audited(context) as log:
            run = self._run(self._options(context, log))
            result = run.result
            dataset = self._current_dataset
            fields = {**result.audit_fields(), **self.lineage.entry_fields()}
            self.record(context, self.action, step="check", dataset=dataset, **fields)
        self.log.info("%s", result.summary())
        if run.report:
            self.log.info("Report written to %s", run.report)
        doc = result.to_dict()
        if run.report:
            doc["report"] = run.report
        if not result.passed:
            context["ti"].xcom_push(key="return_value", value=doc)  # a failed task returns nothing
            self._fail(result.summary())
        return doc

    def _fail(self, message: str) -> None:
        if self.soft_fail:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(message)
        raise DriftDetectedError(message)


class DriftCheckOperator(_ProfileCheckOperator):
    """
    Test the current data against a reference, column by column, with the tests data teams know from
    Evidently (KS or chi² on a reference of up to 1,000 values, normed Wasserstein or Jensen–Shannon on a
    larger one; p < 0.05, distance ≥ 0.1), and fail (or skip, with ``soft_fail``) when the share of drifted
    columns reaches ``drift_share``.

    Both sides stream in Arrow batches into mergeable sketches, so memory stays flat as rows grow. The
    result (per column: method, statistic, threshold, drifted; the drifted share and whether it passed) is
    the XCom and the ``drift.check`` audit entry; it holds aggregate statistics only, and the report names
    a PII column's categories "category 1", "category 2"...

    :param reference: A catalog dataset, a path or ``s3://`` URI, or a saved profile (``aisec drift
        profile``). (templated)
    :param current: The data to check, the same kinds as ``reference``. (templated)
    :param columns: The columns to test; default every column both sides have. (templated)
    :param method: ``auto``, or one of ``ks``, ``chisquare``, ``z``, ``wasserstein``, ``jensenshannon``,
        ``psi`` for every column.
    :param threshold: The method's threshold; default 0.05 (p-values) or 0.1 (distances).
    :param drift_share: The share of drifted columns at which the task fails.
    :param soft_fail: Skip the task instead of failing it.
    :param report_path: Write the HTML report there (local path or ``s3://``). (templated)
    :param purpose: Why the task reads catalog datasets (checked against their ``purposes``).
    """

    template_fields: Sequence[str] = ("reference", "current", "columns", "report_path", "catalog")
    ui_color = "#e0f2fe"
    action = "drift.check"

    def __init__(
        self,
        *,
        method: str = "auto",
        threshold: float | None = None,
        drift_share: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.method = method
        self.threshold = threshold
        self.drift_share = drift_share

    def _run(self, options: SourceOptions) -> CheckRun:
        from airflow_aisec.drift import drift_check

        return drift_check(
            self.reference,
            self.current,
            options,
            columns=self.columns,
            method=self.method,
            threshold=self.threshold,
            drift_share=self.drift_share,
            report_path=self.report_path,
        )


class InputAnomalyOperator(_ProfileCheckOperator):
    """
    Check inference inputs against a reference: schema changes (columns added, removed, retyped), null-rate
    spikes, values out of the reference's range, unseen categories, reported per column; fail (or skip,
    with ``soft_fail``) when the share of anomalous columns passes ``max_anomalous_share`` (default 0: any
    anomaly). Recorded as ``anomaly.check``; the XCom holds shares and counts, never a value.

    :param reference: A catalog dataset, a path or ``s3://`` URI, or a saved profile. (templated)
    :param current: The inputs to check. (templated)
    :param columns: The columns to check; default all. (templated)
    :param max_null_increase: Null-rate increase (0-1) at which a column is anomalous.
    :param max_out_of_range: Share of values outside the reference's [min, max] at which it is anomalous.
    :param max_unseen: Share of rows with categories the reference never had at which it is anomalous.
    :param max_anomalous_share: The share of anomalous columns the task tolerates.
    :param soft_fail: Skip the task instead of failing it.
    :param report_path: Write the HTML report there. (templated)
    """

    template_fields: Sequence[str] = ("reference", "current", "columns", "report_path", "catalog")
    ui_color = "#fef3c7"
    action = "anomaly.check"

    def __init__(
        self,
        *,
        max_null_increase: float = 0.1,
        max_out_of_range: float = 0.01,
        max_unseen: float = 0.01,
        max_anomalous_share: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_null_increase = max_null_increase
        self.max_out_of_range = max_out_of_range
        self.max_unseen = max_unseen
        self.max_anomalous_share = max_anomalous_share

    def _run(self, options: SourceOptions) -> CheckRun:
        from airflow_aisec.drift import AnomalyLimits, anomaly_check

        limits = AnomalyLimits(self.max_null_increase, self.max_out_of_range, self.max_unseen)
        return anomaly_check(
            self.reference,
            self.current,
            options,
            columns=self.columns,
            limits=limits,
            max_anomalous_share=self.max_anomalous_share,
            report_path=self.report_path,
        )
