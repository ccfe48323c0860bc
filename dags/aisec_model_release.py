"""Release a small model trained on masked data: features, train, sign, drift check, verify, publish, card.

The support team's ticket-triage model learns, from the masked support tickets (``support_tickets_masked``,
written by ``aisec_privacy_pipeline``), whether a ticket is about billing. Features are counts only (length,
words, masked entities, hour, weekday): no text reaches the model. The older tickets train it; the newest
quarter stands for today's traffic and is checked for drift against the training data. The model folder
(scikit-learn pipeline, its config and metrics) is signed, verified, copied to the serving folder and served
only once the copy verifies there; its model card lists the training data through lineage, the signature,
the verification, the drift check and the metrics. Every step is in the audit log, and the model is
``model://ticket-triage`` in its lineage, downstream of the masked tickets and, through them, the landing
copy (``aisec audit lineage model://ticket-triage``).

Needs the extras ``ml`` (scikit-learn), ``models`` (signing) and ``drift``. The signing key is the local
keyring's ``model-signing`` (created by the first run; NOT for production) or, with the ``signing_key``
param ``aws-kms:<key id or alias>``, an AWS KMS key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, Asset, Param, get_current_context, task

from airflow_aisec import config
from airflow_aisec.operators.drift import DriftCheckOperator
from airflow_aisec.operators.model import ModelCardOperator, SignModelOperator, VerifyModelOperator

MODEL = "ticket-triage"
TRAINING_DATASET = "support_tickets_masked"
MASKED_TICKETS = Asset(name=TRAINING_DATASET)
KEY = "{{ params.signing_key }}"
WORK = "{{ aisec_var('lake') }}/ml/" + MODEL
MODEL_DIR = WORK + "/model"
SERVING = "{{ aisec_var('lake') }}/serving/" + MODEL
FEATURES = ["body_length", "words", "masked_entities", "opened_hour", "opened_weekday"]
DRIFT_COLUMNS = ["body_length", "masked_entities", "opened_hour"]
BILLING_WORDS = ("charged", "invoice", "refund", "payment")
NOTES = """Intended use: route incoming support tickets to the billing queue; not for decisions on a person.

Trained on masked ticket text through counts only. The label is a keyword rule standing in for agents'
labels. Retrain when the drift check of today's tickets fails."""


def aisec_var(name: str) -> str:
    """A catalog variable (``[aisec] catalog_vars``), resolved when a task renders its templates."""
    return config.catalog_vars()[name]


def _features(body: str, opened: Any) -> dict[str, Any]:
    """The counts the model sees of one ticket, and its label; never the text."""
    if isinstance(opened, str):
        opened = dt.datetime.fromisoformat(opened.replace("Z", "+00:00"))
    text = body or ""
    return {
        "body_length": len(text),
        "words": len(text.split()),
        "masked_entities": text.count("<"),
        "opened_hour": opened.hour if opened else 0,
        "opened_weekday": opened.weekday() if opened else 0,
        "opened_at": opened.isoformat() if opened else "",
        "billing": int(any(word in text.lower() for word in BILLING_WORDS)),
    }


def _write_table(rows: list[dict[str, Any]], folder: str) -> str:
    """Write ``rows`` as one Parquet file in ``folder``, atomically; its URI."""
    import pyarrow as pa

    from airflow_aisec.io import Location, write_dataset_file

    table = pa.Table.from_pylist(rows)
    written = write_dataset_file(
        Location.parse(folder), "parquet", table, name="part-0.parquet", overwrite=True
    )
    return written.uri


def _replace_folder(staging: Any, target: Any) -> None:
    """Put the folder ``staging`` at ``target``: the old one is moved aside first, removed after."""
    import shutil

    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


