"""Purpose limitation at read time: may this task read this catalog dataset for the purpose it declares?

The answer is a ``PurposeDecision``, recorded in the audit log as a ``purpose.check`` entry (outcome
``success`` when allowed, ``failure`` when refused) before any data is read. A read without a declared purpose
is allowed and recorded with purpose null, unless ``[aisec] require_purpose`` is True.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.catalog.purposes import Taxonomy
from airflow_aisec.exceptions import PurposeError

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog import Catalog

ACTION = "purpose.check"
_SHOWN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_MAX_SHOWN = 100


@dataclasses.dataclass(frozen=True)
class PurposeDecision:
    """Whether ``task`` may read ``dataset`` for ``purpose`` (None: none declared), and why."""

    dataset: str
    purpose: str | None
    task: str | None
    allowed: bool
    allowed_purposes: tuple[str, ...]
    reason: str

    def audit_fields(self) -> dict[str, Any]:
        """The fields of the ``purpose.check`` audit entry (names only, never data)."""
        return {
            "dataset": self.dataset,
            "outcome": "success" if self.allowed else "failure",
            "details": {
                "purpose": shown_purpose(self.purpose),
                "decision": "allowed" if self.allowed else "refused",
                "allowed_purposes": list(self.allowed_purposes),
                "reason": self.reason,
                "task": self.task,
            },
        }

    def error(self) -> PurposeError:
        """The error a refused read raises: dataset, purpose, task, reason and the allowed purposes."""
        task = f"task {self.task}: " if self.task else ""
        purpose = shown_purpose(self.purpose)
        asked = f"for purpose {purpose!r}" if purpose else "without a purpose"
        allowed = ", ".join(self.allowed_purposes) or "none"
        return PurposeError(
            f"{task}reading dataset {self.dataset!r} {asked} is refused: {self.reason} "
            f"(the dataset's purposes: {allowed})"
        )


def shown_purpose(purpose: str | None) -> str | None:
    """The purpose as logs and the audit log may show it: a purpose name, else a placeholder (a value that is
    no purpose name might be anything, even personal data)."""
    if purpose is None:
        return None
    if len(purpose) <= _MAX_SHOWN and _SHOWN.fullmatch(purpose):
        return purpose
    return "<not a purpose name>"


def decide_purpose(
    catalog: Catalog,
    dataset: str,
    purpose: str | None,
    *,
    task: str | None = None,
    require: bool | None = None,
) -> PurposeDecision:
    """Decide a read of ``dataset`` for ``purpose``; ``require`` defaults to ``[aisec] require_purpose``.

    Raises ``PurposeError`` for a dataset the catalog does not have.
    """
    try:
        spec = catalog.dataset(dataset)
    except KeyError as e:
        raise PurposeError(str(e.args[0])) from None
    allowed_purposes = tuple(spec.purposes)
    allowed, reason = _verdict(catalog, allowed_purposes, purpose, require)
    return PurposeDecision(dataset, purpose, task, allowed, allowed_purposes, reason)


def _verdict(
    catalog: Catalog, allowed_purposes: tuple[str, ...], purpose: str | None, require: bool | None
) -> tuple[bool, str]:
    if not purpose:
        if require if require is not None else config.get_bool("require_purpose"):
            return False, (
                "no purpose declared, and [aisec] require_purpose is True "
                "(give the task purpose=, or aisec_purpose in default_args or params)"
            )
        return True, "no purpose declared ([aisec] require_purpose is False)"
    taxonomy = Taxonomy.of(catalog)
    if purpose not in taxonomy:
        suggestion = taxonomy.suggest(purpose) if shown_purpose(purpose) == purpose else ""
        return False, f"unknown purpose: neither a Fides data use nor declared under purposes{suggestion}"
    if not allowed_purposes:
        return False, "the dataset declares no purposes"
    for allowed in allowed_purposes:
        if taxonomy.allows(allowed, purpose):
            return True, "listed by the dataset" if allowed == purpose else f"below {allowed!r}"
    above = " > ".join(taxonomy.lineage(purpose))
    return False, f"neither it nor a purpose above it ({above}) is among the dataset's purposes"


def check_purpose(
    catalog: Catalog,
    dataset: str,
    purpose: str | None,
    *,
    task: str | None = None,
    require: bool | None = None,
) -> None:
    """Raise ``PurposeError`` unless ``dataset`` may be read for ``purpose`` (see ``decide_purpose``)."""
    decision = decide_purpose(catalog, dataset, purpose, task=task, require=require)
    if not decision.allowed:
        raise decision.error()


def record_purpose(log: AuditLog, decision: PurposeDecision, *, idempotency_key: str | None = None) -> int:
    """Append the decision's ``purpose.check`` entry to ``log``; its index."""
    return log.append(ACTION, idempotency_key=idempotency_key, **decision.audit_fields())
