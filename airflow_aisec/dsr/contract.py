"""The shape of the data-subject-request DAGs that their builder, the REST client and the demo agree on.

``operators.dsr_dag`` builds the DAGs with these ids; ``dsr.client`` (``aisec dsr submit``) triggers,
approves and reads them by the same ids, without importing Airflow.
"""

from __future__ import annotations

DAG_PREFIX = "aisec_dsr_"
INDEX_DAG_ID = "aisec_dsr_index"
REGISTER_TASK = "register"
APPROVAL_TASK = "approve"
DATASET_TASK = "process_dataset"
COMPLETE_TASK = "complete"
# XCom key of the registration the approval form shows and every later task reads.
REGISTRATION_KEY = "registration"
# XCom key of a dataset task's outcome, which the complete task reads.
OUTCOME_KEY = "outcome"
# XCom key of the approval task's decision: the complete task destroys keys only after an approval.
DECISION_KEY = "decision"
# Decisions after which a request may change data (a dry run changes none).
GO_DECISIONS = ("approved", "dry_run")


def dag_id_for(kind: str) -> str:
    """The DAG that carries out requests of ``kind``: ``aisec_dsr_erasure`` etc."""
    return f"{DAG_PREFIX}{kind}"
