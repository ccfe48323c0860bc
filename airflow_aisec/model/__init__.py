"""Model artifacts signed and verified in the OpenSSF Model Signing format (keys: local keyring or AWS KMS).

Needs the optional extra ``models`` (the ``model-signing`` library).
"""

from __future__ import annotations

from airflow_aisec.model.keys import (
    KMS_PREFIX,
    SigningKey,
    VerifyingKey,
    public_key_pem,
    signing_key,
    verifying_keys,
)
from airflow_aisec.model.results import ModelSignature, ModelVerification, model_node
from airflow_aisec.model.signing import (
    default_signature_path,
    record,
    sign_model,
    training_inputs,
    verified_model_path,
    verify_model,
)

__all__ = [
    "KMS_PREFIX",
    "ModelSignature",
    "ModelVerification",
    "SigningKey",
    "VerifyingKey",
    "default_signature_path",
    "model_node",
    "public_key_pem",
    "record",
    "sign_model",
    "signing_key",
    "training_inputs",
    "verified_model_path",
    "verify_model",
    "verifying_keys",
]
