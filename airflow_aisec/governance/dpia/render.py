"""The DPIA document as Markdown and as one self-contained HTML page (all text escaped, no external file)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from airflow_aisec.governance.dpia.document import Block, Bullets, Heading, Paragraph, Table, document
from airflow_aisec.governance.dpia.model import Assessment

_MD_SPECIAL = str.maketrans({c: f"\\{c}" for c in "\\`*_[]<>|#"})


def _md(text: str) -> str:
    """Text safe inside Markdown: no markup, no HTML, no table break."""
    return text.replace("\n", " ").translate(_MD_SPECIAL)


def to_markdown(assessment: Assessment) -> str:
    """The DPIA as Markdown."""
    out: list[str] = []
    for block in document(assessment):
        out += _md_block(block)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + _md(block.text)]
    if isinstance(block, Paragraph):
        return [_md(block.text)]
    if isinstance(block, Bullets):
        return [f"- {_md(item)}" for item in block.items]
    return _md_table(block)


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in table.headers) + " |"]
    lines.append("|" + "|".join(" --- " for _ in table.headers) + "|")
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table.rows]
    return lines


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #1d1d1f; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
"""


_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def to_html(assessment: Assessment) -> str:
    """The DPIA as one HTML page with its style inline: no script, no external resource."""
    body = "\n".join(_html_block(block) for block in document(assessment))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f"<title>Data protection impact assessment</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_e(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_e(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in block.items) + "</ul>"
    return _html_table(block.headers, block.rows)


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
