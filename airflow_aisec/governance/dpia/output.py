"""Writing the DPIA and the records into a folder, each file replaced atomically, and what changed since the
last time: datasets, purposes and PII columns added or removed (names only, never a value).

Files: ``dpia.md``, ``dpia.html``, ``dpia.pdf``, ``dpia-cnil.json``, ``ropa.csv``, ``ropa.json``; beside them
``snapshot.json`` (the names the next run compares with) and ``changes.json`` (the last comparison).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import ConfigError
from airflow_aisec.files import write_private
from airflow_aisec.governance.dpia import ropa
from airflow_aisec.governance.dpia.cnil import to_cnil
from airflow_aisec.governance.dpia.model import Assessment
from airflow_aisec.governance.dpia.pdf import to_pdf
from airflow_aisec.governance.dpia.render import to_html, to_markdown

SNAPSHOT = "snapshot.json"
CHANGES = "changes.json"
KINDS = ("datasets", "purposes", "pii_columns")


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_RENDERERS: dict[str, tuple[str, Callable[[Assessment], str | bytes]]] = {
    "md": ("dpia.md", to_markdown),
    "html": ("dpia.html", to_html),
    "pdf": ("dpia.pdf", to_pdf),
    "cnil": ("dpia-cnil.json", lambda a: _json(to_cnil(a))),
}
FORMATS = tuple(_RENDERERS)


def parse_formats(text: str) -> tuple[str, ...]:
    """``md,html`` as formats; ``ConfigError`` naming an unknown one."""
    formats = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in formats if f not in _RENDERERS]
    if unknown or not formats:
        raise ConfigError(
            f"--format: unknown format(s) {unknown or [text]} (choose from {', '.join(FORMATS)})"
        )
    return formats


def write_dpia(assessment: Assessment, folder: str | Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write the DPIA in each format into ``folder``; the paths written. Everything is rendered before any
    file is replaced, so a failing format (no fpdf2 for the PDF) leaves the folder as it was."""
    rendered = {name: render(assessment) for name, render in (_RENDERERS[f] for f in formats)}
    return _write_all(Path(folder), rendered)


def write_ropa(assessment: Assessment, folder: str | Path) -> list[Path]:
    """Write the records of processing (``ropa.csv``, ``ropa.json``) into ``folder``."""
    return _write_all(
        Path(folder), {"ropa.csv": ropa.to_csv(assessment), "ropa.json": _json(ropa.to_json(assessment))}
    )


def _write_all(folder: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    written = []
    for name, content in files.items():
        write_private(folder / name, content)
        written.append(folder / name)
    return written


def snapshot(assessment: Assessment) -> dict[str, Any]:
    """The names the next run compares with: datasets, purposes, PII columns (``dataset.column``)."""
    return {
        "generated_at": assessment.generated_at,
        "datasets": sorted(d.name for d in assessment.datasets),
        "purposes": sorted(p.purpose for p in assessment.purposes),
        "pii_columns": sorted(f"{d.name}.{c}" for d in assessment.datasets for c in d.pii_columns),
    }


def compare(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> dict[str, Any]:
    """What was added and removed since ``previous`` (None: the first run, everything is new)."""
    changes: dict[str, Any] = {
        "since": previous.get("generated_at") if previous else None,
        "generated_at": current["generated_at"],
    }
    for kind in KINDS:
        before = set(previous.get(kind) or []) if previous else set()
        now = set(current[kind])
        changes[kind] = {"added": sorted(now - before), "removed": sorted(before - now)}
    changes["changed"] = any(changes[k]["added"] or changes[k]["removed"] for k in KINDS)
    return changes


def read_snapshot(folder: str | Path) -> dict[str, Any] | None:
    """The snapshot the last run left in ``folder``, or None; ``ConfigError`` for one that is not ours."""
    path = Path(folder) / SNAPSHOT
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a snapshot of a previous DPIA ({e.__class__.__name__})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k, []), list) for k in KINDS):
        raise ConfigError(f"{path}: not a snapshot of a previous DPIA (expected lists {', '.join(KINDS)})")
    return data


def regenerate(
    assessment: Assessment, folder: str | Path, formats: Iterable[str] = FORMATS
) -> tuple[list[Path], dict[str, Any]]:
    """Write the DPIA and the records, compare with the last snapshot, then keep the new snapshot and the
    changes beside them (the snapshot last: a failed run leaves the previous one to compare with)."""
    previous = read_snapshot(folder)
    current = snapshot(assessment)
    changes = compare(previous, current)
    written = write_dpia(assessment, folder, formats) + write_ropa(assessment, folder)
    written += _write_all(Path(folder), {CHANGES: _json(changes)})
    written += _write_all(Path(folder), {SNAPSHOT: _json(current)})
    return written, changes


def summary(changes: Mapping[str, Any]) -> str:
    """One line: ``datasets +2 -0, purposes +0 -0, pii_columns +3 -1``."""
    return ", ".join(f"{k} +{len(changes[k]['added'])} -{len(changes[k]['removed'])}" for k in KINDS)
