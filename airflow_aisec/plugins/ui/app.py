"""The Privacy pages: a FastAPI app the API server mounts at ``/aisec``; every route behind Airflow's auth.

Routes only resolve the user (``auth``), open what they read (``sources``), call one view-model function of
``airflow_aisec.review`` and render its template (``render``). A raw subject identity only ever arrives in
the body of the lookup POST; it is pseudonymized at once, and neither it nor anything derived from it but
the pseudonym reaches a page, a URL or a log line.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_aisec.exceptions import AisecError
from airflow_aisec.plugins.ui import sources
from airflow_aisec.plugins.ui.auth import Reader, Verifier, can_verify, check_form, form_token
from airflow_aisec.plugins.ui.render import SECURITY_HEADERS, STATIC, page, prefix
from airflow_aisec.review import ReviewInputError, classification, entries, integrity, lineage, requests
from airflow_aisec.review import retention as retention_view

log = logging.getLogger(__name__)
LOOKUP = "subject-lookup"
VERIFY = "verify-now"


def create_app() -> FastAPI:
    """The app of the Privacy pages (no OpenAPI docs: these are pages, not an API)."""
    app = FastAPI(title="aisec privacy", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(StarletteHTTPException, _error_page)
    app.add_exception_handler(RequestValidationError, _invalid_input)
    app.add_exception_handler(AisecError, _unavailable)
    _routes(app)
    return app


async def _error_page(request: Request, exc: Exception) -> Response:
    """401, 403, 404 and 400 as a page (JSON for API clients), saying what to do and nothing more."""
    assert isinstance(exc, StarletteHTTPException)
    if "text/html" not in request.headers.get("accept", ""):
        return await http_exception_handler(request, exc)
    login = None
    if exc.status_code == status.HTTP_401_UNAUTHORIZED:
        from airflow_aisec.plugins.ui.auth import auth_manager

        login = auth_manager().get_url_login(next_url=str(request.url.path))
    return page(request, "error.html", exc.status_code, code=exc.status_code, message=exc.detail, login=login)


async def _invalid_input(request: Request, exc: Exception) -> Response:
    """A malformed parameter, named but never quoted (FastAPI's own message would echo the value)."""
    assert isinstance(exc, RequestValidationError)
    names = sorted({str(error.get("loc", ("", "?"))[-1]) for error in exc.errors()})
    problem = HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid {', '.join(names)}")
    return await _error_page(request, problem)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The audit log (or a file it needs) cannot be opened: the message names it, as the CLI's would."""
    log.warning("aisec: %s", exc)
    return await _error_page(request, HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)))


def _bad_input(error: Exception) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(error))


