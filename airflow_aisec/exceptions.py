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