with DAG(
    dag_id="aisec_model_release",
    description="Train a model on masked tickets, sign, check drift, verify, publish, write its model card",
    schedule=[MASKED_TICKETS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    # The model triages tickets: reading them serves answering customers' support requests.
    default_args={"owner": "ml-platform", "retries": 0, "aisec_purpose": "support"},
    params={"signing_key": Param("model-signing", type="string", description="Keyring key or aws-kms:<id>")},
    tags=["aisec", "ml", "example"],
    user_defined_macros={"aisec_var": aisec_var},
    doc_md=__doc__,
):

    @task
    def ensure_signing_key(key: str) -> str:
        """The local keyring's elliptic-curve key, created when missing (a KMS key is made in KMS)."""
        from airflow_aisec.crypto.keyring import LocalKeyring
        from airflow_aisec.model import KMS_PREFIX

        if not key.startswith(KMS_PREFIX):
            LocalKeyring(config.get_setting("keyring")).ensure(key, "ec-p256")
        return key

    @task(inlets=[MASKED_TICKETS])
    def build_features(work: str) -> dict[str, int]:
        """Counts per masked ticket; the older three quarters train, the newest quarter is today's data."""
        from airflow_aisec.governance import read_dataset

        rows = [
            _features(body, opened)
            for batch in read_dataset(TRAINING_DATASET, "support", columns=["body", "opened_at"])
            for body, opened in zip(
                batch.column("body").to_pylist(), batch.column("opened_at").to_pylist(), strict=True
            )
        ]
        if len(rows) < 8:
            raise ValueError(f"dataset {TRAINING_DATASET}: {len(rows)} rows, too few to train on")
        rows.sort(key=lambda r: str(r["opened_at"]))
        split = len(rows) * 3 // 4
        _write_table(rows[:split], f"{work}/features/reference")
        _write_table(rows[split:], f"{work}/features/current")
        return {"reference_rows": split, "current_rows": len(rows) - split}

    @task
    def train_model(work: str) -> dict[str, Any]:
        """Fit the scikit-learn pipeline on the reference features; write the model folder atomically."""
        import json
        import secrets
        from pathlib import Path

        import joblib
        import pyarrow.parquet as pq
        import sklearn
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        train = pq.read_table(f"{work}/features/reference").to_pandas()
        held_out = pq.read_table(f"{work}/features/current").to_pandas()
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        model.fit(train[FEATURES], train["billing"])
        metrics = {
            "train_accuracy": round(float(model.score(train[FEATURES], train["billing"])), 4),
            "holdout_accuracy": round(float(model.score(held_out[FEATURES], held_out["billing"])), 4),
            "train_rows": len(train),
            "holdout_rows": len(held_out),
        }
        target = Path(work) / "model"
        staging = target.with_name(f".model.tmp-{secrets.token_hex(6)}")
        staging.mkdir(parents=True)
        joblib.dump(model, staging / "model.joblib")
        settings = {"features": FEATURES, "label": "billing", "sklearn": sklearn.__version__}
        (staging / "config.json").write_text(json.dumps(settings, indent=2) + "\n")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _replace_folder(staging, target)
        return metrics

    sign = SignModelOperator(
        task_id="sign_model", model_path=MODEL_DIR, key=KEY, inputs=[TRAINING_DATASET], model_name=MODEL
    )
    drift = DriftCheckOperator(
        task_id="check_drift",
        reference=WORK + "/features/reference",
        current=WORK + "/features/current",
        columns=DRIFT_COLUMNS,
        report_path=WORK + "/drift.html",
    )
    verify = VerifyModelOperator(task_id="verify_model", model_path=MODEL_DIR, key=KEY, model_name=MODEL)

    @task
    def publish(model_dir: str, serving: str, key: str) -> dict[str, str]:
        """Copy the verified model to the serving folder; serve the copy once it verifies there."""
        from airflow_aisec.audit import AuditLog
        from airflow_aisec.hooks.kms import KmsHook
        from airflow_aisec.model import KMS_PREFIX, verifying_keys
        from airflow_aisec.model.publish import publish_model

        kms = KmsHook(aws_conn_id="aws_default").get_client if key.startswith(KMS_PREFIX) else None
        keys = verifying_keys(key, keyring=config.get_setting("keyring"), kms_client_factory=kms)
        release = publish_model(model_dir, serving, keys, name=MODEL)
        ti = get_current_context()["ti"]
        # Recorded once per task instance, as the operators record their steps.
        once = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/-1/model.verify/{release.path.name}"
        with AuditLog.open() as log:
            log.append("model.verify", idempotency_key=once, **release.verification.audit_fields())
        return {"release": str(release.path), "current": str(release.current)}

    card = ModelCardOperator(
        task_id="write_model_card",
        model_name=MODEL,
        output_dir=SERVING,
        metrics_file=MODEL_DIR + "/metrics.json",
        notes=NOTES,
    )
    key = ensure_signing_key(KEY)
    features = build_features(WORK)
    key >> features >> train_model(WORK) >> sign >> drift >> verify
    verify >> publish(MODEL_DIR, SERVING, KEY) >> card
