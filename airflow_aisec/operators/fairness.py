"""``BiasCheckOperator``: compare a model's predictions across the groups of a protected attribute."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import BiasThresholdError, FairnessError
from airflow_aisec.fairness.counts import DEFAULT_MAX_GROUPS
from airflow_aisec.fairness.metrics import DEFAULT_MAX_DIFFERENCE, DEFAULT_MIN_GROUP_SIZE, FOUR_FIFTHS
from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.catalog import Catalog
    from airflow_aisec.fairness import BiasReport


class BiasCheckOperator(AisecCatalogOperator):
    """
    Measure, in one pass over a catalog dataset holding predictions, the selection rate of each group of its
    protected attributes (and with labels, their true- and false-positive rates), and check the
    selection-rate ratio (the four-fifths rule), the demographic-parity difference and the equalized-odds
    difference against thresholds.

    A threshold passed fails the task with ``BiasThresholdError``, or with ``soft_fail`` skips it. Either way
    the result (JSON: group labels as the catalog allows, sizes, rates, metrics, never a row) is pushed to
    XCom and recorded in the audit log as ``bias.check``. Groups smaller than ``min_group_size`` are shown by
    size only and not compared; fewer than two groups to compare fails the check, as nothing was measured.

    :param dataset: Catalog dataset holding the predictions and the protected attribute. (templated)
    :param prediction_column: Column of the predicted labels. (templated)
    :param label_column: Column of the true outcomes; without it only selection-rate metrics. (templated)
    :param protected_attribute: Attribute (or list of them) to compare groups of; default every column the
        catalog declares ``protected: true``. (templated)
    :param positive_label: The value of a positive (favourable) prediction and label.
    :param min_selection_rate_ratio: Lowest / highest selection rate must be at least this (None: not
        checked).
    :param max_demographic_parity_difference: Highest − lowest selection rate must be at most this.
    :param max_equalized_odds_difference: The larger of the TPR and FPR differences must be at most this
        (only with labels).
    :param min_group_size: Groups with fewer rows are reported by size only and not compared.
    :param soft_fail: Skip the task instead of failing it when a threshold is passed.
    :param input_uri: Where the data is, when not at the dataset's ``uri``. (templated)
    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Catalog placeholder values. (templated)
    :param keyring: Local keyring (encrypted datasets); default ``[aisec] keyring``.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` data.
    """

    template_fields: Sequence[str] = (
        "dataset", "prediction_column", "label_column", "protected_attribute", "input_uri", "catalog",
        "variables",
    )  # fmt: skip
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        dataset: str,
        prediction_column: str,
        label_column: str | None = None,
        protected_attribute: str | Sequence[str] | None = None,
        positive_label: Any = 1,
        min_selection_rate_ratio: float | None = FOUR_FIFTHS,
        max_demographic_parity_difference: float | None = DEFAULT_MAX_DIFFERENCE,
        max_equalized_odds_difference: float | None = DEFAULT_MAX_DIFFERENCE,
        min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
        max_groups: int = DEFAULT_MAX_GROUPS,
        soft_fail: bool = False,
        input_uri: str | None = None,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        keyring: str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.dataset = dataset
        self.prediction_column = prediction_column
        self.label_column = label_column
        self.protected_attribute = protected_attribute
        self.positive_label = positive_label
        self.min_selection_rate_ratio = min_selection_rate_ratio
        self.max_demographic_parity_difference = max_demographic_parity_difference
        self.max_equalized_odds_difference = max_equalized_odds_difference
        self.min_group_size = min_group_size
        self.max_groups = max_groups
        self.soft_fail = soft_fail
        self.input_uri = input_uri
        self.keyring = keyring

    def execute(self, context: Context) -> dict[str, Any]:
        """Check; raise ``BiasThresholdError`` (or skip, with ``soft_fail``) when a threshold is passed."""
        from airflow_aisec.fairness import BiasThresholds, check_dataset

        thresholds = BiasThresholds(
            self.min_selection_rate_ratio, self.max_demographic_parity_difference,
            self.max_equalized_odds_difference, self.min_group_size,
        )  # fmt: skip
        catalog = self._load_catalog()
        self._check_purpose(context, catalog, _dataset_name(catalog, self.dataset))
        s3 = self._s3_options(catalog, *([self.input_uri] if self.input_uri else []))
        keys = self._catalog_keys(catalog, self.keyring, s3)
        with self.audited(context) as log:
            report = check_dataset(
                catalog, self.dataset, self.prediction_column, label=self.label_column,
                attributes=self.protected_attribute, positive_label=self.positive_label,
                thresholds=thresholds, pseudonym=log.pseudonym, keys=keys,
                input_uri=self.input_uri, s3=s3, max_groups=self.max_groups,
            )  # fmt: skip
            self._lineage(catalog, report)
            outcome = "success" if report.passed else ("skipped" if self.soft_fail else "failure")
            fields = {**report.audit_fields(outcome), **self.lineage.entry_fields()}
            self.record(context, "bias.check", step=report.dataset, **fields)
        return self._outcome(context, report)

    def _lineage(self, catalog: Catalog, report: BiasReport) -> None:
        from airflow_aisec.lineage import DatasetRef

        columns = tuple(report.audit_fields()["columns"])
        name = self._dataset_at(catalog, report.uri) or report.dataset
        self.lineage.inputs = [DatasetRef(report.uri, name, columns=columns, location=report.uri)]

    def _outcome(self, context: Context, report: BiasReport) -> dict[str, Any]:
        result = report.as_dict()
        for attribute in report.attributes:
            for warning in attribute.warnings:
                self.log.warning("%s", warning)
        self.log.info("%s", report.summary())
        if report.passed:
            return result
        context["ti"].xcom_push(key="return_value", value=result)
        if self.soft_fail:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(report.summary())
        raise BiasThresholdError(report.summary())


def _dataset_name(catalog: Catalog, name: str) -> str:
    """``name`` if the catalog has that dataset, else a ``FairnessError`` naming the known ones."""
    try:
        return catalog.dataset(name).name
    except KeyError as e:
        raise FairnessError(str(e.args[0])) from None
