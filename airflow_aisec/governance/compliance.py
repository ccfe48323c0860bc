"""The compliance gate of a CI pipeline: what a catalog, its DAGs and a sample of its data must satisfy.

Each broken rule is a ``Finding`` with a stable rule id (``AISEC-C001`` ...), a severity, the dataset and
catalog path (``datasets.orders.columns.shipping_address``) or DAG file it is about, the line where it is
known, and a message naming what to change. Messages name datasets, columns, entities, DAGs and files, never
a data value. The rules:

* ``AISEC-C001`` the catalog loads and passes its checks (and, when the data is read, matches it);
* ``AISEC-C002`` every PII column has a ``mask`` rule or is encrypted (a ``free_text`` column is masked in
  place by its declaration);
* ``AISEC-C003`` every dataset holding PII has a ``retention`` rule;
* ``AISEC-C004`` a column of a special category of personal data (GDPR Art. 9) is encrypted at rest;
* ``AISEC-C005`` the DAGs pass the aisec policies;
* ``AISEC-C006`` a sample scan of the data finds no PII the catalog does not declare.

A column is of a special category when it says so (``special_category: health``) or when its entity does:
Presidio's ``NRP`` (nationality, religious or political group), or an entity name holding one of the words
of ``SPECIAL_WORDS`` (``HEALTH_CONDITION``, ``RELIGION``, ``TRADE_UNION_MEMBERSHIP`` ...).

This module finds; it reads nothing but the DAG files' text (for line numbers). The DAG policies and the
sample scan run in the ``aisec compliance check`` command, which hands their results to ``dag_findings``
and ``scan_findings``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

from airflow_aisec.catalog.models import FREE_TEXT

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog, Column, Dataset
    from airflow_aisec.catalog.problems import FieldPath, Report

Severity = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule of the gate: its stable id, a short name, what it asks and how to fix a finding."""

    id: str
    name: str
    summary: str
    help: str


CATALOG_INVALID: Final = "AISEC-C001"
PII_UNPROTECTED: Final = "AISEC-C002"
NO_RETENTION: Final = "AISEC-C003"
SPECIAL_UNENCRYPTED: Final = "AISEC-C004"
DAG_POLICY: Final = "AISEC-C005"
UNDECLARED_PII: Final = "AISEC-C006"

RULES: Final[dict[str, Rule]] = {
    rule.id: rule
    for rule in (
        Rule(
            CATALOG_INVALID,
            "catalog-invalid",
            "The privacy catalog loads, passes its checks and matches the data it describes.",
            "Fix the field the message names (run `aisec catalog validate` for the same problems).",
        ),
        Rule(
            PII_UNPROTECTED,
            "pii-column-unprotected",
            "Every PII column has a masking rule or is encrypted at rest.",
            "Add `mask: {strategy: ...}` to the column, or list it under the dataset's `encryption.columns`.",
        ),
        Rule(
            NO_RETENTION,
            "pii-without-retention",
            "Every dataset holding personal data says how long rows are kept.",
            "Add `retention: {column: <timestamp column>, keep_for: <ISO-8601 duration>}` to the dataset.",
        ),
        Rule(
            SPECIAL_UNENCRYPTED,
            "special-category-unencrypted",
            "Special categories of personal data (GDPR Art. 9) are encrypted at rest.",
            "List the column under the dataset's `encryption.columns` (with a key from `keys`).",
        ),
        Rule(
            DAG_POLICY,
            "dag-policy-violation",
            "The DAGs pass the aisec policies (purposes, owners, no raw PII published, the catalog loads).",
            "Change the DAG or task as the message says (see docs/turn-on-policies.md).",
        ),
        Rule(
            UNDECLARED_PII,
            "undeclared-pii",
            "A sample scan of the data finds no personal data the catalog does not declare.",
            "Declare the column with its entity (`pii: ENTITY`), or `pii: none` once a person reviewed it.",
        ),
    )
}

