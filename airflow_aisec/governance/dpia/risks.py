"""Risks to the data subjects, scored from the data: likelihood × severity, each 1–4, each with its reasons.

The scale is the CNIL PIA method's: 1 negligible, 2 limited, 3 significant, 4 maximum. Every score is
computed by a rule below from the catalog and the audit log, and every rule says why it gave the score it
gave, so a reviewer can disagree with a reason rather than with a number.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_aisec.governance.dpia.model import DatasetFacts, Evidence, Findings, Risk

# Rows held by the largest dataset, as severity: fewer than 1,000 people is limited, a million is maximum.
_VOLUME = ((1_000, 1), (100_000, 2), (1_000_000, 3))
_IDENTIFYING = frozenset({"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "US_PASSPORT", "CREDIT_CARD"})


def _share_likelihood(protected: int, total: int) -> int:
    """Likelihood of exposure from the share of columns protected: all 1, ≥ 75% 2, ≥ 50% 3, else 4."""
    if total == 0 or protected == total:
        return 1
    share = protected / total
    return 2 if share >= 0.75 else 3 if share >= 0.5 else 4


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({round(100 * part / whole)}%)" if whole else "0/0"


def special_categories(datasets: Sequence[DatasetFacts]) -> Risk:
    """Special categories (Art. 9) or criminal data: maximum severity if held, likelihood from protection."""
    held = [(d.name, c) for d in datasets for c in d.special]
    if not held:
        return Risk(
            "special_categories",
            "Special categories of data (Art. 9, 10)",
            1,
            1,
            ("no column is declared with a special-category entity type",),
            ("no special-category data is declared",),
        )
    protected = sum(1 for d in datasets for c in d.special if c in d.protected)
    names = ", ".join(f"{d}.{c}" for d, c in held)
    return Risk(
        "special_categories",
        "Special categories of data (Art. 9, 10)",
        _share_likelihood(protected, len(held)),
        4,
        (f"{_pct(protected, len(held))} special-category columns are encrypted or masked",),
        (f"special-category columns: {names}",),
        tuple(sorted({d for d, _c in held})),
        ("encryption", "masking"),
    )


def volume(datasets: Sequence[DatasetFacts]) -> Risk:
    """Scale of the processing: severity from the most rows a personal dataset holds."""
    personal = [d for d in datasets if d.pii_columns]
    counted = [d for d in personal if d.rows is not None]
    unknown = [d.name for d in personal if d.rows is None]
    if counted:
        top = max(counted, key=lambda d: d.rows or 0)
        rows = top.rows or 0
        severity = next((s for limit, s in _VOLUME if rows < limit), 4)
        reasons = [f"largest personal dataset: {top.name} with {rows:,} rows ({top.rows_source})"]
    else:
        severity, reasons = 2, ["no row count recorded for any personal dataset"]
    if unknown:
        reasons.append(f"no row count recorded for: {', '.join(unknown)}")
    total = sum(len(d.pii_columns) for d in personal)
    protected = sum(len(d.protected) for d in personal)
    return Risk(
        "volume",
        "Large-scale processing",
        _share_likelihood(protected, total),
        severity,
        (f"{_pct(protected, total)} PII columns are encrypted or masked",),
        tuple(reasons),
        tuple(d.name for d in personal),
        ("encryption", "masking", "retention"),
    )


def free_text(datasets: Sequence[DatasetFacts]) -> Risk:
    """Free text may hold any personal data, special categories included: likelihood from masking coverage."""
    columns = [(d, c) for d in datasets for c in d.free_text]
    if not columns:
        return Risk(
            "free_text", "Personal data in free text", 1, 1, ("no free-text column",), ("no free text",)
        )
    masked = sum(1 for d, c in columns if c in d.protected)
    names = ", ".join(f"{d.name}.{c}" for d, c in columns)
    return Risk(
        "free_text",
        "Personal data in free text",
        _share_likelihood(masked, len(columns)),
        3,
        (f"{_pct(masked, len(columns))} free-text columns are masked or encrypted",),
        (f"free-text columns, which may mention anyone and anything: {names}",),
        tuple(sorted({d.name for d, _c in columns})),
        ("masking",),
    )


def illegitimate_access(datasets: Sequence[DatasetFacts]) -> Risk:
    """Exposure of PII columns neither encrypted nor masked; severity from how directly they identify."""
    open_columns = [
        (d.name, c, e) for d in datasets for c, e in d.pii_columns.items() if c not in d.protected
    ]
    total = sum(len(d.pii_columns) for d in datasets)
    identifying = sorted({f"{d}.{c}" for d, c, e in open_columns if e in _IDENTIFYING})
    severity = 3 if identifying else 2 if open_columns else 1
    severity_reason = (
        f"directly identifying columns in clear: {', '.join(identifying)}"
        if identifying
        else "the columns in clear do not identify a person directly"
        if open_columns
        else "every PII column is encrypted or masked"
    )
    return Risk(
        "illegitimate_access",
        "Illegitimate access to personal data",
        _share_likelihood(total - len(open_columns), total),
        severity,
        (f"{_pct(len(open_columns), total)} PII columns are neither encrypted nor masked",),
        (severity_reason,),
        tuple(sorted({d for d, _c, _e in open_columns})),
        ("encryption", "masking", "audit_log"),
    )


def overdue_retention(datasets: Sequence[DatasetFacts], evidence: Evidence) -> Risk:
    """Data kept longer than its rule: likelihood from the datasets whose enforcement is overdue."""
    ruled = [d for d in datasets if d.retention is not None]
    overdue = [s for s in evidence.retention.values() if s.overdue]
    missing = [d.name for d in datasets if d.pii_columns and d.retention is None]
    likelihood = 1 if not overdue else 4 if len(overdue) * 2 > max(len(ruled), 1) else 3
    reasons = [f"{s.dataset}: {s.reason}" for s in overdue] or [
        f"retention enforced on time for {len(ruled)} datasets with a rule"
    ]
    if missing:
        likelihood = max(likelihood, 3)
        reasons.append(f"personal datasets without a retention rule: {', '.join(missing)}")
    sensitive = {d.name for d in datasets if d.special or d.free_text}
    severity = 3 if sensitive & {s.dataset for s in overdue} else 2
    return Risk(
        "overdue_retention",
        "Data kept beyond its retention period",
        likelihood,
        severity,
        tuple(reasons),
        (
            "overdue datasets hold free text or special categories"
            if severity == 3
            else "kept data is ordinary personal data",
        ),
        tuple(sorted({s.dataset for s in overdue} | set(missing))),
        ("retention",),
    )


def overdue_requests(evidence: Evidence) -> Risk:
    """Data-subject rights not answered in time: likelihood from the overdue requests."""
    overdue, pending = evidence.requests_overdue, evidence.requests_open
    likelihood = 1 if overdue == 0 else 3 if overdue <= 3 else 4
    reasons = (f"{overdue} request(s) past their statutory deadline, {pending} open within it",)
    return Risk(
        "overdue_requests",
        "Data-subject rights not honoured in time",
        likelihood,
        3 if overdue else 2,
        reasons,
        ("a late answer denies the person a right (Art. 12(3))",),
        measures=("dsr_process",),
    )


def compliance(findings: Findings | None, refused: int) -> Risk:
    """Policy and compliance findings: errors of a compliance check, and reads refused by purpose checks."""
    reasons = [f"{refused} read(s) refused by purpose checks"] if refused else []
    if findings is None:
        likelihood = 2
        reasons.append("no compliance check result was given (--findings)")
    else:
        errors = [f for f in findings.findings if f.severity.lower() in ("error", "critical", "high")]
        likelihood = 4 if errors else 2 if findings.findings else 1
        reasons.append(
            f"compliance check {'passed' if findings.passed else 'failed'}: {len(findings.findings)} "
            f"finding(s), {len(errors)} of them errors"
        )
    if refused:
        likelihood = max(likelihood, 3)
    datasets = sorted({f.dataset for f in findings.findings if f.dataset} if findings else set())
    return Risk(
        "compliance",
        "Processing outside the declared rules",
        likelihood,
        3,
        tuple(reasons),
        ("processing against the catalog's rules breaks purpose limitation (Art. 5(1)(b))",),
        tuple(datasets),
        ("purpose_checks",),
    )


def assess_risks(
    datasets: Sequence[DatasetFacts],
    refused: int,
    evidence: Evidence,
    findings: Findings | None,
) -> tuple[Risk, ...]:
    """Every risk, highest score first."""
    risks = [
        special_categories(datasets),
        volume(datasets),
        free_text(datasets),
        illegitimate_access(datasets),
        overdue_retention(datasets, evidence),
        overdue_requests(evidence),
        compliance(findings, refused),
    ]
    return tuple(sorted(risks, key=lambda r: (-r.score, r.key)))
