"""The record of processing activities (GDPR Art. 30(1)): one activity per purpose, as CSV and JSON.

Each activity lists the controller (a), the purpose (b), the categories of data subjects and of personal data
(c), the recipients (d), where the data is stored and any transfer (e), the retention of each dataset (f) and
the security measures (g). Everything comes from the same assessment as the DPIA.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from airflow_aisec.governance.dpia.model import Assessment, DatasetFacts, PurposeUse

COLUMNS = (
    "activity",
    "description",
    "controller",
    "controller_contact",
    "representative",
    "dpo",
    "purposes",
    "data_subjects",
    "personal_data",
    "datasets",
    "recipients",
    "locations",
    "transfers",
    "retention",
    "security_measures",
)
"""The CSV's columns, in order; the JSON's activities have the same keys (lists where a cell joins some)."""
_LISTS = frozenset(COLUMNS[6:])


def activities(assessment: Assessment) -> list[dict[str, Any]]:
    """One record per purpose the catalog names."""
    by_name = {d.name: d for d in assessment.datasets}
    return [
        _activity(assessment, p, [by_name[n] for n in p.may_read if n in by_name])
        for p in assessment.purposes
    ]


def _activity(a: Assessment, purpose: PurposeUse, datasets: Sequence[DatasetFacts]) -> dict[str, Any]:
    c = a.controller
    recipients = sorted(
        {r for d in datasets for r in d.recipients} | {f"dataset {t}" for d in datasets for t in d.flows_to}
    )
    locations = sorted({d.location for d in datasets})
    return {
        "activity": purpose.purpose,
        "description": purpose.description,
        "controller": c.name if c else "",
        "controller_contact": (c.contact or "") if c else "",
        "representative": (c.representative or "") if c else "",
        "dpo": (c.dpo or "") if c else "",
        "purposes": [purpose.purpose],
        "data_subjects": list(a.subjects) or [f"identified by {', '.join(a.identities)}"],
        "personal_data": sorted({cat for d in datasets for cat in d.categories}),
        "datasets": [d.name for d in datasets],
        "recipients": recipients,
        "locations": locations,
        "transfers": [loc for loc in locations if loc.startswith("S3 bucket") or "outside" in loc.lower()],
        "retention": [f"{d.name}: {d.retention or 'no rule'}" for d in datasets],
        "security_measures": _security(datasets, a),
    }


def _security(datasets: Sequence[DatasetFacts], a: Assessment) -> list[str]:
    found = [f"encryption at rest of {d.name}: {', '.join(d.encrypted)}" for d in datasets if d.encrypted]
    found += [f"masking of {d.name}: {', '.join(d.masked)}" for d in datasets if d.masked]
    found += [
        f"{m.title}: {m.status}"
        for m in a.measures
        if m.key in ("audit_log", "purpose_checks", "dsr_process")
    ]
    return found


def to_json(assessment: Assessment) -> dict[str, Any]:
    """The record as JSON-ready data: when, from what, and the activities."""
    return {
        "generated_at": assessment.generated_at,
        "catalog": assessment.catalog,
        "columns": list(COLUMNS),
        "activities": activities(assessment),
    }


def _cell(text: str) -> str:
    """A cell no spreadsheet runs as a formula: text starting with ``= + - @`` gets a leading quote."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def to_csv(assessment: Assessment) -> str:
    """The record as CSV: a header of ``COLUMNS``, then one row per activity; lists are joined with ``; ``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in activities(assessment):
        writer.writerow([_cell("; ".join(record[k]) if k in _LISTS else record[k]) for k in COLUMNS])
    return out.getvalue()
