"""Every error the product raises on purpose.

Messages name the dataset, file, field and value that caused the problem, and never a secret or raw PII.
Each type refines the built-in exception it behaves like, so callers can catch either.
"""

from __future__ import annotations


class AisecError(Exception):
    """Base class of every airflow-aisec error."""


class ConfigError(AisecError, ValueError):
    """A setting of the ``[aisec]`` configuration is missing or invalid."""


class CatalogError(AisecError, ValueError):
    """The privacy catalog cannot be loaded; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) if self.problems else "invalid catalog")


class DatasetIOError(AisecError, OSError):
    """A dataset file cannot be read, written or replaced."""


class EmptyDatasetError(DatasetIOError):
    """A dataset's location is missing or holds no file of its format (a wrong path must not read as
    "no data"); a catalog dataset may allow it with ``may_be_empty: true``."""


class VerificationError(DatasetIOError):
    """A file written to a temporary place did not read back as written; the original is untouched."""


class ConcurrentModificationError(DatasetIOError):
    """The file changed between reading it and replacing it; the replacement was not made."""


class FanOutError(DatasetIOError):
    """The groups of a fanned-out step are missing, of another listing, or staged parts are not as written;
    nothing was committed."""


class KeyringError(AisecError, ValueError):
    """A key is missing, destroyed, of the wrong kind, or its store is unsafe or unreadable."""


class AuditLogError(AisecError, RuntimeError):
    """The audit log cannot be opened or written; nothing was half-written."""


class PIIError(AisecError, ValueError):
    """PII detection or masking cannot run as configured (missing model, bad strategy for a column)."""


class EncryptionError(AisecError, ValueError):
    """Data cannot be encrypted or decrypted: not an envelope, wrong key or context, tampered or truncated."""


class DsrError(AisecError, ValueError):
    """A data-subject request is invalid, or cannot be carried out as asked; nothing was changed."""


class FieldPathError(PIIError):
    """A path to a field inside a struct or list column (``payload.ip``, ``items[].email``) is malformed, or
    does not exist in the data."""


class PurposeError(AisecError, ValueError):
    """A read of a catalog dataset was refused: the task's purpose is unknown, missing where one is required,
    or not among the purposes the dataset may serve. The message names dataset, purpose, task and the allowed
    purposes, never data."""


class ConsentError(PurposeError):
    """Consent cannot be checked or recorded as asked: no consent source, a dataset whose rows name no subject
    the consent source knows, an unknown purpose or identity type. The message names dataset, purpose and
    identity type, never a subject."""


class FairnessError(AisecError, ValueError):
    """A bias check cannot run as asked: no protected attribute declared, a missing column, an attribute with
    too many distinct values to be groups, a bad threshold. The message names dataset and column, never a
    value."""


class BiasThresholdError(FairnessError):
    """A bias check found a metric past its threshold; the message names dataset, attribute, metric, value
    and threshold."""


class ModelSignatureError(AisecError, ValueError):
    """A model artifact cannot be signed or did not verify: unsigned, signed by another key, a signature file
    altered, or files changed, missing or added since signing (named). The message names the model, its files
    and the key, never key material or file contents."""


class ModelCardError(AisecError, ValueError):
    """A model card cannot be made: the model was never signed, a metrics or notes file is unreadable or
    malformed, an unknown output format. The message names the model, file and field, never a value."""


class DriftError(AisecError, ValueError):
    """A drift or input anomaly check cannot run as asked: an unreadable or foreign profile file, an unknown
    column or method, a bad threshold. The message names the dataset, file and column, never a value."""


class DriftDetectedError(AisecError, RuntimeError):
    """A drift or input anomaly check found more drifted (or anomalous) columns than allowed; the message
    names the check, the columns and their share, never a value."""
