"""The Privacy pages in a real browser: headless Chromium (Debian's) driven by Playwright against
``airflow standalone`` with two SimpleAuthManager users, an auditor (viewer) and an officer (admin).

The audit log holds real operations: a masking of the tickets and an erasure request with its certificate
(run with the CLI and the core against the lake Airflow uses), and runs of the privacy pipeline and of the
retention DAG triggered through the REST API. The auditor logs in through Airflow's login form and opens
every page, each checked against the log; an anonymous browser gets 401, the auditor 403 on "verify now",
which the officer then runs from the page. With ``AISEC_UI_SCREENSHOTS=<dir>``, a PNG of each page is saved
there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from builders import EXAMPLE, SAMPLE, catalog_for
from e2e_standalone import (
    Standalone,
    _all_runs_finished,
    _poll,
    _run_state,
    _scheduler_healthy,
    explained,
    running_standalone,
)

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("AISEC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USERS = {"auditor": "viewer", "officer": "admin"}
REQUEST_ID = "ui-browser-erasure"
RETENTION_DAG = "aisec_retention_enforcement"
PIPELINE_DAG = "aisec_privacy_pipeline"


def _chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: the browser test drives Debian's chromium "
            "(apt-get install -y --no-install-recommends chromium; .ci/run installs it)"
        )
    return CHROMIUM


class Site:
    """The running Airflow, its users' passwords and the erasure's subject."""

    def __init__(self, airflow: Standalone, passwords: dict[str, str], subject: Any) -> None:
        self.airflow, self.passwords, self.subject = airflow, passwords, subject
        self.url = airflow.base_url

    def token(self, user: str) -> str:
        response = self.airflow.client.post(
            "/auth/token", json={"username": user, "password": self.passwords[user]}
        )
        return str(response.raise_for_status().json()["access_token"])

    def log(self) -> Any:
        from airflow_aisec.audit import AuditLog

        home = self.airflow.home
        return AuditLog.open(
            f"sqlite:///{home / 'aisec_audit.db'}", keyring=str(home / "keyring.json"), create=False
        )


def _seed(airflow: Standalone) -> Any:
    """A masking with the CLI, and an erasure with its certificate, recorded in Airflow's audit log."""
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr import StateStore, make_request, run_request
    from airflow_aisec.dsr.certificate import dumps

    home, lake = airflow.home, airflow.lake
    log_uri, keyring = f"sqlite:///{home / 'aisec_audit.db'}", str(home / "keyring.json")
    aisec = str(Path(sys.executable).parent / "aisec")
    subprocess.run(
        [aisec, "--log", log_uri, "--keyring", keyring, "mask", str(lake / "support_tickets"),
         str(lake / "support_tickets_masked"), "--dataset", "support_tickets", "--catalog", str(EXAMPLE),
         "--var", f"lake={lake}", "--mode", "patterns"],
        check=True, capture_output=True,
    )  # fmt: skip
    ordered = {str(r["customer_id"]) for r in SAMPLE.rows("orders")}
    subject = next(c for c in SAMPLE.customers if c.customer_id in ordered)
    catalog, ring = catalog_for(lake), LocalKeyring(keyring)
    request = make_request(catalog, "erasure", "email", subject.email, request_id=REQUEST_ID)
    with AuditLog.open(log_uri, keyring=ring) as log:
        document = run_request(
            catalog, request, keyring=ring, audit=log, state=StateStore(home / "dsr-state", ring),
            exports=str(home / "dsr-exports"),
        )  # fmt: skip
    target = home / "dsr-exports" / "certificates" / f"{REQUEST_ID}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dumps(document))
    return subject


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sample_lake_dir: Path) -> Iterator[Site]:
    """``airflow standalone`` with our two users, an audit log of real operations and a retention run."""
    _chromium()
    tmp = tmp_path_factory.mktemp("ui-browser")
    lake = tmp / "lake"
    shutil.copytree(sample_lake_dir, lake)
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    password_file = tmp / "passwords.json"
    password_file.write_text(json.dumps(passwords))
    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
    }
    with running_standalone(tmp, lake, env) as airflow, explained(airflow):
        _poll("a healthy scheduler", lambda: _scheduler_healthy(airflow.client), 120, airflow.proc)
        running = Site(airflow, passwords, None)
        airflow.client.headers["authorization"] = f"Bearer {running.token('officer')}"
        running.subject = _seed(airflow)
        runs = [_trigger(airflow, dag_id) for dag_id in (PIPELINE_DAG, RETENTION_DAG)]
        for run_path in runs:
            state = _poll(run_path, partial(_run_state, airflow.client, run_path), 300, airflow.proc)
            assert state == "success", run_path
        for dag_id in (PIPELINE_DAG, RETENTION_DAG):  # unpausing also started the latest interval's run
            finished = partial(_all_runs_finished, airflow.client, dag_id)
            _poll(f"no unfinished {dag_id} runs", finished, 300, airflow.proc)
        yield running


