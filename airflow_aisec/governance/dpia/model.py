"""The assessment as plain data: what the DPIA and the records of processing say, built once, rendered.

Every field is a name, a count, a date or a sentence made from them: no value read from a dataset, no raw
subject identifier. The renderers (Markdown, HTML, PDF, CNIL PIA JSON) and the records of processing read
only this model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

SCALE = {1: "negligible", 2: "limited", 3: "significant", 4: "maximum"}
"""The 1–4 scale of likelihood and of severity (the CNIL PIA method's names for its four levels)."""


def level(score: int) -> str:
    """The level of ``likelihood × severity`` (1–16): low up to 3, moderate up to 6, high up to 9, else very
    high."""
    if score <= 3:
        return "low"
    if score <= 6:
        return "moderate"
    if score <= 9:
        return "high"
    return "very high"


@dataclasses.dataclass(frozen=True)
class DatasetFacts:
    """One catalog dataset as the assessment describes it."""

    name: str
    uri: str
    location: str
    format: str
    purposes: tuple[str, ...]
    pii_columns: dict[str, str]
    free_text: tuple[str, ...]
    special: dict[str, str]
    encrypted: tuple[str, ...]
    masked: tuple[str, ...]
    mask_rules: tuple[str, ...]
    retention: str | None
    legal_hold: str | None
    recipients: tuple[str, ...]
    flows_to: tuple[str, ...]
    rows: int | None
    rows_source: str | None
    erasure: str

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories of personal data held, from the columns' entity types."""
        found = {category_of(entity) for entity in self.pii_columns.values()}
        return tuple(sorted(found | {f"{kind} (Art. 9)" for kind in self.special.values()}))

    @property
    def protected(self) -> tuple[str, ...]:
        """PII columns encrypted at rest or masked by a rule or a recorded masking."""
        return tuple(c for c in self.pii_columns if c in self.encrypted or c in self.masked)


_CATEGORIES = {
    "PERSON": "identity",
    "EMAIL_ADDRESS": "contact details",
    "PHONE_NUMBER": "contact details",
    "LOCATION": "location and address",
    "STREET_ADDRESS": "location and address",
    "IP_ADDRESS": "online identifiers",
    "URL": "online identifiers",
    "DATE_TIME": "dates (birth, events)",
    "CREDIT_CARD": "financial",
    "IBAN_CODE": "financial",
    "US_BANK_NUMBER": "financial",
    "US_SSN": "national identifiers",
    "US_PASSPORT": "national identifiers",
    "US_DRIVER_LICENSE": "national identifiers",
    "NRP": "nationality, religious or political group (Art. 9)",
    "MEDICAL_LICENSE": "health (Art. 9)",
    "free_text": "free text (may hold any category)",
}
# Entity names that say the column holds a special category (GDPR Art. 9) or criminal data (Art. 10).
SPECIAL_MARKERS = (
    "HEALTH",
    "MEDICAL",
    "BIOMETRIC",
    "GENETIC",
    "ETHNIC",
    "RACE",
    "RELIGION",
    "POLITICAL",
    "SEXUAL",
    "SEX_LIFE",
    "TRADE_UNION",
    "CRIMINAL",
    "NRP",
)


def category_of(entity: str) -> str:
    """The category of personal data an entity type belongs to (the entity itself when none is known)."""
    return _CATEGORIES.get(entity, entity)


def is_special(entity: str) -> bool:
    """Whether an entity type names a special category of data (Art. 9) or criminal data (Art. 10)."""
    upper = entity.upper()
    return any(marker in upper for marker in SPECIAL_MARKERS)


@dataclasses.dataclass(frozen=True)
class DatasetUse:
    """What one purpose did with one dataset, from the ``purpose.check`` entries."""

    dataset: str
    allowed_reads: int
    refused_reads: int
    columns_read: tuple[str, ...]
    last_read: str | None


@dataclasses.dataclass(frozen=True)
class PurposeUse:
    """Necessity and proportionality of a purpose: what it may read, what it did read, what it never used."""

    purpose: str
    description: str
    origin: str
    may_read: dict[str, tuple[str, ...]]
    used: tuple[DatasetUse, ...]
    unused_pii: tuple[str, ...]

    @property
    def reads(self) -> int:
        """Allowed reads recorded for the purpose."""
        return sum(u.allowed_reads for u in self.used)


@dataclasses.dataclass(frozen=True)
class Risk:
    """One risk: likelihood and severity on the 1–4 scale, each with the reasons the data gave for it."""

    key: str
    title: str
    likelihood: int
    severity: int
    likelihood_reasons: tuple[str, ...]
    severity_reasons: tuple[str, ...]
    datasets: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()

    @property
    def score(self) -> int:
        """``likelihood × severity``, 1 to 16."""
        return self.likelihood * self.severity

    @property
    def level(self) -> str:
        """The score's level: low, moderate, high or very high."""
        return level(self.score)


@dataclasses.dataclass(frozen=True)
class Measure:
    """A measure in place, with what the catalog and the audit log show of it."""

    key: str
    title: str
    status: str
    details: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class RetentionState:
    """Retention of a dataset as the audit log shows it: its last run, and whether enforcement is overdue."""

    dataset: str
    rule: str | None
    last_run: str | None
    rows_removed: int
    failures: int
    skipped: str | None
    overdue: bool
    reason: str


@dataclasses.dataclass(frozen=True)
class Verification:
    """The last recorded verification of the audit log."""

    time: str
    outcome: str
    entries: int | None


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the review views read from the audit log: requests, retention runs, the last verification."""

    requests_open: int = 0
    requests_overdue: int = 0
    requests_answered: int = 0
    request_types: dict[str, int] = dataclasses.field(default_factory=dict)
    retention: dict[str, RetentionState] = dataclasses.field(default_factory=dict)
    verification: Verification | None = None
    last_success: Verification | None = None


@dataclasses.dataclass(frozen=True)
class Finding:
    """One compliance finding (``aisec compliance check --json``); its message is shown as written there."""

    rule: str
    severity: str
    dataset: str | None
    path: str | None
    file: str | None
    line: int | None
    message: str


@dataclasses.dataclass(frozen=True)
class Findings:
    """A compliance check's result: passed or not, and its findings."""

    passed: bool
    findings: tuple[Finding, ...]
    source: str


@dataclasses.dataclass(frozen=True)
class Controller:
    """Who is responsible (from the catalog's ``controller:``, or options)."""

    name: str
    contact: str | None = None
    representative: str | None = None
    dpo: str | None = None


@dataclasses.dataclass(frozen=True)
class Assessment:
    """The whole assessment, in the order of GDPR Art. 35(7): description, necessity, risks, measures."""

    generated_at: str
    catalog: str
    audit_log: str
    audit_entries: int
    controller: Controller | None
    subjects: tuple[str, ...]
    identities: tuple[str, ...]
    datasets: tuple[DatasetFacts, ...]
    purposes: tuple[PurposeUse, ...]
    risks: tuple[Risk, ...]
    measures: tuple[Measure, ...]
    evidence: Evidence
    findings: Findings | None
    undeclared_reads: int = 0
    refused_reads: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The assessment as JSON-ready data."""
        data = dataclasses.asdict(self)
        data["risks"] = [
            {**r, "score": risk.score, "level": risk.level}
            for r, risk in zip(data["risks"], self.risks, strict=True)
        ]
        return data
