"""``RetentionEnforcementOperator``: purge the rows and files the catalog's retention rules expire."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.exceptions import DatasetIOError
from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RetentionEnforcementOperator(AisecBaseOperator):
    """
    Delete the rows whose retention column is older than the dataset's ``keep_for``, relative to the run's
    logical date, in every catalog dataset with a retention rule (or those named).

    Only files holding expired rows are rewritten (Parquet statistics skip the others unread); wholly expired
    files are deleted; dataset legal holds and per-subject holds (``aisec holds``) are honoured and reported;
    encrypted datasets stay encrypted. Each file is recorded in the audit log as intent, then outcome. Rows
    with unreadable dates are kept and the task fails after the safe part is done, naming dataset, file and
    column.

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
        super().__init__(**kwargs)
        self.datasets = datasets
        self.as_of = as_of
        self.catalog = catalog
        self.variables = variables
        self.holds = holds
        self.keyring = keyring
        self.aws_conn_id = aws_conn_id

    def _as_of(self, context: Context) -> dt.datetime:
        if self.as_of:
            moment = dt.datetime.fromisoformat(str(self.as_of))
        else:
            moment = (
                context.get("logical_date") or context.get("data_interval_end") or dt.datetime.now(dt.UTC)
            )
        from airflow_aisec.retention.core import as_utc

        return as_utc(moment)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan and apply; raise ``DatasetIOError`` naming the datasets that could not be fully enforced."""
        from airflow_aisec.catalog import load_catalog
        from airflow_aisec.crypto.keyring import LocalKeyring
        from airflow_aisec.hooks.lake import LakeHook
        from airflow_aisec.retention import HoldList, apply_catalog, plan_catalog

        catalog = load_catalog(config.catalog_path(self.catalog), config.catalog_vars(self.variables))
        as_of = self._as_of(context)
        ring = LocalKeyring(config.get_setting("keyring", self.keyring))
        needs_s3 = any(d.uri.startswith("s3://") for d in catalog.datasets.values())
        s3 = LakeHook(aws_conn_id=self.aws_conn_id).s3_options() if needs_s3 else None
        holds = HoldList(config.get_setting("holds", self.holds)).active(as_of.date())
        with self.audited(context) as log:
            plans = plan_catalog(
                catalog,
                as_of,
                holds=holds,
                pseudonymize=log.pseudonym,
                keyring=ring,
                s3=s3,
                datasets=self.datasets,
            )
            results = apply_catalog(plans, catalog, keyring=ring, audit=log)
        for result in results:
            self.log.info("%s", result.as_dict())
        failed = [r for r in results if r.failed]
        if failed:
            problems = "; ".join(f"{r.dataset}: {', '.join(r.errors) or 'failed'}" for r in failed)
            raise DatasetIOError(
                f"retention could not be fully enforced (expired rows were purged): {problems}"
            )
        return [r.as_dict() for r in results]
