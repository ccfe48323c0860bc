"""A self-contained HTML report of a drift or anomaly check: a table of every column test, and for each
drifted column an inline SVG of the reference's and the current data's distributions.

No script, no external resource; every text from the data or the caller (column names, categories, dataset
names) is escaped. A PII column's chart names its categories "category 1", "category 2"... and its numeric
axis carries no values.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from airflow_aisec.drift import stats
from airflow_aisec.drift.dataset import DatasetProfile
from airflow_aisec.drift.profile import CategoricalProfile, NumericProfile
from airflow_aisec.drift.result import CheckResult, ColumnCheck
from airflow_aisec.io import Location, S3Options, put_small_file

MAX_BARS = 20
WIDTH, HEIGHT, PAD = 640, 220, 30
REF_COLOUR, CUR_COLOUR = "#4c72b0", "#dd8452"

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.drifted{background:#fde2e1}.ok{background:#e6f4ea}svg{border:1px solid #eee;margin:4px 0 16px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.4g}"


def distributions(
    ref: NumericProfile | CategoricalProfile, cur: NumericProfile | CategoricalProfile, pii: bool
) -> tuple[list[str], Any, Any]:
    """Bar labels and each side's shares: shared bins (numeric), the most common categories (categorical)."""
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        ref_shares, cur_shares = stats.numeric_shares(ref, cur)
        labels = [""] * len(ref_shares)
        if not pii and ref.small is None:
            lo, hi = min(ref.minimum, cur.minimum), max(ref.maximum, cur.maximum)
            edges = np.linspace(lo, hi, len(ref_shares) + 1)
            labels = [_number(float(edge)) for edge in edges[:-1]]
        elif not pii and ref.small is not None and cur.small is not None:
            labels = [_number(v) for v in sorted(set(ref.small) | set(cur.small))]
        return labels, ref_shares, cur_shares
    assert isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)
    keys, ref_shares, cur_shares = stats.category_shares(ref, cur)
    order = np.argsort(-(ref_shares + cur_shares), kind="stable")[:MAX_BARS]
    labels = [f"category {i + 1}" if pii else keys[j] for i, j in enumerate(order)]
    return labels, ref_shares[order], cur_shares[order]


def svg_chart(labels: list[str], ref_shares: Any, cur_shares: Any, title: str) -> str:
    """Grouped bars of the two sides' shares, with escaped labels and a title."""
    bars = max(len(labels), 1)
    top = max(float(np.max(ref_shares, initial=0)), float(np.max(cur_shares, initial=0)), 1e-9)
    slot = (WIDTH - 2 * PAD) / bars
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 40}" role="img">',
        f"<title>{_e(title)}</title>",
    ]
    for i, label in enumerate(labels):
        x = PAD + i * slot
        for j, (share, colour) in enumerate(((ref_shares[i], REF_COLOUR), (cur_shares[i], CUR_COLOUR))):
            h = (HEIGHT - PAD) * float(share) / top
            parts.append(
                f'<rect x="{x + j * slot / 2:.1f}" y="{HEIGHT - h:.1f}" width="{max(slot / 2 - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(label)}: {float(share):.2%}</title></rect>'
            )
        if label and (bars <= MAX_BARS or i % max(bars // 10, 1) == 0):
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT + 14}" font-size="9" '
                f'transform="rotate(30 {x:.1f} {HEIGHT + 14})">{_e(label[:24])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _row(check: ColumnCheck) -> str:
    css = "drifted" if check.drifted else "ok"
    cells = (check.column, check.method, _number(check.statistic), _number(check.threshold))
    verdict = "yes" if check.drifted else "no"
    return f'<tr class="{css}">' + "".join(f"<td>{_e(c)}</td>" for c in cells) + f"<td>{verdict}</td></tr>"


def _chart(name: str, reference: DatasetProfile, current: DatasetProfile) -> str:
    ref, cur = reference.columns.get(name), current.columns.get(name)
    if ref is None or cur is None or ref.kind != cur.kind or not ref.count or not cur.count:
        return ""
    labels, ref_shares, cur_shares = distributions(ref, cur, name in reference.pii | current.pii)
    title = f"{name}: reference vs current"
    return f"<h3>{_e(name)}</h3>" + svg_chart(labels, ref_shares, cur_shares, title)


def render_report(result: CheckResult, reference: DatasetProfile, current: DatasetProfile) -> str:
    """The report as one HTML document."""
    word = "Drift" if result.kind == "drift" else "Input anomaly"
    verdict = "passed" if result.passed else "failed"
    head = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{word} report</title>"
        f"<style>{_STYLE}</style></head><body><h1>{word} report: {verdict}</h1>"
    )
    summary = (
        f"<p>Reference <b>{_e(result.reference)}</b> ({result.reference_rows} rows), current "
        f"<b>{_e(result.current)}</b> ({result.current_rows} rows): {len(result.drifted_columns)} of "
        f"{len(result.checked)} columns {'drifted' if result.kind == 'drift' else 'anomalous'} "
        f"({result.drifted_share:.0%}; limit {result.drift_share:.0%}).</p>"
    )
    table = (
        "<table><tr><th>column</th><th>method</th><th>statistic</th><th>threshold</th><th>drifted</th></tr>"
        + "".join(_row(c) for c in result.columns)
        + "</table>"
    )
    skipped = "".join(f"<li>{_e(n)}: {_e(why)}</li>" for n, why in sorted(result.skipped.items()))
    legend = (
        f'<p class="legend"><span style="background:{REF_COLOUR}"></span>reference'
        f'<span style="background:{CUR_COLOUR}"></span>current</p>'
    )
    charts = "".join(_chart(name, reference, current) for name in result.drifted_columns)
    body = table + (f"<h2>Not checked</h2><ul>{skipped}</ul>" if skipped else "")
    if charts:
        body += "<h2>Distributions of the drifted columns</h2>" + legend + charts
    return head + summary + body + "</body></html>"


def write_report(
    path: str,
    result: CheckResult,
    reference: DatasetProfile,
    current: DatasetProfile,
    s3: S3Options | None = None,
) -> str:
    """Write the report to ``path`` (local: owner-only temporary file, fsync, rename; S3: one PUT).

    Returns its URI.
    """
    location = Location.parse(path, s3)
    put_small_file(location, render_report(result, reference, current).encode("utf-8"))
    return location.uri
