"""The data-subject-request DAGs (``aisec_dsr_access``, ``aisec_dsr_erasure``, ``aisec_dsr_rectification``).

Each is triggered manually (UI form, REST API, ``aisec dsr submit``) with params validated by a JSON schema,
so a bad request is rejected when it is triggered. Shape::

    register >> approve >> process_dataset[one mapped task per part of each dataset] >> complete

``register`` splits the files of a dataset holding the subject into parts within the limits (at most
``max_files_per_task`` files or ``target_bytes_per_task`` bytes a part, at most ``max_groups`` parts); a
dataset within them is one part, so a small lake runs one task per dataset. A mapped task shows its dataset
and part (``orders 2/3``, or ``orders``); ``complete`` merges the parts into one outcome per dataset and
certifies each dataset once. An access request exports each dataset whole, in one task.

``approve`` (human in the loop) is left out when ``[aisec] dsr_approval`` is False, and does not wait for a
decision on a dry run, which changes nothing. The DAGs are manual-only and start unpaused. Runs of one DAG are
serialized (``max_active_runs=1``); should requests of two DAGs change the same file at once, the later
replacement sees the file changed, is refused, and its task is retried on the new version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Param
from airflow.task.trigger_rule import TriggerRule

from airflow_aisec import config
from airflow_aisec.dsr.contract import (
    APPROVAL_TASK,
    COMPLETE_TASK,
    DATASET_TASK,
    REGISTER_TASK,
    REGISTRATION_KEY,
    dag_id_for,
)
from airflow_aisec.dsr.request import REQUEST_ID, REQUEST_TYPES
from airflow_aisec.exceptions import AisecError
from airflow_aisec.io.groups import DEFAULT_MAX_FILES, DEFAULT_MAX_GROUPS, DEFAULT_TARGET_BYTES
from airflow_aisec.operators.dsr import (
    DsrApprovalOperator,
    DsrCompleteOperator,
    DsrDatasetOperator,
    DsrRegisterOperator,
)

# The approval form shows the registration's summary (counts per dataset, never an identifier).
_REGISTRATION_SUMMARY = (
    f"{{{{ ti.xcom_pull(task_ids='{REGISTER_TASK}', key='{REGISTRATION_KEY}')['summary'] }}}}"
)

# What a mapped dataset task shows in the UI: its dataset, and its part when the dataset is split.
_PART_LABEL = "{{ task.dataset }}{% if task.parts > 1 %} {{ task.part + 1 }}/{{ task.parts }}{% endif %}"

_DOCS = {
    "access": "Export everything the catalog's datasets hold about one data subject, encrypted.",
    "erasure": "Erase one data subject from every dataset of the catalog, verify, and certify it.",
    "rectification": "Correct fields of one data subject in every dataset that holds them, and certify it.",
}


# Read at every parse of the DAG files, so bounded: about 0.3 s for a catalog this size, under 2 s for any
# YAML of it. A larger catalog leaves the form without choices; the request is checked when it runs.
FORM_CATALOG_BYTES = 64 << 10


# ``request.PSEUDONYM`` for the trigger form (JSON schema patterns have no flags, hence the classes).
_NOT_A_PSEUDONYM: dict[str, Any] = {"not": {"pattern": r"^\s*[Hh][Mm][Aa][Cc]-[Ss][Hh][Aa]256:"}}


def _catalog_choices() -> tuple[list[str] | None, list[str] | None]:
    """Identity types and key names of the configured catalog, for the trigger form (None if unreadable)."""
    try:
        from airflow_aisec.catalog import load_catalog

        catalog = load_catalog(config.catalog_path(), config.catalog_vars(), max_bytes=FORM_CATALOG_BYTES)
    except (AisecError, OSError):
        return None, None
    return list(catalog.subjects.identities), sorted(catalog.keys)


def _enum(choices: list[str] | None) -> dict[str, Any]:
    return {"enum": choices} if choices else {}


def dsr_params(request_type: str) -> dict[str, Param]:
    """The DAG params (JSON schema) of a request of ``request_type``."""
    identities, keys = _catalog_choices()
    params = {
        "identity_type": Param(
            identities[0] if identities else "customer_id", type="string", title="Identity type",
            description="How the subject is identified (the catalog's subjects.identities).",
            **_enum(identities),
        ),
        "identity_value": Param(
            type="string", minLength=1, maxLength=1024, title="Identity value",
            description="The subject's identifier, e.g. their e-mail address, not a pseudonym. Never logged.",
            **_NOT_A_PSEUDONYM,
        ),
        "request_id": Param(
            type="string", pattern=REQUEST_ID.pattern, title="Request id",
            description="Your reference of the request; running the same id again changes nothing twice.",
        ),
        "reason": Param(type="string", minLength=1, maxLength=2000, title="Reason",
                        description="Why (e.g. the ticket of the request); recorded in the audit log."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Report what would change, change nothing."),
    }  # fmt: skip
    if request_type == "rectification":
        params["changes"] = Param(
            type="object", minProperties=1, additionalProperties={"type": "string"}, title="Changes",
            description='The corrected values, field → new value, e.g. {"phone": "+1 212-555-0100"}.',
        )  # fmt: skip
    if request_type == "access":
        params["export_key"] = Param(
            type="string", minLength=1, title="Export key",
            description="The catalog key the export package is encrypted with.",
            **_enum(keys),
        )  # fmt: skip
    return params


def build_dsr_dag(
    request_type: str,
    *,
    approval: bool | None = None,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
    **dag_args: Any,
) -> DAG:
    """The DAG ``aisec_dsr_<request_type>``; ``approval`` defaults to ``[aisec] dsr_approval``. The limits
    split a dataset's files into parts (None: no limit; see the module docstring)."""
    if request_type not in REQUEST_TYPES:
        raise ValueError(f"unknown request type {request_type!r} (known: {', '.join(REQUEST_TYPES)})")
    if approval is None:
        approval = config.get_bool("dsr_approval")
    settings: dict[str, Any] = {
        "dag_id": dag_id_for(request_type),
        "description": _DOCS[request_type],
        "schedule": None,
        "start_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "catchup": False,
        "max_active_runs": 1,
        # Manual-only: a paused DAG would queue a submitted request until someone unpauses it.
        "is_paused_upon_creation": False,
        "default_args": {"owner": "privacy-office", "retries": 0},
        "tags": ["aisec", "dsr", "privacy"],
        "params": dsr_params(request_type),
        "render_template_as_native_obj": False,
        "doc_md": __doc__,
        **dag_args,
    }
    with DAG(**settings) as dag:
        register = DsrRegisterOperator(
            task_id=REGISTER_TASK, request_type=request_type, max_files_per_task=max_files_per_task,
            target_bytes_per_task=target_bytes_per_task, max_groups=max_groups,
        )  # fmt: skip
        process = DsrDatasetOperator.partial(
            task_id=DATASET_TASK, request_type=request_type, retries=2,
            retry_delay=dt.timedelta(seconds=30), map_index_template=_PART_LABEL,
        ).expand_kwargs(register.output)  # fmt: skip
        complete = DsrCompleteOperator(
            task_id=COMPLETE_TASK, request_type=request_type, trigger_rule=TriggerRule.NONE_SKIPPED
        )
        if approval:
            approve = DsrApprovalOperator(
                task_id=APPROVAL_TASK, request_type=request_type,
                subject=f"Approve {request_type} request {{{{ params.request_id }}}}",
                body=_REGISTRATION_SUMMARY,
            )  # fmt: skip
            register >> approve >> process
        else:
            register >> process
        process >> complete
    return dag