def _trigger(airflow: Standalone, dag_id: str) -> str:
    """Trigger ``dag_id`` through the REST API and unpause it; the run's API path."""
    client, proc = airflow.client, airflow.proc
    _poll(f"DAG {dag_id}", lambda: client.get(f"/api/v2/dags/{dag_id}").status_code == 200, 90, proc)
    triggered = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
    assert triggered.status_code == 200, triggered.text
    client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
    return f"/api/v2/dags/{dag_id}/dagRuns/{quote(triggered.json()['dag_run_id'], safe='')}"


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(_chromium()), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("AISEC_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"ui-{name}.png"), full_page=True)


def _login(browser: Any, site: Site, user: str) -> Any:
    """A browser page logged in as ``user`` through Airflow's own login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{site.url}/auth/login?next={quote(site.url + '/aisec/audit', safe='')}")
    page.fill("input[name='username']", user)
    page.fill("input[name='password']", site.passwords[user])
    page.click("button[type='submit']")
    page.wait_for_url(re.compile(r".*/aisec/audit.*"), timeout=30_000)
    return page


def _open(page: Any, site: Site, path: str) -> str:
    response = page.goto(f"{site.url}/aisec{path}")
    assert response is not None and response.status == 200, (path, response and response.status)
    return str(page.content())


def test_every_page_shows_what_the_audit_log_holds(browser: Any, site: Site) -> None:
    started = time.monotonic()
    with site.log() as log:
        entries = list(log.entries())
    newest = entries[-1]
    masks = [e for e in reversed(entries) if e.action == "pii.mask"]  # newest first, as the page lists them
    masked = masks[-1]
    retention_run = next(e for e in entries if e.action == "retention.delete").data["actor"]["run_id"]
    page = _login(browser, site, "auditor")
    with explained(site.airflow):
        html = _open(page, site, "/audit")
        assert f'href="/aisec/audit/entries/{newest.index}"' in html and f"{len(entries)} entries" in html
        _shot(page, "audit-log")
        html = _open(page, site, "/audit?action=pii.mask")
        assert re.findall(r'href="/aisec/audit/entries/(\d+)"', html) == [str(e.index) for e in masks]
        html = _open(page, site, f"/audit/entries/{masked.index}")
        assert "Proof verified" in html and masked.leaf_hash.hex() in html
        _shot(page, "entry-proof")
        html = _open(page, site, "/integrity")
        assert "Verify now</button>" not in html  # the auditor reads, the officer verifies
        _shot(page, "integrity-auditor")
        html = _open(page, site, "/lineage")
        assert "support_tickets_masked" in html and 'class="edge masked"' in html
        assert f'href="/dags/{PIPELINE_DAG}/runs/' in html and re.search(r'href="/assets/\d+"', html)
        _shot(page, "lineage")
        _open(page, site, "/lineage?dataset=support_tickets&depth=1")
        _shot(page, "lineage-around-dataset")
        html = _open(page, site, "/requests")
        assert REQUEST_ID in html
        _shot(page, "requests")
        html = _open(page, site, f"/requests/{REQUEST_ID}")
        assert "Certificate verified" in html
        page.click("summary")
        _shot(page, "request-certificate")
        html = _open(page, site, "/retention")
        assert retention_run in html and "litigation 2026-17" in html
        _shot(page, "retention")
        html = _open(page, site, "/datasets/customers")
        assert "EMAIL_ADDRESS" in html and "pii-columns" in html
        _shot(page, "dataset-classification")
        html = _open(page, site, f"/dags/{RETENTION_DAG}")
        assert "customers" in html
        # Inside Airflow's own UI: the Privacy entry of the navigation shows the pages in place.
        page.goto(f"{site.url}/plugin/privacy")
        page.frame_locator("iframe").locator("h1").first.wait_for(timeout=30_000)
        _shot(page, "airflow-nav")
    print(f"browser pages checked in {time.monotonic() - started:.1f} s")


def test_a_subject_lookup_shows_pseudonyms_only(browser: Any, site: Site) -> None:
    page = _login(browser, site, "auditor")
    page.fill("input[name='identity']", site.subject.email)
    page.click("form.lookup button")
    page.wait_for_load_state()
    html = page.content()
    assert REQUEST_ID in html and "hmac-sha256:" in html
    server_log = site.airflow.log_path.read_text(errors="replace")
    for raw in (site.subject.email, site.subject.customer_id):
        assert raw not in html and raw not in page.url and raw not in server_log
    _shot(page, "subject-lookup")


def test_anonymous_is_401_and_the_auditor_may_not_verify(browser: Any, site: Site) -> None:
    anonymous = browser.new_context().new_page()
    for path in ("/audit", "/integrity", "/lineage", f"/requests/{REQUEST_ID}", "/retention"):
        response = anonymous.goto(f"{site.url}/aisec{path}")
        assert response is not None and response.status == 401, path
    assert "Log in to Airflow" in anonymous.content()
    _shot(anonymous, "not-logged-in")
    auditor = _login(browser, site, "auditor")
    refused = auditor.request.post(f"{site.url}/aisec/integrity/verify", form={"token": "0" * 64})
    assert refused.status == 403
    assert httpx.get(f"{site.url}/aisec/audit", timeout=10).status_code == 401


def test_the_officer_verifies_now_and_the_page_shows_the_recorded_verification(
    browser: Any, site: Site
) -> None:
    page = _login(browser, site, "officer")
    _open(page, site, "/integrity")
    page.click("text=Verify now")
    page.wait_for_url(re.compile(r".*/aisec/integrity$"))
    with site.log() as log:
        recorded = [e for e in log.entries() if e.action == "audit.verify"][-1]
    assert recorded.data["outcome"] == "success" and recorded.data["actor"]["user"] == "officer"
    html = page.content()
    assert (
        f"#{recorded.index}</a>" in html and recorded.data["details"]["root"] in html and "Verified" in html
    )
    _shot(page, "integrity")
