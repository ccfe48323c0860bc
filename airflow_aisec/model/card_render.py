"""A model card as Markdown and as one self-contained HTML page, and both written atomically to a folder.

Every text that comes from the catalog, the audit log or the user is escaped: in HTML as HTML, in Markdown
its ``<``, ``>``, ``&`` and table pipes, so a dataset name or a note cannot inject markup into a page that
renders the card. The HTML page needs nothing from the network (inline style, no script).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import ModelCardError
from airflow_aisec.files import write_private
from airflow_aisec.model.card import ModelCard, Recorded, TrainingDataset

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog

FORMATS = ("md", "html")
# A section: its title, and rows of (label, value) or a table (header, rows).
Table = tuple[tuple[str, ...], list[tuple[str, ...]]]


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``md,html`` (or a list) as formats; an unknown one is refused."""
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ModelCardError(f"unknown card format(s) {', '.join(unknown) or 'none'} (known: md, html)")
    return formats


def _join(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


def _pairs(mapping: dict[str, str]) -> str:
    return _join(f"{k}: {v}" for k, v in sorted(mapping.items()))


def _dataset_row(d: TrainingDataset) -> tuple[str, ...]:
    used = "trained on" if d.direct else f"upstream of {_join(d.feeds)}"
    if not d.in_catalog:
        return (d.name, used, "not in the catalog", "", "", "", _join(s.label() for s in d.applied))
    declared = [f"{c}: {s}" for c, s in sorted(d.masking.items())]
    declared += [f"{c}: encrypted ({k})" for c, k in sorted(d.encrypted.items())]
    return (
        d.name,
        used,
        _pairs(d.pii),
        _join(declared),
        _join(s.label() for s in d.applied),
        _join(d.purposes),
        d.retention or "none declared",
    )


DATASET_HEADER = (
    "dataset",
    "use",
    "PII (column: category)",
    "masking / encryption declared",
    "masking / encryption recorded",
    "purposes",
    "retention",
)


def _entry(r: Recorded) -> str:
    return f"audit entry #{r.index}, {r.time}" + (f", run {r.run_id}" if r.run_id else "")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return _join(str(v) for v in value)
    return "" if value is None else str(value)


def _sections(card: ModelCard) -> list[tuple[str, list[tuple[str, str]] | Table | str]]:
    """The card's sections, as plain text to escape: key-value rows, tables, or a paragraph."""
    sections: list[tuple[str, list[tuple[str, str]] | Table | str]] = [
        ("Model", [("name", card.name), ("lineage node", card.node), ("catalog", card.catalog or "none")]),
        (
            "Training data",
            (DATASET_HEADER, [_dataset_row(d) for d in card.datasets])
            if card.datasets
            else "No training dataset is recorded upstream of the model: sign it with its inputs.",
        ),
    ]
    sections.append(("Signature", _recorded_rows(card.signature, "The model has no signature.")))
    verification = card.verification
    if verification is None:
        sections.append(("Verification", "The model was never verified."))
    else:
        state = "verified" if card.verified else "NOT verified"
        if verification.outcome == "success" and not card.verified:
            state += " (the verification is of another signed version)"
        sections.append(("Verification", [("result", state), *_recorded_rows(verification, "")]))
    sections.append(("Drift", _drift(card.drift)))
    sections.append(("Bias", _bias(card.bias)))
    metrics = [(k, _fmt(v)) for k, v in card.metrics.items()]
    sections.append(("Metrics", metrics or "No metrics were supplied."))
    sections.append(("Notes", card.notes.strip() or "No notes were supplied."))
    return sections


def _recorded_rows(r: Recorded | None, missing: str) -> list[tuple[str, str]] | str:
    if r is None:
        return missing
    return [("recorded", _entry(r)), ("outcome", r.outcome), *((k, _fmt(v)) for k, v in r.details.items())]


def _drift(r: Recorded | None) -> list[tuple[str, str]] | Table | str:
    if r is None:
        return "No drift check is recorded for the model's data."
    columns = r.details.get("columns") or {}
    drifted = sorted(c for c, v in columns.items() if isinstance(v, dict) and v.get("drifted"))
    rows = [("recorded", _entry(r)), ("outcome", "passed" if r.outcome == "success" else "drift detected")]
    rows += [(k, _fmt(r.details[k])) for k in r.details if k != "columns"]
    rows += [("columns checked", str(len(columns))), ("columns drifted", _join(drifted))]
    return rows


def _bias(r: Recorded | None) -> list[tuple[str, str]] | str:
    if r is None:
        return "No bias check is recorded for the model's data."
    verdict = "passed" if r.outcome == "success" else "failed: a metric is past its threshold"
    rows = [("recorded", _entry(r)), ("outcome", verdict)]
    rows += [
        (k, _fmt(v)) for k, v in r.details.items() if k not in ("attributes", "passed") and v is not None
    ]
    for a in r.details.get("attributes") or []:
        metrics = ", ".join(f"{m} {_fmt(v)}" for m, v in sorted((a.get("metrics") or {}).items()))
        verdict = "passed" if a.get("passed") else "failed"
        rows.append(
            (
                f"attribute {a.get('attribute')}",
                f"{verdict}; {a.get('compared_groups')} group(s) compared; {metrics}",
            )
        )
    return rows


def _md(text: str) -> str:
    """Text for a Markdown page: no markup gets through, and no pipe or newline breaks a table cell."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def render_markdown(card: ModelCard) -> str:
    """The card as Markdown."""
    lines = [f"# Model card: {_md(card.name)}", ""]
    for title, body in _sections(card):
        lines += [f"## {title}", ""]
        if isinstance(body, str):
            lines += [html.escape(line, quote=False) for line in body.splitlines()]
        elif isinstance(body, tuple):
            header, rows = body
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        else:
            lines += ["| | |", "|---|---|"] + [f"| {_md(k)} | {_md(v)} |" for k, v in body]
        lines.append("")
    lines.append(f"_Made from the audit log ({card.log_size} entries) and the catalog; no data values._")
    return "\n".join(lines) + "\n"


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2937}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f3f4f6}.notes{white-space:pre-wrap}footer{color:#6b7280}"
)


def render_html(card: ModelCard) -> str:
    """The card as one self-contained HTML page, every value escaped."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Model card: {e(card.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Model card: {e(card.name)}</h1>",
    ]
    for title, body in _sections(card):
        parts.append(f"<h2>{e(title)}</h2>")
        if isinstance(body, str):
            parts += [f'<p class="notes">{e(p.strip())}</p>' for p in body.split("\n\n") if p.strip()]
        elif isinstance(body, tuple):
            header, rows = body
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        else:
            parts.append("<table>")
            parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in body]
            parts.append("</table>")
    parts.append(
        f"<footer>Made from the audit log ({card.log_size} entries) and the catalog; no data values.</footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def card_filename(card: ModelCard, fmt: str) -> str:
    """``<name>.card.md`` / ``.card.html``: the model's name made safe as a file name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in card.name).strip(".") or "model"
    return f"{safe}.card.{fmt}"


def write_card(
    card: ModelCard, folder: str | os.PathLike[str], formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Write the card in each of ``formats`` into ``folder``, each file replaced atomically; their paths."""
    renderers = {"md": render_markdown, "html": render_html}
    target = Path(folder)
    written = []
    for fmt in parse_formats(formats):
        path = target / card_filename(card, fmt)
        write_private(path, renderers[fmt](card))
        os.chmod(path, 0o644)  # a card is meant to be read: it holds no secret and no data value
        written.append(path)
    return written


def card_fields(card: ModelCard, files: Sequence[Path]) -> dict[str, Any]:
    """Fields of the ``model.card`` entry: the files written (names and digests) and the entries cited."""
    import hashlib

    cited = {
        name: r.index
        for name, r in (
            ("signature", card.signature),
            ("verification", card.verification),
            ("drift", card.drift),
            ("bias", card.bias),
        )
        if r is not None
    }
    return {
        "dataset": card.node,
        "inputs": [{"uri": card.node, "dataset": card.node}],
        "outcome": "success",
        "details": {
            "model": card.name,
            "files": {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
            "datasets": [d.name for d in card.datasets],
            "entries": cited,
            "verified": card.verified,
            "metrics": sorted(card.metrics),
        },
    }


def record_card(log: AuditLog, card: ModelCard, files: Sequence[Path]) -> int:
    """Append the ``model.card`` entry of ``card`` written to ``files``; its index."""
    return log.append("model.card", **card_fields(card, files))