# Words of entity names that say a column holds a special category of personal data (GDPR Art. 9).
SPECIAL_WORDS: Final[Mapping[str, str]] = {
    "HEALTH": "health",
    "DIAGNOSIS": "health",
    "RELIGION": "religion",
    "RELIGIOUS": "religion",
    "ETHNICITY": "ethnicity",
    "ETHNIC": "ethnicity",
    "RACE": "ethnicity",
    "RACIAL": "ethnicity",
    "PHILOSOPHICAL": "religion",  # Art. 9 "religious or philosophical beliefs"
    "POLITICAL": "political_opinion",
    "SEXUAL": "sexual_orientation",
    "SEXUALITY": "sexual_orientation",
    "SEX": "sexual_orientation",  # Art. 9 "sex life or sexual orientation"
    "BIOMETRIC": "biometric",
    "GENETIC": "genetic",
    "UNION": "trade_union",
}
NRP_CATEGORY: Final = "ethnicity, religion or political opinion"
# Whole entity names of health data whose words alone say nothing (MEDICAL_LICENSE is a doctor's licence).
SPECIAL_ENTITIES: Final[Mapping[str, str]] = {
    "MEDICAL_CONDITION": "health",
    "MEDICAL_RECORD": "health",
    "MEDICAL_HISTORY": "health",
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One broken rule; ``dag_id`` is set for a DAG's findings (``dataset`` for a dataset's)."""

    rule: str
    severity: Severity
    message: str
    dataset: str | None = None
    path: str | None = None
    file: str | None = None
    line: int | None = None
    dag_id: str | None = None

    @property
    def subject(self) -> str:
        """What the finding is about: the dataset, the DAG, else the file."""
        return self.dataset or self.dag_id or self.file or "catalog"

    def as_dict(self) -> dict[str, object]:
        """The JSON form read by other tools: exactly these keys."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "dataset": self.dataset,
            "path": self.path,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }


@dataclasses.dataclass
class ComplianceReport:
    """Every finding, and what each rule checked (datasets, DAG files), so a pass says where it looked."""

    catalog: str
    findings: list[Finding] = dataclasses.field(default_factory=list)
    checked: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)  # what was not looked at, and why

    @property
    def passed(self) -> bool:
        """True when no finding is an error (warnings allowed)."""
        return not any(f.severity == "error" for f in self.findings)

    def add(self, rule: str, subjects: Iterable[str], findings: Iterable[Finding]) -> None:
        """Record that ``rule`` checked ``subjects`` and found ``findings``."""
        known = self.checked.setdefault(rule, [])
        known.extend(s for s in subjects if s not in known)
        self.findings.extend(findings)

    def as_dict(self) -> dict[str, object]:
        """``{"passed": bool, "findings": [...]}``."""
        return {"passed": self.passed, "findings": [f.as_dict() for f in self.findings]}


class ViolationLike(Protocol):
    """What the DAG policies report for one broken rule."""

    @property
    def file(self) -> str: ...
    @property
    def dag_id(self) -> str: ...
    @property
    def task_id(self) -> str | None: ...
    @property
    def rule(self) -> str: ...
    @property
    def message(self) -> str: ...


def check_catalog(report: Report) -> ComplianceReport:
    """The catalog's own rules (C001 to C004) over a validated catalog (``validate_catalog``'s report)."""
    result = ComplianceReport(report.source)
    catalog = report.catalog
    datasets = sorted(catalog.datasets) if catalog is not None else []
    found = {
        rule: [f for name in datasets for f in check(catalog, name, report)] if catalog else []
        for rule, check in _DATASET_RULES.items()
    }
    # A warning of the catalog's own checks that a rule here makes an error (no retention) is said once.
    raised = {f.path for findings in found.values() for f in findings}
    invalid = [f for f in catalog_findings(report) if f.severity == "error" or f.path not in raised]
    result.add(CATALOG_INVALID, [report.source], invalid)
    for rule, findings in found.items():
        result.add(rule, datasets, findings)
    return result


def catalog_findings(report: Report) -> list[Finding]:
    """C001: each error and warning of the catalog's validation."""
    return [
        Finding(
            CATALOG_INVALID,
            problem.severity,
            problem.message,
            dataset=problem.path[1] if len(problem.path) > 1 and problem.path[0] == "datasets" else None,
            path=".".join(problem.path) or None,
            file=problem.source,
            line=problem.line,
        )
        for problem in [*report.errors, *report.warnings]
    ]


def _dataset_finding(rule: str, report: Report, path: FieldPath, message: str) -> Finding:
    return Finding(
        rule,
        "error",
        message,
        dataset=path[1],
        path=".".join(path),
        file=report.source,
        line=_line(report, path),
    )


def _line(report: Report, path: FieldPath) -> int | None:
    """The line of ``path`` in the catalog file, else of the nearest field holding it."""
    for end in range(len(path), 0, -1):
        if path[:end] in report.lines:
            return report.lines[path[:end]]
    return None


def _holders(path: str) -> list[str]:
    """``path`` and the paths holding it: ``a.b[].c`` → ``a.b[].c``, ``a.b[]``, ``a.b``, ``a``."""
    found = [path]
    for match in reversed(list(re.finditer(r"\[\]|\.", path))):
        found.append(path[: match.end()] if match.group() == "[]" else path[: match.start()])
    return list(dict.fromkeys(found))


def encrypted(dataset: Dataset, column: str) -> bool:
    """Whether the catalog encrypts ``column`` (or a column holding it) at rest."""
    listed = set(dataset.encryption.columns) if dataset.encryption else set()
    return any(path in listed for path in _holders(column))


