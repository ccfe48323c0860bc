"""``SignModelOperator`` and ``VerifyModelOperator``: model artifacts signed and verified in the OpenSSF Model
Signing format (``airflow_aisec.model``), recorded in the audit log and reported to OpenLineage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.model.keys import KmsClientFactory


class _ModelKeys(AisecCatalogOperator):
    """What both model operators share: the key reference, the keyring and the KMS connection."""

    def __init__(
        self,
        *,
        model_path: str,
        signature_path: str | None = None,
        key: str | None = None,
        keyring: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_path = model_path
        self.signature_path = signature_path
        self.key = key
        self.keyring = keyring

    def _kms_client_factory(self) -> KmsClientFactory | None:
        """KMS clients through ``aws_conn_id`` for an ``aws-kms:`` key; None for a keyring key."""
        from airflow_aisec.model.keys import KMS_PREFIX

        if not (self.key or "").startswith(KMS_PREFIX):
            return None
        from airflow_aisec.hooks.kms import KmsHook

        return KmsHook(aws_conn_id=self.aws_conn_id).get_client


class SignModelOperator(_ModelKeys):
    """
    Sign a model artifact (a file or a folder of files): its bundle lists every file's SHA-256, signed by
    ``key``; recorded as ``model.sign`` with the model downstream of its training datasets in lineage.

    :param model_path: The model file or folder. (templated)
    :param key: A keyring key of kind ``ec-p256``/``ec-p384``, or ``aws-kms:<key id, ARN or alias>`` (reached
        through ``aws_conn_id``). (templated)
    :param signature_path: Where the bundle goes; default ``<model_path>.sig``. (templated)
    :param inputs: Catalog datasets the model was trained on (checked against the catalog). (templated)
    :param model_name: The model's name, ``model://<name>`` in lineage; default the file or folder name.
        (templated)
    :param keyring: Local keyring file; default ``[aisec] keyring``. (templated)
    """

    template_fields: Sequence[str] = (
        "model_path",
        "key",
        "signature_path",
        "inputs",
        "model_name",
        "keyring",
        "catalog",
    )
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        model_path: str,
        key: str,
        signature_path: str | None = None,
        inputs: Sequence[str] = (),
        model_name: str | None = None,
        keyring: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            model_path=model_path, signature_path=signature_path, key=key, keyring=keyring, **kwargs
        )
        self.inputs = inputs
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        """Sign, record ``model.sign``; return the digests, key id and bundle (no key material)."""
        from airflow_aisec.model import sign_model, signing_key, training_inputs

        names = [self.inputs] if isinstance(self.inputs, str) else list(self.inputs or ())
        refs = training_inputs(self._load_catalog() if names else None, names)
        signer = signing_key(
            str(self.key), keyring=self.keyring, kms_client_factory=self._kms_client_factory()
        )
        with self.audited(context):
            result = sign_model(
                self.model_path,
                signer,
                signature_path=self.signature_path,
                name=self.model_name,
                inputs=refs,
            )
            self.record(context, "model.sign", step=result.node, **result.audit_fields())
        self.lineage.inputs = list(refs)
        self.lineage.outputs = [result.output()]
        self.log.info("signed %s (%d file(s)) with %s", result.node, len(result.files), result.key_id)
        return result.as_dict()


class VerifyModelOperator(_ModelKeys):
    """
    Verify a model artifact against its signature; the task fails naming the files changed, missing or
    added (or the key or signature problem). Recorded as ``model.verify`` either way.

    :param model_path: The model file or folder. (templated)
    :param signature_path: The bundle; default ``<model_path>.sig``. (templated)
    :param key: The signing key's reference (keyring key name, or ``aws-kms:<id>``); or ``public_key``.
        (templated)
    :param public_key: A PEM public key file to verify with instead of ``key``. (templated)
    :param model_name: The model's name in lineage; default the name it was signed as. (templated)
    :param keyring: Local keyring file; default ``[aisec] keyring``. (templated)
    """

    template_fields: Sequence[str] = (
        "model_path",
        "signature_path",
        "key",
        "public_key",
        "model_name",
        "keyring",
    )
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        model_path: str,
        signature_path: str | None = None,
        key: str | None = None,
        public_key: str | None = None,
        model_name: str | None = None,
        keyring: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            model_path=model_path, signature_path=signature_path, key=key, keyring=keyring, **kwargs
        )
        self.public_key = public_key
        self.model_name = model_name

    def execute(self, context: Context) -> dict[str, Any]:
        """Verify, record ``model.verify``; raise ``ModelSignatureError`` when the model fails."""
        from airflow_aisec.lineage import DatasetRef
        from airflow_aisec.model import verify_model, verifying_keys

        keys = verifying_keys(
            self.key or None,
            public_key=self.public_key or None,
            keyring=self.keyring,
            kms_client_factory=self._kms_client_factory(),
        )
        result = verify_model(self.model_path, keys, signature_path=self.signature_path, name=self.model_name)
        self.record(context, "model.verify", step=result.node, **result.audit_fields())
        self.lineage.inputs = [
            DatasetRef(
                uri=result.path, dataset=result.node, sha256=result.manifest_sha256, location=result.path
            )
        ]
        if not result.verified:
            raise result.error()
        self.log.info("%s", result.message())
        return result.as_dict()


class ModelCardOperator(AisecCatalogOperator):
    """
    Write the model card of a signed model into ``output_dir``: its training datasets found through the audit
    log's lineage (PII categories, masking and encryption, purposes, retention), its newest signature and
    verification, the newest drift and bias checks, and the metrics and notes given. Each file is replaced
    atomically; recorded as ``model.card``. The card holds names, digests and aggregates, never a data value.

    :param model_name: The model, as signed (``model://<name>`` or ``<name>``). (templated)
    :param output_dir: The folder the card goes to (``<name>.card.md``, ``<name>.card.html``). (templated)
    :param formats: ``md``, ``html`` or both (a list or ``"md,html"``).
    :param metrics: Metrics to show (names to numbers or text). (templated)
    :param metrics_file: A JSON or YAML file of metrics (merged under ``metrics``). (templated)
    :param notes: Notes to show (intended use, limitations). (templated)
    :param notes_file: A text or Markdown file of notes (used when ``notes`` is empty). (templated)
    """

    template_fields: Sequence[str] = (
        "model_name",
        "output_dir",
        "metrics",
        "metrics_file",
        "notes",
        "notes_file",
        "catalog",
    )
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        model_name: str,
        output_dir: str,
        formats: Sequence[str] | str = ("md", "html"),
        metrics: dict[str, Any] | None = None,
        metrics_file: str | None = None,
        notes: str = "",
        notes_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.output_dir = output_dir
        self.formats = formats
        self.metrics = metrics
        self.metrics_file = metrics_file
        self.notes = notes
        self.notes_file = notes_file

    def execute(self, context: Context) -> dict[str, Any]:
        """Gather the card, write it, record ``model.card``; return the files written and what it says."""
        from airflow_aisec.model.card import check_metrics, gather_card, load_metrics, load_notes
        from airflow_aisec.model.card_render import card_fields, parse_formats, write_card

        formats = parse_formats(self.formats)
        metrics = load_metrics(self.metrics_file) if self.metrics_file else {}
        metrics.update(check_metrics(self.metrics or {}, f"task {self.task_id}: metrics"))
        notes = self.notes or (load_notes(self.notes_file) if self.notes_file else "")
        catalog = self._load_catalog()
        with self.audited(context) as log:
            card = gather_card(log, catalog, str(self.model_name), metrics=metrics, notes=notes)
            files = write_card(card, str(self.output_dir), formats)
            fields = card_fields(card, files)
            self.record(context, "model.card", step=card.node, **fields)
        self.log.info("model card of %s written: %s", card.node, ", ".join(str(f) for f in files))
        return {"node": card.node, "verified": card.verified, **fields["details"]}
