"""The bases of the aisec operators: audited steps and OpenLineage facets (every operator), and the catalog,
the lake its datasets are in and its keys (the operators over catalog datasets)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_aisec import config
from airflow_aisec.lineage import StepLineage

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.governance.consent import ConsentCounts, ConsentFilter
    from airflow_aisec.io import FileInfo, Location, S3Options


def task_actor(context: Context | dict[str, Any]) -> dict[str, Any]:
    """The audit actor of the running task instance."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return {}
    return {
        "kind": "airflow",
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": getattr(ti, "map_index", -1),
        "try": getattr(ti, "try_number", None),
    }


class AisecBaseOperator(BaseOperator):
    """
    Records what the operator does in the audit log and reports lineage to OpenLineage.

    Subclasses call ``self.record(context, action, step=..., **fields)`` for each step and fill
    ``self.lineage``; entries carry the task instance as actor and an idempotency key, so a retried task does
    not duplicate what an earlier try already recorded. The log is checkpointed when the task ends.

    :param audit_conn_id: Airflow connection of the audit log; default ``[aisec] audit_log``.
    """

    def __init__(self, *, audit_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit_conn_id = audit_conn_id
        self.lineage = StepLineage()
        self._audit: AuditLog | None = None

    @contextlib.contextmanager
    def audited(self, context: Context) -> Iterator[AuditLog]:
        """Keep the audit log open for the block and sign a checkpoint when it ends."""
        from airflow_aisec.hooks.audit import AuditLogHook

        self._audit = AuditLogHook(self.audit_conn_id).get_log(actor=task_actor(context))
        try:
            yield self._audit
        finally:
            audit, self._audit = self._audit, None
            audit.close()

    def record(self, context: Context, action: str, *, step: str = "", **fields: Any) -> int:
        """Append an entry for this task; the same step of the same task instance is recorded once."""
        if self._audit is None:
            with self.audited(context):
                return self.record(context, action, step=step, **fields)
        actor = task_actor(context)
        if not actor:  # run outside a task instance: nothing to deduplicate against
            return self._audit.append(action, **fields)
        key = "/".join(str(actor[part]) for part in ("dag_id", "run_id", "task_id", "map_index"))
        if fields.get("outcome") == "failure":
            step = f"{step}/try-{actor.get('try')}"  # every failed try is worth its own entry
        return self._audit.append(action, idempotency_key=f"{key}/{action}/{step}", **fields)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs, outputs and column lineage (masked columns flagged) of what the task did."""
        from airflow_aisec.operators.openlineage import operator_lineage

        return operator_lineage(self.lineage)


class AisecCatalogOperator(AisecBaseOperator):
    """
    An operator over the privacy catalog's datasets: the catalog, and where the datasets are (local paths, or
    ``s3://`` with the credentials of an Airflow AWS connection).

    :param catalog: Catalog file; default ``[aisec] catalog``. (templated in subclasses)
    :param variables: Values of ``{name}`` placeholders, over ``[aisec] catalog_vars``. (templated in
        subclasses)
    :param aws_conn_id: Airflow AWS connection for ``s3://`` datasets; None uses the boto3 chain.
    :param purpose: Why the task reads catalog data (a Fides data use or a catalog purpose), checked against
        each dataset's ``purposes`` by the operators that read dataset contents; default ``aisec_purpose``.
    :param aisec_purpose: The purpose of every task of a DAG, given in its ``default_args``; without either,
        ``aisec_purpose`` in the run's params.
    """

    def __init__(
        self,
        *,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        aws_conn_id: str | None = "aws_default",
        purpose: str | None = None,
        aisec_purpose: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.catalog = catalog
        self.variables = variables
        self.aws_conn_id = aws_conn_id
        self.purpose = purpose
        self.aisec_purpose = aisec_purpose
        self._consent: ConsentFilter | None = None

    def _task_purpose(self, context: Context) -> str | None:
        """The purpose this task reads for: ``purpose``, else ``aisec_purpose``, else the run's params'."""
        params = context.get("params") or {}
        declared = self.purpose or self.aisec_purpose or params.get("aisec_purpose")
        return str(declared) if declared else None

    def _check_purpose(self, context: Context, catalog: Catalog, dataset: str) -> None:
        """Record whether the task may read ``dataset`` for its purpose; a refusal fails the task with a
        ``PurposeError`` before anything is read."""
        from airflow_aisec.governance import decide_purpose

        decision = decide_purpose(
            catalog, dataset, self._task_purpose(context), task=self._task_name(context)
        )
        self.record(context, "purpose.check", step=dataset, **decision.audit_fields())
        if not decision.allowed:
            raise decision.error()
        self._consent = self._consent_filter(context, catalog, dataset)

    # Whether the operator reads through ``_consent_reader``, keeping only consenting subjects' rows; one that
    # does not is refused a purpose that needs consent before it reads.
    filters_by_consent = False

    def _consent_filter(self, context: Context, catalog: Catalog, dataset: str) -> ConsentFilter | None:
        """The consent filter of this task's read of ``dataset`` (None: its purpose needs no consent)."""
        from airflow_aisec.catalog.consent import consent_purpose
        from airflow_aisec.exceptions import ConsentError
        from airflow_aisec.governance.consent import FILTER_ACTION, consent_filter, refusal_fields

        purpose = self._task_purpose(context)
        needed_for = consent_purpose(catalog, purpose) if purpose else None
        if needed_for is None:
            return None
        task = self._task_name(context)
        try:
            if not self.filters_by_consent:
                raise ConsentError(
                    f"task {task}: purpose {purpose!r} needs consent ({needed_for!r} says "
                    f"needs_consent), and {type(self).__name__} cannot keep only consenting subjects' rows: "
                    f"read dataset {dataset!r} for it with PIIScanOperator or "
                    "airflow_aisec.governance.read_dataset"
                )
            s3 = self._s3_options(catalog)
            return consent_filter(self._catalog_keys(catalog, s3=s3), dataset, purpose, s3=s3)
        except ConsentError as e:
            fields = refusal_fields(dataset, purpose, e, task)
            self.record(context, FILTER_ACTION, step=dataset, **fields)
            raise

    def _consent_reader(self, context: Context, reader: DatasetReader | None) -> Any:
        """``reader`` (None: plain files) keeping only consenting subjects' rows when the purpose needs
        consent, each file's counts recorded as ``consent.filter``; else ``reader`` itself."""
        consent = self._consent
        if consent is None:
            return reader
        from airflow_aisec.crypto.datasets import DatasetReader
        from airflow_aisec.governance.consent import FILTER_ACTION, ConsentReader

        def on_file(info: FileInfo, counts: ConsentCounts, complete: bool) -> None:
            fields = consent.audit_fields(counts, complete=complete, task=self._task_name(context))
            fields["inputs"] = [{"uri": info.uri, "dataset": consent.dataset}]
            self.record(context, FILTER_ACTION, step=f"{consent.dataset}/{info.uri}", **fields)

        return ConsentReader(reader or DatasetReader(None), consent, on_file)

    def _task_name(self, context: Context) -> str:
        dag_id = task_actor(context).get("dag_id")
        return f"{dag_id}.{self.task_id}" if dag_id else self.task_id

    def _catalog_path(self) -> str:
        """The catalog file: ``catalog``, else ``[aisec] catalog``."""
        return config.catalog_path(self.catalog)

    def _catalog_vars(self) -> dict[str, str]:
        """The placeholder values: ``variables`` over ``[aisec] catalog_vars``."""
        return config.catalog_vars(self.variables)

    def _load_catalog(self) -> Catalog:
        """The catalog, loaded and checked (``CatalogError`` naming file, field and line otherwise)."""
        from airflow_aisec.catalog import load_catalog

        return load_catalog(self._catalog_path(), self._catalog_vars())

    def _s3_options(self, catalog: Catalog, *roots: str) -> S3Options | None:
        """The connection's S3 options when a dataset of ``catalog`` or one of ``roots`` is on S3, else None
        (no connection is looked up for a lake without S3)."""
        places = [d.uri for d in catalog.datasets.values()] + list(roots)
        if not any(place.startswith("s3://") for place in places):
            return None
        from airflow_aisec.hooks.lake import LakeHook

        return LakeHook(aws_conn_id=self.aws_conn_id).s3_options()

    def _location(self, uri: str) -> Location:
        """A dataset location; ``s3://`` ones carry the connection's options."""
        from airflow_aisec.hooks.lake import LakeHook

        return LakeHook(aws_conn_id=self.aws_conn_id).location(uri)

    @staticmethod
    def _dataset_at(catalog: Catalog, uri: str) -> str | None:
        """The catalog dataset whose location is ``uri`` or holds it (a file of it), for lineage names."""
        return catalog.dataset_at(uri)

    def _catalog_keys(
        self, catalog: Catalog, keyring: str | None = None, s3: S3Options | None = None
    ) -> KeySource:
        """The catalog's keys (``KeySource``): ``aws-kms`` ones through each key's ``aws_conn_id``, else this
        task's connection; ``keyring`` over ``[aisec] keyring``; ``s3`` reaches ``s3://`` subject keys."""
        from airflow_aisec.hooks.kms import key_source

        return key_source(catalog, keyring, aws_conn_id=self.aws_conn_id, s3=s3)
