"""``RetentionEnforcementOperator``: purge the rows and files the catalog's retention rules expire (its base,
``RetentionBaseOperator``, is shared with the fanned-out retention of ``fanout_retention``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.retention import DatasetResult, Hold


class RetentionBaseOperator(AisecCatalogOperator):
    """
    What the retention operators share: the catalog, the moment the rules are measured from, the holds and
    keys, and the report that fails naming the datasets not fully enforced.

    :param datasets: Catalog datasets to enforce; default: every dataset with a retention rule. (templated)
    :param as_of: ISO date/time the rules are measured from; default: the run's logical date. (templated)
    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Catalog placeholder values. (templated)
    :param holds: Per-subject holds file; default ``[aisec] holds``.
    :param keyring: Local keyring (pseudonyms, encrypted datasets); default ``[aisec] keyring``.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` datasets.
    """

    template_fields: Sequence[str] = ("datasets", "as_of", "catalog", "variables")
    ui_color = "#f3e8ff"

    def __init__(
        self,
        *,
        datasets: Sequence[str] | None = None,
        as_of: str | None = None,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        holds: str | None = None,
        keyring: str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.datasets = datasets
        self.as_of = as_of
        self.holds = holds
        self.keyring = keyring

    def _as_of(self, context: Context) -> dt.datetime:
        if self.as_of:
            moment = dt.datetime.fromisoformat(str(self.as_of))
        else:
            moment = (
                context.get("logical_date") or context.get("data_interval_end") or dt.datetime.now(dt.UTC)
            )
        from airflow_aisec.retention.dates import as_utc

        return as_utc(moment)

    def _holds(self, as_of: dt.datetime) -> dict[str, Hold]:
        """The per-subject holds in force on ``as_of``'s day (pseudonym → hold)."""
        from airflow_aisec.retention import HoldList

        return HoldList(config.get_setting("holds", self.holds)).active(as_of.date())

    def _report(self, results: Sequence[DatasetResult]) -> list[dict[str, Any]]:
        """Log each dataset's result; raise ``DatasetIOError`` naming those not fully enforced."""
        for result in results:
            self.log.info("%s", result.as_dict())
        failed = [r for r in results if r.failed]
        if failed:
            problems = "; ".join(f"{r.dataset}: {', '.join(r.errors) or 'failed'}" for r in failed)
            raise DatasetIOError(
                f"retention could not be fully enforced (expired rows were purged): {problems}"
            )
        return [r.as_dict() for r in results]


class RetentionEnforcementOperator(RetentionBaseOperator):
    """
    Delete the rows whose retention column is older than the dataset's ``keep_for``, relative to the run's
    logical date, in every catalog dataset with a retention rule (or those named).

    Only files holding expired rows are rewritten (Parquet statistics skip the others unread); wholly expired
    files are deleted; dataset legal holds and per-subject holds (``aisec holds``) are honoured and reported;
    encrypted datasets stay encrypted. Each file is recorded in the audit log as intent, then outcome. Rows
    with unreadable dates are kept and the task fails after the safe part is done, naming dataset, file and
    column. Takes the arguments of ``RetentionBaseOperator``; ``retention_in_parallel`` fans it out by file.
    """

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan and apply; raise ``DatasetIOError`` naming the datasets that could not be fully enforced."""
        from airflow_aisec.retention import apply_catalog, plan_catalog

        catalog = self._load_catalog()
        as_of = self._as_of(context)
        s3 = self._s3_options(catalog)
        keys = self._catalog_keys(catalog, self.keyring, s3)
        with self.audited(context) as log:
            plans = plan_catalog(
                catalog,
                as_of,
                holds=self._holds(as_of),
                pseudonymize=log.pseudonym,
                keys=keys,
                s3=s3,
                datasets=self.datasets,
            )
            results = apply_catalog(plans, catalog, keys=keys, audit=log)
        return self._report(results)
