"""HTML of the Privacy pages: Jinja2 templates (autoescaped), our own CSS, headers that keep the page local.

Nothing is loaded from elsewhere: the Content-Security-Policy allows our stylesheet only (no script at
all), and framing only by Airflow's own UI, which shows the pages inside its navigation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader

from airflow_aisec.plugins.ui.names import URL_PREFIX

HERE = Path(__file__).parent
STATIC = HERE / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True)


def short(value: object, keep: int = 18) -> str:
    """A long hash or pseudonym cut to its start (the full value stays in links and titles)."""
    text = str(value or "")
    return text if len(text) <= keep + 1 else text[:keep] + "…"


def label(name: object, keep: int = 26) -> str:
    """A dataset's name as it fits in a lineage box: a path or URI by its end (the file), else its start."""
    text = str(name)
    if len(text) <= keep + 1:
        return text
    return "…" + text[-keep:] if "/" in text else text[:keep] + "…"


_env.filters["short"] = short
_env.filters["label"] = label
_env.filters["seg"] = lambda value: quote(str(value), safe="")
_env.filters["qs"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})


def prefix(request: Request) -> str:
    """The path our pages are mounted under (``/aisec``, after Airflow's base path when it has one)."""
    root = str(request.scope.get("root_path", "") or "")
    return root if root.endswith(URL_PREFIX) else root + URL_PREFIX


def airflow_root(request: Request) -> str:
    """The path of Airflow's own UI, for links to DAG runs and assets."""
    return prefix(request)[: -len(URL_PREFIX)]


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the page's context and our security headers."""
    html = _env.get_template(template).render(
        base=prefix(request), airflow=airflow_root(request), path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
