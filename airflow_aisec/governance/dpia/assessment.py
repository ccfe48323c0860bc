"""Building the assessment: the catalog's facts, the audit log's entries, the review views' evidence and an
optional compliance check's findings, into one ``Assessment``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.exceptions import ConfigError
from airflow_aisec.governance.dpia.facts import ReadCounts, dataset_facts, purpose_checks, purpose_uses
from airflow_aisec.governance.dpia.model import (
    Assessment,
    Controller,
    DatasetFacts,
    Evidence,
    Finding,
    Findings,
    Measure,
)
from airflow_aisec.governance.dpia.risks import assess_risks

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.catalog.models import Catalog

_MAX_FINDINGS = 16 * 1024 * 1024


def load_findings(path: str | Path) -> Findings:
    """The findings file ``aisec compliance check --json`` wrote; ``ConfigError`` naming the file and field
    for anything else."""
    file = Path(path)
    try:
        text = file.read_bytes()[: _MAX_FINDINGS + 1]
        data = json.loads(text)
    except OSError as e:
        raise ConfigError(f"findings file {file}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise ConfigError(f"findings file {file}: not JSON ({e.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("passed"), bool):
        raise ConfigError(f"findings file {file}: expected an object with 'passed' (true or false)")
    items = data.get("findings", [])
    if not isinstance(items, list):
        raise ConfigError(f"findings file {file}: 'findings' must be a list")
    return Findings(data["passed"], tuple(_finding(file, i, item) for i, item in enumerate(items)), file.name)


def _finding(file: Path, i: int, item: object) -> Finding:
    if not isinstance(item, dict) or not isinstance(item.get("rule"), str):
        raise ConfigError(f"findings file {file}: findings[{i}] must be an object with a 'rule'")
    line = item.get("line")
    return Finding(
        rule=item["rule"],
        severity=str(item.get("severity") or "error"),
        dataset=_text(item.get("dataset")),
        path=_text(item.get("path")),
        file=_text(item.get("file")),
        line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        message=str(item.get("message") or ""),
    )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def controller_of(catalog: Catalog, override: Mapping[str, str | None] | None = None) -> Controller | None:
    """The controller from ``override`` (non-empty options) over the catalog's ``controller:``."""
    declared: dict[str, Any] = catalog.controller.model_dump() if catalog.controller else {}
    declared.update({k: v for k, v in (override or {}).items() if v})
    return Controller(**declared) if declared.get("name") else None


def measures(datasets: Sequence[DatasetFacts], evidence: Evidence, reads: ReadCounts) -> tuple[Measure, ...]:
    """The measures in place, with what the catalog and the log show of each."""
    pii = sum(len(d.pii_columns) for d in datasets)
    encrypted = sum(len(d.encrypted) for d in datasets)
    masked = sum(len(d.masked) for d in datasets)
    ruled = [d for d in datasets if d.retention]
    found = [
        Measure(
            "encryption",
            "Encryption at rest",
            "in place" if encrypted else "not in place",
            (
                f"{encrypted} of {pii} PII columns encrypted with a catalog key",
                *(f"{d.name}: {', '.join(d.encrypted)}" for d in datasets if d.encrypted),
            ),
        ),
        Measure(
            "masking",
            "Masking of PII",
            "in place" if masked else "not in place",
            (
                f"{masked} of {pii} PII columns masked in stored data (recorded pii.mask writing them)",
                f"{sum(len(d.mask_rules) for d in datasets)} columns with a masking rule in the catalog",
                *(f"{d.name}: {', '.join(d.masked)}" for d in datasets if d.masked),
            ),
        ),
        Measure(
            "retention",
            "Retention limits enforced",
            "in place" if ruled else "not in place",
            tuple(_retention_line(d, evidence) for d in ruled),
        ),
        _dsr_measure(evidence),
        _verification_measure(evidence),
        _purpose_measure(reads),
    ]
    return tuple(found)


def _retention_line(dataset: DatasetFacts, evidence: Evidence) -> str:
    state = evidence.retention.get(dataset.name)
    last = f"last run {state.last_run}" if state and state.last_run else "no run recorded"
    return f"{dataset.name}: {dataset.retention}; {last}" + (" (overdue)" if state and state.overdue else "")


def _dsr_measure(evidence: Evidence) -> Measure:
    total = evidence.requests_open + evidence.requests_overdue + evidence.requests_answered
    types = ", ".join(f"{t}: {n}" for t, n in sorted(evidence.request_types.items())) or "none yet"
    return Measure(
        "dsr_process",
        "Data-subject requests (access, erasure, rectification)",
        "in place",
        (
            f"{total} request(s) recorded ({types})",
            f"{evidence.requests_answered} answered, {evidence.requests_open} open, "
            f"{evidence.requests_overdue} overdue",
        ),
    )


def _verification_measure(evidence: Evidence) -> Measure:
    last = evidence.verification
    if last is None:
        return Measure(
            "audit_log", "Tamper-evident audit log", "never verified", ("no recorded verification",)
        )
    details = [f"last verification {last.time}: {last.outcome} ({last.entries} entries)"]
    success = evidence.last_success
    if last.outcome != "success" and success is not None:
        details.append(f"last successful verification {success.time}")
    status = "verified" if last.outcome == "success" else "verification failed"
    return Measure("audit_log", "Tamper-evident audit log", status, tuple(details))


def _purpose_measure(reads: ReadCounts) -> Measure:
    required = config.get_bool("require_purpose")
    return Measure(
        "purpose_checks",
        "Purpose limitation at read time",
        "enforced" if required else "recorded",
        (
            f"{reads.allowed} read(s) allowed for a purpose and {reads.refused} refused",
            f"{reads.undeclared} read(s) allowed without a purpose ([aisec] require_purpose is {required})",
        ),
    )


def _without_credentials(uri: str) -> str:
    """``uri`` with any ``user:password@`` removed: a database URI may carry its password."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def build_assessment(
    catalog: Catalog,
    log: AuditLog,
    evidence: Evidence,
    findings: Findings | None = None,
    *,
    controller: Mapping[str, str | None] | None = None,
    now: dt.datetime | None = None,
) -> Assessment:
    """The assessment of everything the catalog declares, as the audit log shows it now."""
    datasets = dataset_facts(catalog, log)
    purposes, reads = purpose_uses(catalog, purpose_checks(log))
    return Assessment(
        generated_at=(now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        catalog=catalog.source,
        audit_log=_without_credentials(log.store.uri),
        audit_entries=log.size(),
        controller=controller_of(catalog, controller),
        subjects=tuple(catalog.subjects.categories),
        identities=tuple(catalog.subjects.identities),
        datasets=datasets,
        purposes=purposes,
        risks=assess_risks(datasets, reads.refused, evidence, findings),
        measures=measures(datasets, evidence, reads),
        evidence=evidence,
        findings=findings,
        undeclared_reads=reads.undeclared,
        refused_reads=reads.refused,
    )