def _routes(app: FastAPI) -> None:  # noqa: C901 - one nested function per route
    @app.get("/static/aisec.css", include_in_schema=False)
    def stylesheet() -> FileResponse:
        """The stylesheet: public, it says nothing about the log."""
        headers = {"Cache-Control": "max-age=3600"}
        return FileResponse(STATIC / "aisec.css", media_type="text/css", headers=headers)

    @app.get("/")
    def home(user: Reader, request: Request) -> RedirectResponse:
        return RedirectResponse(f"{prefix(request)}/audit", status.HTTP_303_SEE_OTHER)

    @app.get("/audit")
    def audit(user: Reader, request: Request, before: Annotated[int | None, Query(ge=0)] = None) -> Response:
        try:
            query = entries.parse_query(dict(request.query_params))
            with sources.reading() as opened:
                view = entries.list_entries(opened, query, before)
        except ReviewInputError as e:
            raise _bad_input(e) from None
        return _audit_page(request, user, view)

    @app.post("/audit/subject")
    def subject(  # nosec B107 # an empty form token is refused by check_form
        user: Reader, request: Request, identity: Annotated[str, Form()], token: Annotated[str, Form()] = ""
    ) -> Response:
        check_form(request, user, LOOKUP, token)
        loaded = sources.catalog()
        try:
            with sources.reading(sources.pseudonym_key(loaded)) as opened:
                query = entries.lookup_subject(opened, identity)
                view = entries.list_entries(opened, query)
        except ReviewInputError as e:
            raise _bad_input(e) from None
        return _audit_page(request, user, view)

    @app.get("/audit/entries/{index}")
    def entry(user: Reader, request: Request, index: int) -> Response:
        with sources.reading() as opened:
            detail = entries.entry_detail(opened, index)
        if detail is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry in the audit log")
        return page(request, "entry.html", user=user, detail=detail)

    @app.get("/integrity")
    def integrity_page(user: Reader, request: Request) -> Response:
        with sources.reading() as opened:
            view = integrity.integrity_view(opened, sources.trusted_checkpoint())
        allowed = can_verify(user)
        token = form_token(user, VERIFY) if allowed else None
        return page(request, "integrity.html", user=user, view=view, can_verify=allowed, token=token)

    @app.post("/integrity/verify")
    def verify_now(user: Verifier, request: Request, token: Annotated[str, Form()] = "") -> Response:  # nosec B107 # an empty form token is refused by check_form
        check_form(request, user, VERIFY, token)
        notes = integrity.trusted_notes(sources.trusted_checkpoint())
        with sources.reading() as opened:
            report = opened.verify(notes)
        try:
            with sources.writing(user) as writer:
                integrity.record_verification(writer, report, notes)
        except AisecError as e:  # e.g. the log refuses to sign over a history that failed
            log.error("aisec: the verification could not be recorded: %s", e)
        log.info("aisec: audit log verified from the UI: ok=%s, %d entries", report.ok, report.size)
        return RedirectResponse(f"{prefix(request)}/integrity", status.HTTP_303_SEE_OTHER)

    @app.get("/lineage")
    def lineage_page(
        user: Reader,
        request: Request,
        dataset: Annotated[str | None, Query(max_length=500)] = None,
        depth: Annotated[int, Query(ge=1, le=lineage.MAX_DEPTH)] = 2,
    ) -> Response:
        with sources.reading() as opened:
            lake = lineage.LakeLineage.from_log(opened)
        if dataset and dataset not in lake.datasets:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no audit entry names that dataset")
        view = lake.view(dataset or None, depth)
        edges = {(e.source, e.target): e for e in view.edges}
        assets = sources.asset_ids(view.datasets)
        return page(request, "lineage.html", user=user, view=view, edges=edges, assets=assets)

    @app.get("/requests")
    def requests_page(user: Reader, request: Request) -> Response:
        with sources.reading() as opened:
            rows = requests.request_rows(opened)
        return page(request, "requests.html", user=user, rows=rows)

    @app.get("/requests/{request_id}")
    def request_page(user: Reader, request: Request, request_id: str) -> Response:
        detail = _request_detail(request_id)
        return page(request, "request.html", user=user, detail=detail)

    @app.get("/requests/{request_id}/certificate.json")
    def certificate(user: Reader, request_id: str) -> Response:
        _request_detail(request_id)  # a request the log knows
        exports = sources.exports()
        text = requests.certificate_text(request_id, exports) if exports else None
        if text is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "this request has no certificate (yet)")
        disposition = f'attachment; filename="{request_id}.json"'
        headers = {**SECURITY_HEADERS, "Content-Disposition": disposition}
        return Response(text, media_type="application/json", headers=headers)

    @app.get("/retention")
    def retention_page(user: Reader, request: Request) -> Response:
        with sources.reading() as opened:
            runs = retention_view.retention_runs(opened)
        held = retention_view.holds(sources.catalog(), sources.holds())
        return page(request, "retention.html", user=user, runs=runs, holds=held)

    @app.get("/datasets/{name:path}")
    def dataset_page(user: Reader, request: Request, name: str) -> Response:
        if len(name) > 500:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "dataset name too long")
        with sources.reading() as opened:
            view = classification.dataset_view(name, sources.catalog(), opened)
        if not view.in_catalog and not view.recent:
            missing = "neither the catalog nor the audit log names that dataset"
            raise HTTPException(status.HTTP_404_NOT_FOUND, missing)
        assets = sources.asset_ids([name])
        return page(request, "dataset.html", user=user, view=view, asset_id=assets.get(name))

    @app.get("/dags/{dag_id}")
    def dag_page(user: Reader, request: Request, dag_id: str) -> Response:
        with sources.reading() as opened:
            names = classification.dag_datasets(opened, dag_id)
        loaded = sources.catalog()
        known = set(loaded.datasets) if loaded is not None else set()
        assets = sources.asset_ids(names)
        return page(request, "dag.html", user=user, dag_id=dag_id, datasets=names, known=known, assets=assets)


def _audit_page(request: Request, user: Any, view: entries.EntryListView) -> Response:
    return page(
        request,
        "audit.html",
        user=user,
        view=view,
        filters=entries.query_params(view.query),
        token=form_token(user, LOOKUP),
    )


def _request_detail(request_id: str) -> requests.RequestDetail:
    try:
        requests.check_request_id(request_id)
    except ValueError as e:
        raise _bad_input(e) from None
    with sources.reading() as opened:
        detail = requests.request_detail(opened, request_id, sources.exports())
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the audit log has no such request")
    return detail
