"""Operators of the data-subject-request DAGs: register, approve, one task per dataset, complete.

They are thin wrappers of ``airflow_aisec.dsr`` (the same steps ``aisec dsr run`` takes in one process; what
the tasks hand each other is ``dsr.registration``, the approver's decision ``dsr.approval``):

* ``DsrRegisterOperator`` checks the request (the DAG's params) against the catalog, records it with its
  deadline, resolves the subject across the catalog and returns what the other tasks need: the parts of the
  datasets to map over (a large dataset's files split into parts, ``dsr.parts``; a dataset within the limits
  is one), where the subject was found (files and counts), and the subject's identifiers *sealed* under a
  keyring key of the request's own, destroyed when the request is done — XCom never holds a raw identifier,
  and once the request is done not even the keyring opens what it holds.
* ``DsrApprovalOperator`` is Airflow's ``ApprovalOperator`` that asks only the catalog's privacy office,
  refuses an answer from anyone else, and records the decision and who made it; a dry run does not wait.
* ``DsrDatasetOperator`` is mapped over the parts (dynamic task mapping, ``.expand_kwargs``): it brings its
  part of the dataset's match up to date and erases, rectifies or exports the subject there.
* ``DsrCompleteOperator`` merges the parts' outcomes into one per dataset, verifies by re-reading, shreds
  per-subject keys, records the outcome and writes the signed certificate to
  ``<[aisec] dsr_exports>/certificates/<request id>.json``; it returns the certificate.

The raw identity comes from the run's params and is read in ``execute`` only: operator fields are never
templated with it, so it is not rendered into the UI's task details, logs or XCom.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from airflow_aisec import config
from airflow_aisec.dsr.contract import (
    APPROVAL_TASK,
    DATASET_TASK,
    DECISION_KEY,
    GO_DECISIONS,
    OUTCOME_KEY,
    REGISTER_TASK,
    REGISTRATION_KEY,
)
from airflow_aisec.exceptions import AisecError, DsrError
from airflow_aisec.io.groups import DEFAULT_MAX_FILES, DEFAULT_MAX_GROUPS, DEFAULT_TARGET_BYTES
from airflow_aisec.operators.base import AisecCatalogOperator, task_actor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.dsr import DsrContext, DsrRequest, Resolution, StateStore
    from airflow_aisec.dsr.approvers import Approvers


class _DsrOperator(AisecCatalogOperator):
    """What the DSR operators share: the request from the run's params, and the request's context.

    :param request_type: ``access``, ``erasure`` or ``rectification``.
    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Catalog placeholder values. (templated)
    :param keyring: Local keyring (pseudonyms, sealed state, signing key); default ``[aisec] keyring``.
    :param holds: Per-subject holds file; default ``[aisec] holds``.
    :param exports: Folder or ``s3://`` prefix of export packages and certificates; default
        ``[aisec] dsr_exports``.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` datasets.
    """

    template_fields: Sequence[str] = ("catalog", "variables")
    ui_color = "#fde2e4"

    def __init__(
        self,
        *,
        request_type: str,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        keyring: str | None = None,
        holds: str | None = None,
        exports: str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.request_type = request_type
        self.keyring = keyring
        self.holds = holds
        self.exports = exports

    def _request(self, context: Context, catalog: Catalog, received_at: dt.datetime | None) -> DsrRequest:
        from airflow_aisec.dsr import make_request

        params: Mapping[str, Any] = context.get("params") or {}
        return make_request(
            catalog, self.request_type, str(params.get("identity_type", "")),
            str(params.get("identity_value", "")), request_id=str(params.get("request_id") or "") or None,
            reason=str(params.get("reason") or ""), dry_run=bool(params.get("dry_run", False)),
            changes=params.get("changes") or None, export_key=params.get("export_key") or None,
            received_at=received_at, deadline_days=config.get_int("dsr_deadline_days"),
        )  # fmt: skip

    def _context(self, context: Context, log: AuditLog, received_at: dt.datetime | None) -> DsrContext:
        from airflow_aisec.crypto.keyring import LocalKeyring
        from airflow_aisec.dsr import DsrContext, active_holds
        from airflow_aisec.dsr.index import SubjectIndex

        catalog = self._load_catalog()
        request = self._request(context, catalog, received_at)
        holds = active_holds(config.get_setting("holds", self.holds))
        ring = LocalKeyring(config.get_setting("keyring", self.keyring))
        s3 = self._s3_options(catalog, config.get_setting("dsr_index"), self._exports())
        return DsrContext(
            catalog, request, keyring=ring, audit=log, s3=s3, holds=holds,
            index=SubjectIndex(config.get_setting("dsr_index"), ring, s3=s3),
            keys=self._catalog_keys(catalog, str(ring.path), s3),
        )  # fmt: skip

    def _exports(self) -> str:
        return config.get_setting("dsr_exports", self.exports)

    def _registered(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.dsr.registration import checked

        return checked(context["ti"].xcom_pull(task_ids=REGISTER_TASK, key=REGISTRATION_KEY))

    def _state(self, ctx: DsrContext) -> StateStore:
        from airflow_aisec.dsr import StateStore

        return StateStore(config.get_setting("dsr_state"), ctx.keyring)

    def _resolution(self, ctx: DsrContext, registered: Mapping[str, Any]) -> Resolution:
        from airflow_aisec.dsr.registration import resolution_of

        return resolution_of(ctx, self._state(ctx), registered)

    def _registered_context(
        self, context: Context, log: AuditLog, registered: Mapping[str, Any]
    ) -> DsrContext:
        """The context of the registered request, received when the register task received it."""
        from airflow_aisec.dsr.registration import received_at

        return self._context(context, log, received_at(registered))


class DsrRegisterOperator(_DsrOperator):
    """
    Check and record a data-subject request, and find the subject in every dataset of the catalog.

    The request comes from the run's params: ``identity_type``, ``identity_value``, ``request_id``,
    ``reason``, ``dry_run``, and ``changes`` (rectification) or ``export_key`` (access). An invalid request
    fails here with a message naming each problem (never the values). Returns the parts to map over,
    ``{"dataset", "part", "parts"}`` each; XCom ``registration`` holds a summary for the approver, where the
    subject was found, the files of each part, and their identifiers sealed.

    The files of a dataset holding the subject, sorted by URI, are split into parts within the limits below
    (as ``ListFileGroupsOperator`` groups files); an access request is not split.

    :param max_files_per_task: Most files in a part.
    :param target_bytes_per_task: Most bytes in a part (a larger file is a part of its own).
    :param max_groups: Most parts of one dataset; more files are spread over this many.
    """

    def __init__(
        self,
        *,
        max_files_per_task: int | None = DEFAULT_MAX_FILES,
        target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
        max_groups: int | None = DEFAULT_MAX_GROUPS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_files_per_task = max_files_per_task
        self.target_bytes_per_task = target_bytes_per_task
        self.max_groups = max_groups

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Record, resolve, split, seal; return the parts to map over (the rest goes to XCom
        ``registration``)."""
        from airflow_aisec.dsr import begin
        from airflow_aisec.dsr.parts import PartLimits
        from airflow_aisec.dsr.registration import mapped, registration

        limits = PartLimits(self.max_files_per_task, self.target_bytes_per_task, self.max_groups)
        run = context.get("dag_run")
        received = getattr(run, "run_after", None) or dt.datetime.now(dt.UTC)
        with self.audited(context) as log:
            ctx = self._context(context, log, received)
            state = self._state(ctx)
            begun = begin(ctx, state=state)
            registered = registration(ctx, begun, state, begun.plan(limits))
        self.log.info("request %s: %s", ctx.request.request_id, registered["summary"])
        context["ti"].xcom_push(key=REGISTRATION_KEY, value=registered)
        return mapped(registered)  # what the DAG maps over


class DsrApprovalOperator(ApprovalOperator):
    """
    Airflow's human-in-the-loop ``ApprovalOperator`` for a request; the decision is recorded in the audit log.

    Only the catalog's privacy office may decide: its users (and its roles' users, where the auth manager
    lists them) are the task's assigned users, and an answer by anyone else is refused when the task resumes:
    recorded as ``refused``, the task fails and nothing is approved or rejected. Without a privacy office,
    any user Airflow lets answer may decide (a warning). Rejecting skips the tasks that would change or
    export data (and the certificate).

    :param catalog: Catalog file naming the privacy office; default ``[aisec] catalog``. (templated)
    :param variables: Catalog placeholder values. (templated)
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "catalog", "variables")

    def __init__(
        self,
        *,
        request_type: str,
        audit_conn_id: str | None = None,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_type = request_type
        self.audit_conn_id = audit_conn_id
        self.catalog = catalog
        self.variables = variables

    def _approvers(self) -> Approvers:
        """Who may decide, from the catalog as it is now (read at every ask and every answer)."""
        from airflow_aisec.catalog import load_catalog
        from airflow_aisec.operators.privacy_office import approvers_of

        catalog = load_catalog(config.catalog_path(self.catalog), config.catalog_vars(self.variables))
        return approvers_of(catalog)

    def _assign(self, approvers: Approvers) -> None:
        """Ask the privacy office only; fail before asking when it comes to no Airflow user."""
        if not approvers.declared:
            self.log.warning("the catalog declares no privacy_office: any user Airflow lets answer decides")
            return
        if approvers.unresolved_roles:
            self.log.warning("privacy office roles %s: the auth manager does not list their users, so they "
                             "cannot decide", ", ".join(approvers.unresolved_roles))  # fmt: skip
        if not approvers.users:
            raise DsrError(
                "the catalog's privacy_office comes to no Airflow user (name user ids under "
                "privacy_office.users): no one could decide the request"
            )
        self.assigned_users = approvers.assigned_users()  # type: ignore[assignment]
        self.log.info("asking the privacy office: %s", ", ".join(approvers.ids))

    def execute(self, context: Context) -> Any:
        """Wait for the approver, except on a dry run (it changes nothing): recorded as such, no wait."""
        from airflow_aisec.dsr.approval import needs_approval, record_decision
        from airflow_aisec.hooks.audit import AuditLogHook

        # Decided on the request as registered (and checked), not on the raw run parameters.
        registered = context["ti"].xcom_pull(task_ids=REGISTER_TASK, key=REGISTRATION_KEY) or {}
        if needs_approval(registered.get("request")):
            self._assign(self._approvers())
            return super().execute(context)
        with AuditLogHook(self.audit_conn_id).get_log(actor=task_actor(context)) as audit:
            record_decision(
                audit, self.request_type, registered.get("request") or {}, run_id=context["run_id"],
                decision="dry_run", responded_by=None,
            )  # fmt: skip
        context["ti"].xcom_push(key=DECISION_KEY, value="dry_run")
        self.log.info("dry run: nothing changes, no approval asked")
        return None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Record who approved or rejected, then let ``ApprovalOperator`` proceed or skip; refuse (fail) an
        answer from outside the privacy office."""
        from airflow_aisec.dsr.approval import record_decision
        from airflow_aisec.hooks.audit import AuditLogHook

        if "error" not in event:
            # Airflow's own checks of the answer first: an answer it refuses decides nothing, so no decision
            # is recorded or handed to the later tasks (the task fails with Airflow's error).
            self.validate_chosen_options(event.get("chosen_options") or [])
            self.validate_params_input(event.get("params_input") or {})
        registered = context["ti"].xcom_pull(task_ids=REGISTER_TASK, key=REGISTRATION_KEY) or {}
        request = registered.get("request") or {}
        chosen = (event.get("chosen_options") or [None])[0]
        decision = "approved" if chosen == self.APPROVE else "rejected" if chosen == self.REJECT else "none"
        approvers = self._approvers()
        decider = approvers.decider(event.get("responded_by_user"))
        # A timeout is no one's answer: Airflow's own handling of it follows.
        answered = "error" not in event and not event.get("timedout")
        refused = answered and approvers.declared and not decider.in_office
        with AuditLogHook(self.audit_conn_id).get_log(actor=task_actor(context)) as audit:
            record_decision(
                audit, self.request_type, request, run_id=context["run_id"],
                decision="refused" if refused else decision, responded_by=decider.label, decided_by=decider,
                approvers=approvers, attempt=int(getattr(context["ti"], "try_number", 1) or 1),
            )  # fmt: skip
        context["ti"].xcom_push(key=DECISION_KEY, value="refused" if refused else decision)
        if refused:
            raise DsrError(
                f"request {request.get('request_id')}: answered by Airflow user {decider.id!r}, who is not "
                "in the catalog's privacy office: refused, nothing was approved or rejected"
            )
        if decision != "approved" and request.get("request_id"):
            try:
                self._retire(request)
            except (AisecError, OSError) as exc:
                self.log.warning("request %s: its sealed identifiers were not retired (%s)",
                                 request.get("request_id"), exc.__class__.__name__)  # fmt: skip
        return super().execute_complete(context, event)

    def _retire(self, request: Mapping[str, Any]) -> None:
        from airflow_aisec.crypto.keyring import LocalKeyring
        from airflow_aisec.dsr import StateStore
        from airflow_aisec.dsr.approval import retire

        store = StateStore(config.get_setting("dsr_state"), LocalKeyring(config.get_setting("keyring")))
        retire(store, self.request_type, request)


class DsrDatasetOperator(_DsrOperator):
    """
    Carry the request out on one dataset, or one part of its files (mapped over the parts the register task
    returns, with ``.expand_kwargs``).

    Erasure: delete or anonymize the subject's rows per the catalog, mask mentions in free text, respect
    legal holds; rectification: set the new values; access: write the encrypted export files. A part changes
    only its own files (as the registration lists them) and settles only their open intents. The outcome (no
    values) is pushed to XCom under ``outcome``; a part that could not be done fails the task after that, so
    the certificate still reports it.

    :param dataset: The catalog dataset to process. (templated)
    :param part: Which part of the dataset's files (from 0); default 0.
    :param parts: How many parts the registration splits the dataset into; default 1 (the whole dataset).
    """

    template_fields: Sequence[str] = (*_DsrOperator.template_fields, "dataset")

    def __init__(self, *, dataset: str, part: int = 0, parts: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.part = part
        self.parts = parts

    def execute(self, context: Context) -> dict[str, Any]:
        """Process one part of one dataset."""
        from airflow_aisec.dsr import carry_out
        from airflow_aisec.dsr.parts import part_of
        from airflow_aisec.dsr.registration import plan_of
        from airflow_aisec.dsr.run import rescan

        registered = self._registered(context)
        with self.audited(context) as log:
            ctx = self._registered_context(context, log, registered)
            resolution = self._resolution(ctx, registered)
            if self.dataset not in resolution.datasets:
                raise DsrError(f"dataset {self.dataset!r} was not part of the request's resolution")
            part = part_of(plan_of(registered), self.dataset, int(self.part), int(self.parts))
            ids = resolution.identifiers
            match = rescan(ctx, ids, resolution.datasets[self.dataset], part)
            outcome = carry_out(ctx, match, ids, exports=self._exports(), part=part)
        result = outcome.as_dict()
        context["ti"].xcom_push(key=OUTCOME_KEY, value=result)
        self.log.info(
            "%s: %s, %d row(s), %d file(s)",
            part.label,
            outcome.status,
            outcome.rows_affected,
            len(outcome.files),
        )
        if outcome.status == "failed":
            raise DsrError(outcome.error or f"dataset {part.label}: the request could not be carried out")
        return result


class DsrCompleteOperator(_DsrOperator):
    """
    Merge the outcomes of every part of every dataset (one per dataset; a missing part fails it), verify
    every dataset by re-reading it, shred per-subject keys, record the outcome and issue the certificate
    (signed with the audit log's key). Returns ``{"status", "certificate_uri", "certificate"}``; fails when
    the request failed, after the certificate saying so is written.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        """Complete the request."""
        from airflow_aisec.dsr import DatasetOutcome, complete
        from airflow_aisec.dsr.registration import plan_of
        from airflow_aisec.dsr.run import certificate_target, save_certificate

        registered = self._registered(context)
        # A list of task ids pulls the value of every map index that pushed one (a list, not a lazy sequence).
        pulled = context["ti"].xcom_pull(task_ids=[DATASET_TASK], key=OUTCOME_KEY) or []
        outcomes = [DatasetOutcome.from_dict(o) for o in pulled if isinstance(o, dict)]
        with self.audited(context) as log:
            ctx = self._registered_context(context, log, registered)
            resolution = self._resolution(ctx, registered)
            document = complete(
                ctx, resolution, outcomes, exports=self._exports(), state=self._state(ctx),
                approved=self._approved(context), parts=plan_of(registered),
            )  # fmt: skip
        status = document["certificate"]["status"]
        target = certificate_target(self._exports(), ctx.request.request_id, ctx.s3)
        uri = save_certificate(document, target, ctx.s3)
        self.log.info("request %s: %s; certificate %s", ctx.request.request_id, status, uri)
        result = {"status": status, "certificate_uri": uri, "certificate": document}
        if status == "failed":
            context["ti"].xcom_push(key="return_value", value=result)
            raise DsrError(f"request {ctx.request.request_id} failed; see the certificate {uri}")
        return result

    def _approved(self, context: Context) -> bool:
        """Whether the request went ahead: no approval step in this DAG, or its decision let it. This task
        also runs after an approval that failed (refused, timed out): it then certifies the failure and
        destroys nothing."""
        dag = getattr(self, "_dag", None)  # None: not in a DAG (a test of the operator alone)
        if dag is None or APPROVAL_TASK not in dag.task_ids:
            return True
        return context["ti"].xcom_pull(task_ids=APPROVAL_TASK, key=DECISION_KEY) in GO_DECISIONS


class DsrIndexOperator(AisecCatalogOperator):
    """
    Build or refresh the subject index of the catalog's datasets (``aisec dsr index``), so data-subject
    requests read only the files that may hold their subject. Files indexed at their current version are
    kept, new and changed ones indexed, vanished ones dropped; recorded in the audit log as
    ``dsr.index`` (what was indexed, never a value).

    :param datasets: Catalog datasets to index; default: every dataset with identity or reference columns.
        (templated)
    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Catalog placeholder values. (templated)
    :param keyring: Local keyring (the index key, encrypted datasets); default ``[aisec] keyring``.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` datasets and index.
    """

    template_fields: Sequence[str] = ("datasets", "catalog", "variables")
    ui_color = "#fde2e4"

    def __init__(
        self,
        *,
        datasets: Sequence[str] | None = None,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        keyring: str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.datasets = datasets
        self.keyring = keyring

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Refresh the index; return what was done per dataset."""
        from airflow_aisec.crypto.keyring import LocalKeyring
        from airflow_aisec.dsr.index import SubjectIndex, refresh_catalog
        from airflow_aisec.dsr.scan import catalog_scanner

        catalog = self._load_catalog()
        ring = LocalKeyring(config.get_setting("keyring", self.keyring))
        s3 = self._s3_options(catalog, config.get_setting("dsr_index"))
        index = SubjectIndex(config.get_setting("dsr_index"), ring, s3=s3)
        scanner = catalog_scanner(self._catalog_keys(catalog, str(ring.path), s3))
        stats = refresh_catalog(catalog, index, scanner, self.datasets)
        done = [s.as_dict() for s in stats]
        for item in done:
            self.log.info("subject index of %s: %s", item["dataset"], item)
        self.record(
            context, "dsr.index", step="refresh", outputs=[{"uri": index.root.uri}],
            details={"subject_index": done},
        )  # fmt: skip
        return done
