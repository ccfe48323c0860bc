"""The DPIA as a document: headings, paragraphs, lists and tables in the order of GDPR Art. 35(7).

Written once here and rendered as Markdown, HTML and PDF (``render``), so the three never differ in content.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from airflow_aisec.governance.dpia.model import SCALE, Assessment, DatasetFacts, PurposeUse, Risk

SECTIONS = (
    "1. Systematic description of the processing (Art. 35(7)(a))",
    "2. Necessity and proportionality (Art. 35(7)(b))",
    "3. Risks to the rights and freedoms of data subjects (Art. 35(7)(c))",
    "4. Measures in place to address the risks (Art. 35(7)(d))",
)


@dataclasses.dataclass(frozen=True)
class Heading:
    """A heading of ``level`` 1 (title) to 3."""

    level: int
    text: str


@dataclasses.dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str


@dataclasses.dataclass(frozen=True)
class Bullets:
    """A list of plain-text items."""

    items: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Table:
    """A table: its headers and rows of plain text."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Heading | Paragraph | Bullets | Table


def _join(values: Sequence[str], empty: str = "none") -> str:
    return ", ".join(values) if values else empty


def document(assessment: Assessment) -> list[Block]:
    """Every block of the DPIA, in order."""
    return [
        Heading(1, "Data protection impact assessment"),
        *_header(assessment),
        Heading(2, SECTIONS[0]),
        *description(assessment),
        Heading(2, SECTIONS[1]),
        *_necessity(assessment),
        Heading(2, SECTIONS[2]),
        *_risks(assessment),
        Heading(2, SECTIONS[3]),
        *_measures(assessment),
        *_findings(assessment),
    ]


def _header(a: Assessment) -> list[Block]:
    controller = a.controller
    who = controller.name if controller else "not declared (add controller: to the catalog, or --controller)"
    lines = [
        f"Controller: {who}",
        f"Contact: {controller.contact or 'not declared'}" if controller else "Contact: not declared",
        f"Data protection officer: {controller.dpo or 'not declared'}" if controller else "",
        f"Generated: {a.generated_at}",
        f"Catalog: {a.catalog or 'in memory'}",
        f"Audit log: {a.audit_log} ({a.audit_entries} entries)",
    ]
    return [Bullets(tuple(line for line in lines if line))]


def description(a: Assessment) -> list[Block]:
    """Section 1: subjects, datasets and their categories of data, recipients, locations and retention."""
    subjects = _join(a.subjects, "not declared (subjects.categories in the catalog)")
    purposes = sorted({p for d in a.datasets for p in d.purposes})
    return [
        Paragraph(
            f"Data subjects: {subjects}; identified by {_join(a.identities)}. "
            f"{len(a.datasets)} datasets, {sum(len(d.pii_columns) for d in a.datasets)} PII columns, "
            f"purposes: {_join(purposes)}."
        ),
        Table(
            ("Dataset", "Categories of data", "Subjects' data (columns)", "Purposes", "Rows"),
            tuple(_dataset_row(d) for d in a.datasets),
        ),
        Heading(3, "Recipients, locations and retention"),
        Table(
            ("Dataset", "Recipients", "Flows to", "Location", "Retention", "Legal hold"),
            tuple(
                (
                    d.name,
                    _join(d.recipients),
                    _join(d.flows_to),
                    d.location,
                    d.retention or "no rule",
                    d.legal_hold or "none",
                )
                for d in a.datasets
            ),
        ),
    ]


def _dataset_row(d: DatasetFacts) -> tuple[str, ...]:
    columns = ", ".join(f"{c} ({e})" for c, e in d.pii_columns.items()) or "no personal data"
    rows = f"{d.rows:,}" if d.rows is not None else "not recorded"
    return (d.name, _join(d.categories), columns, _join(d.purposes), rows)


def _necessity(a: Assessment) -> list[Block]:
    blocks: list[Block] = [
        Paragraph(
            "Per purpose: the datasets it may read (the catalog's purposes, over the Fides data-use "
            "taxonomy), what it did read (purpose.check entries of the audit log), and the PII columns it "
            "may read but no recorded read used, which are candidates for minimisation."
        )
    ]
    for purpose in a.purposes:
        blocks += _purpose_blocks(purpose)
    if a.undeclared_reads:
        blocks.append(Paragraph(f"{a.undeclared_reads} read(s) were recorded without a declared purpose."))
    return blocks


def _purpose_blocks(p: PurposeUse) -> list[Block]:
    title = f"Purpose {p.purpose}" + (f": {p.description}" if p.description else "")
    used = {u.dataset: u for u in p.used}
    rows = []
    for dataset, columns in p.may_read.items():
        use = used.get(dataset)
        read = f"{use.allowed_reads} read(s), last {use.last_read}" if use and use.allowed_reads else "never"
        refused = str(use.refused_reads) if use else "0"
        rows.append((dataset, _join(columns), read, refused))
    for dataset, use in used.items():
        if dataset not in p.may_read:
            rows.append((dataset, "not allowed", f"{use.allowed_reads} read(s)", str(use.refused_reads)))
    flagged = _join(p.unused_pii, "none: every PII column it may read was read")
    return [
        Heading(3, title),
        Table(("Dataset", "May read (columns)", "Did read", "Refused"), tuple(rows)),
        Paragraph(f"PII columns allowed but never read for this purpose: {flagged}."),
    ]


def _risks(a: Assessment) -> list[Block]:
    scale = ", ".join(f"{n} {name}" for n, name in SCALE.items())
    blocks: list[Block] = [
        Paragraph(
            f"Likelihood and severity are each scored 1 to 4 ({scale}); the risk is their product (1 to 16: "
            "low up to 3, moderate up to 6, high up to 9, very high above). Each score states the data it "
            "comes from."
        ),
        Table(
            ("Risk", "Likelihood", "Severity", "Score", "Level"),
            tuple((r.title, str(r.likelihood), str(r.severity), str(r.score), r.level) for r in a.risks),
        ),
    ]
    for risk in a.risks:
        blocks += _risk_blocks(risk)
    return blocks


def _risk_blocks(r: Risk) -> list[Block]:
    items = [f"Likelihood {r.likelihood} ({SCALE[r.likelihood]}): {'; '.join(r.likelihood_reasons)}"]
    items.append(f"Severity {r.severity} ({SCALE[r.severity]}): {'; '.join(r.severity_reasons)}")
    if r.datasets:
        items.append(f"Datasets: {', '.join(r.datasets)}")
    if r.measures:
        items.append(f"Measures: {', '.join(r.measures)}")
    return [Heading(3, f"{r.title}: {r.score} ({r.level})"), Bullets(tuple(items))]


def _measures(a: Assessment) -> list[Block]:
    blocks: list[Block] = []
    for m in a.measures:
        blocks += [
            Heading(3, f"{m.title} ({m.key}): {m.status}"),
            Bullets(m.details or ("nothing recorded",)),
        ]
    return blocks


def _findings(a: Assessment) -> list[Block]:
    if a.findings is None:
        return []
    f = a.findings
    rows = tuple(
        (
            x.severity,
            x.rule,
            x.dataset or "",
            f"{x.file or ''}:{x.line}" if x.line else x.file or "",
            x.message,
        )
        for x in f.findings
    )
    return [
        Heading(2, "Annex: compliance check"),
        Paragraph(f"{f.source}: {'passed' if f.passed else 'failed'}, {len(f.findings)} finding(s)."),
        Table(("Severity", "Rule", "Dataset", "Where", "Message"), rows),
    ]