def special_category(column: Column) -> str | None:
    """The special category of personal data (GDPR Art. 9) a column holds, by its flag or its entity."""
    if column.special_category is not None:
        return column.special_category
    entity = (column.pii or "").upper()
    if entity == "NRP":
        return NRP_CATEGORY
    if entity in SPECIAL_ENTITIES:
        return SPECIAL_ENTITIES[entity]
    for word in entity.split("_"):
        if word in SPECIAL_WORDS:
            return SPECIAL_WORDS[word]
    return None


def _unprotected(catalog: Catalog, name: str, report: Report) -> Iterable[Finding]:
    dataset = catalog.datasets[name]
    for column, spec in dataset.columns.items():
        if not spec.pii or spec.pii == FREE_TEXT or spec.mask is not None or encrypted(dataset, column):
            continue
        yield _dataset_finding(
            PII_UNPROTECTED,
            report,
            ("datasets", name, "columns", column),
            f"dataset {name}: PII column {column} ({spec.pii}) has no mask rule and is not encrypted: add "
            f"mask: {{strategy: ...}} to it, or list it under datasets.{name}.encryption.columns",
        )


def _no_retention(catalog: Catalog, name: str, report: Report) -> Iterable[Finding]:
    dataset = catalog.datasets[name]
    if dataset.retention is not None or not dataset.pii_columns:
        return
    yield _dataset_finding(
        NO_RETENTION,
        report,
        ("datasets", name),
        f"dataset {name} holds PII ({', '.join(sorted(dataset.pii_columns))}) and has no retention rule: "
        f"add retention: {{column: ..., keep_for: ...}} to datasets.{name}",
    )


def _special_unencrypted(catalog: Catalog, name: str, report: Report) -> Iterable[Finding]:
    dataset = catalog.datasets[name]
    for column, spec in dataset.columns.items():
        category = special_category(spec)
        if category is None or encrypted(dataset, column):
            continue
        yield _dataset_finding(
            SPECIAL_UNENCRYPTED,
            report,
            ("datasets", name, "columns", column),
            f"dataset {name}: column {column} holds a special category of personal data ({category}) and is "
            f"stored unencrypted: list it under datasets.{name}.encryption.columns",
        )


_DATASET_RULES: Final = {
    PII_UNPROTECTED: _unprotected,
    NO_RETENTION: _no_retention,
    SPECIAL_UNENCRYPTED: _special_unencrypted,
}


def dag_files(folder: Path) -> list[str]:
    """The Python files of a DAG folder, as the policies name them."""
    return sorted(str(p) for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def dag_findings(violations: Iterable[ViolationLike], folder: Path) -> list[Finding]:
    """C005: one finding per policy violation, at the line of its task (or DAG) id in its file (named
    relative to the DAG ``folder``, or not: a catalog that does not load is named as given)."""
    found = []
    for v in violations:
        file = folder / v.file if (folder / v.file).is_file() else Path(v.file)
        if v.dag_id:
            message = (
                f"DAG {v.dag_id}, {f'task {v.task_id}' if v.task_id else 'the DAG'}: {v.rule}: {v.message}"
            )
        else:
            message = f"{v.file}: {v.rule}: {v.message}"
        line = _dag_line(file, v.task_id or v.dag_id) if v.dag_id else None
        found.append(
            Finding(DAG_POLICY, "error", message, file=str(file), line=line, dag_id=v.dag_id or None)
        )
    return found


def _dag_line(path: Path, name: str) -> int | None:
    """The first line of a DAG file that spells ``name`` as a string literal."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if f'"{name}"' in line or f"'{name}'" in line:
            return number
    return None


def scan_findings(report: Report, dataset: str, undeclared: Mapping[str, str | None]) -> list[Finding]:
    """C006: each column (or nested path) a sample scan found to hold an undeclared ``entity``."""
    return [
        _dataset_finding(
            UNDECLARED_PII,
            report,
            ("datasets", dataset, "columns", column),
            f"dataset {dataset}: a sample scan found {entity or 'PII'} in column {column}, which the catalog "
            f"does not declare: add {column}: {{pii: {entity or 'ENTITY'}}} under datasets.{dataset}.columns "
            "(or pii: none once a person has reviewed it)",
        )
        for column, entity in undeclared.items()
    ]


def scan_failed(report: Report, dataset: str, reason: str) -> Finding:
    """C006: a dataset that could not be scanned; undeclared PII in it cannot be ruled out."""
    return _dataset_finding(
        UNDECLARED_PII,
        report,
        ("datasets", dataset),
        f"dataset {dataset}: could not be scanned, so undeclared PII cannot be ruled out: {reason}",
    )
