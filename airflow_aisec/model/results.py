"""What signing or verifying a model did, as audit entry fields, plain data (XCom, JSON) and an error.

The model is a node of the audit log's lineage, ``model://<name>``: a ``model.sign`` entry lists the datasets
it was trained on as inputs and the model as output, so ``aisec audit lineage model://<name>`` (or the
model's path) shows it downstream of them. Entries carry file names and digests, the key's id and
fingerprint and the bundle's digest: never key material, never file contents.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from airflow_aisec.exceptions import ModelSignatureError
from airflow_aisec.lineage import DatasetRef

MODEL_SCHEME = "model://"
MAX_LISTED = 200  # files listed by name in one entry; counts are always complete
MAX_NAMED = 10  # files named in one error message


def model_node(name: str) -> str:
    """The lineage node of the model called ``name``."""
    return name if name.startswith(MODEL_SCHEME) else f"{MODEL_SCHEME}{name}"


def _listed(names: tuple[str, ...], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclasses.dataclass(frozen=True)
class ModelSignature:
    """A model signed: which files with which digests, by which key, into which bundle."""

    name: str
    path: str
    signature: str
    key_id: str
    key_fingerprint: str
    manifest_sha256: str
    bundle_sha256: str
    files: dict[str, str]
    inputs: tuple[DatasetRef, ...] = ()

    @property
    def node(self) -> str:
        """The model's lineage node (``model://<name>``)."""
        return model_node(self.name)

    def output(self) -> DatasetRef:
        """The model as the output of its signing step."""
        return DatasetRef(uri=self.path, dataset=self.node, sha256=self.manifest_sha256, location=self.path)

    def audit_fields(self) -> dict[str, Any]:
        """Fields of the ``model.sign`` entry."""
        files = dict(list(self.files.items())[:MAX_LISTED])
        fields: dict[str, Any] = {
            "dataset": self.node,
            "outputs": [self.output().as_entry()],
            "outcome": "success",
            "details": {
                "model": self.name,
                "path": self.path,
                "signature": self.signature,
                "key": self.key_id,
                "key_fingerprint": self.key_fingerprint,
                "manifest_sha256": self.manifest_sha256,
                "bundle_sha256": self.bundle_sha256,
                "hash": "sha256",
                "file_count": len(self.files),
                "files": files,
            },
        }
        if self.inputs:
            fields["inputs"] = [ref.as_entry() for ref in self.inputs]
        return fields

    def as_dict(self) -> dict[str, Any]:
        """Plain data for XCom and ``--json`` (digests and names only)."""
        return {
            "model": self.name,
            "node": self.node,
            "path": self.path,
            "signature": self.signature,
            "key": self.key_id,
            "key_fingerprint": self.key_fingerprint,
            "manifest_sha256": self.manifest_sha256,
            "bundle_sha256": self.bundle_sha256,
            "file_count": len(self.files),
            "inputs": [ref.dataset or ref.uri for ref in self.inputs],
        }


@dataclasses.dataclass(frozen=True)
class ModelVerification:
    """A model checked against its signature: verified, or why not (files changed, missing, added)."""

    name: str
    path: str
    signature: str
    verified: bool
    reason: str = ""
    key_id: str | None = None
    key_fingerprint: str | None = None
    manifest_sha256: str | None = None
    bundle_sha256: str | None = None
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    @property
    def node(self) -> str:
        """The model's lineage node (``model://<name>``)."""
        return model_node(self.name)

    def message(self) -> str:
        """One line saying what was found, naming the files (at most a few of each kind)."""
        head = f"model {self.name} ({self.path})"
        if self.verified:
            return f"{head} verified against {self.signature} (key {self.key_id})"
        parts = [
            f"{len(files)} file(s) {what}: {_listed(files, MAX_NAMED)}"
            for what, files in (
                ("changed", self.changed),
                ("missing", self.missing),
                ("added", self.added),
            )
            if files
        ]
        return f"{head} failed verification: {self.reason}" + (f"; {'; '.join(parts)}" if parts else "")

    def error(self) -> ModelSignatureError:
        """The error refusing this model."""
        return ModelSignatureError(self.message())

    def audit_fields(self) -> dict[str, Any]:
        """Fields of the ``model.verify`` entry."""
        details: dict[str, Any] = {
            "model": self.name,
            "path": self.path,
            "signature": self.signature,
            "key": self.key_id,
            "key_fingerprint": self.key_fingerprint,
            "manifest_sha256": self.manifest_sha256,
            "bundle_sha256": self.bundle_sha256,
        }
        if not self.verified:
            details["reason"] = self.reason
            for what in ("changed", "missing", "added"):
                files: tuple[str, ...] = getattr(self, what)
                details[what] = list(files[:MAX_LISTED])
                details[f"{what}_count"] = len(files)
        model = DatasetRef(uri=self.path, dataset=self.node, sha256=self.manifest_sha256, location=self.path)
        return {
            "dataset": self.node,
            "inputs": [model.as_entry()],
            "outcome": "success" if self.verified else "failure",
            "details": {k: v for k, v in details.items() if v is not None},
        }

    def as_dict(self) -> dict[str, Any]:
        """Plain data for XCom and ``--json``."""
        data = self.audit_fields()["details"]
        return {"verified": self.verified, "node": self.node, **data}
