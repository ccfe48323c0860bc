"""Every route of the Privacy pages behind Airflow's auth: 200 when permitted, 401 anonymous, 403 refused;
"verify now" for the narrower permission only, with its form token; no raw identifier anywhere."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from ui_seed import REQUEST_ID, Seeded, Users

from airflow_aisec.audit import AuditLog

PAGES = [
    "/aisec/audit",
    "/aisec/audit?action=dsr.&outcome=success",
    "/aisec/audit/entries/0",
    "/aisec/integrity",
    "/aisec/lineage",
    "/aisec/lineage?dataset=support_tickets&depth=1",
    "/aisec/requests",
    f"/aisec/requests/{REQUEST_ID}",
    f"/aisec/requests/{REQUEST_ID}/certificate.json",
    "/aisec/retention",
    "/aisec/datasets/customers",
    "/aisec/dags/aisec_privacy_pipeline",
]
HTML = {"accept": "text/html"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **HTML}


def form_token(html: str) -> str:
    found = re.search(r'name="token" value="([0-9a-f]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_shown_to_a_reader(client: Any, users: Users, path: str) -> None:
    response = client.get(path, headers=bearer(users.viewer))
    assert response.status_code == 200, response.text
    if not path.endswith(".json"):
        assert "Content-Security-Policy" in response.headers


@pytest.mark.parametrize("path", [*PAGES, "/aisec/"])
def test_every_page_refuses_an_anonymous_request_with_401(client: Any, path: str) -> None:
    assert client.get(path, headers=HTML).status_code == 401
    assert client.get(path).status_code == 401  # an API client gets JSON


@pytest.mark.parametrize("path", [*PAGES, "/aisec/"])
def test_every_page_refuses_a_user_without_the_permission_with_403(
    client: Any, users: Users, path: str
) -> None:
    assert client.get(path, headers=bearer(users.outsider)).status_code == 403


def test_a_bad_token_is_refused(client: Any) -> None:
    assert client.get("/aisec/audit", headers=bearer("not-a-jwt")).status_code in (401, 403)


def test_the_stylesheet_is_public_and_says_nothing(client: Any) -> None:
    response = client.get("/aisec/static/aisec.css")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")


def test_the_ui_cookie_authenticates_like_the_bearer_header(client: Any, users: Users) -> None:
    client.cookies.set("_token", users.viewer)
    try:
        assert client.get("/aisec/audit", headers=HTML).status_code == 200
    finally:
        client.cookies.clear()


def test_posts_are_refused_anonymous_and_without_permission(client: Any, users: Users) -> None:
    assert client.post("/aisec/audit/subject", data={"identity": "x"}).status_code == 401
    assert client.post("/aisec/integrity/verify", data={}).status_code == 401
    assert client.post("/aisec/integrity/verify", headers=bearer(users.outsider)).status_code == 403
    lookup = client.post("/aisec/audit/subject", data={"identity": "x"}, headers=bearer(users.outsider))
    assert lookup.status_code == 403


def test_a_viewer_reads_the_integrity_page_but_may_not_verify_now(client: Any, users: Users) -> None:
    page = client.get("/aisec/integrity", headers=bearer(users.viewer))
    assert page.status_code == 200 and "Verify now</button>" not in page.text
    refused = client.post("/aisec/integrity/verify", data={"token": "0" * 64}, headers=bearer(users.viewer))
    assert refused.status_code == 403


def test_verify_now_runs_the_verification_and_records_it(
    client: Any, users: Users, configured: Seeded
) -> None:
    page = client.get("/aisec/integrity", headers=bearer(users.admin))
    assert "Verify now</button>" in page.text
    with AuditLog.open(configured.log_uri, keyring=str(configured.keyring), create=False) as log:
        before = log.size()
    done = client.post(
        "/aisec/integrity/verify",
        data={"token": form_token(page.text)},
        headers=bearer(users.admin),
        follow_redirects=False,
    )
    assert done.status_code == 303
    with AuditLog.open(configured.log_uri, keyring=str(configured.keyring), create=False) as log:
        recorded = next(log.entries(before, before + 1))
        assert log.verify().ok
    assert recorded.action == "audit.verify" and recorded.data["outcome"] == "success"
    assert recorded.data["rows"] == before
    assert recorded.data["actor"]["user"] == "alice" and recorded.data["actor"]["kind"] == "airflow-ui"
    shown = client.get("/aisec/integrity", headers=bearer(users.admin)).text
    assert f"#{before}</a>" in shown and recorded.data["details"]["root"] in shown


def test_verify_now_needs_the_pages_own_form_token(client: Any, users: Users) -> None:
    headers = bearer(users.admin)
    assert client.post("/aisec/integrity/verify", data={}, headers=headers).status_code == 403
    assert (
        client.post("/aisec/integrity/verify", data={"token": "0" * 64}, headers=headers).status_code == 403
    )
    page = client.get("/aisec/integrity", headers=headers)
    foreign = {**headers, "origin": "https://elsewhere.example"}
    data = {"token": form_token(page.text)}
    assert client.post("/aisec/integrity/verify", data=data, headers=foreign).status_code == 403


def test_a_subject_is_looked_up_by_post_and_never_echoed(
    client: Any, users: Users, configured: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    customer = configured.subject
    page = client.get("/aisec/audit", headers=bearer(users.viewer))
    for identity in (customer.email, customer.customer_id):  # the catalog's identity types
        found = client.post(
            "/aisec/audit/subject",
            data={"identity": identity, "token": form_token(page.text)},
            headers=bearer(users.viewer),
        )
        assert found.status_code == 200
        assert REQUEST_ID in found.text  # every entry of their request, whichever identity named them
        assert "hmac-sha256:" in found.text
        for raw in (customer.email, customer.customer_id, customer.phone):
            assert raw not in found.text
            assert raw not in str(found.url) and raw not in str(found.headers)
            assert raw not in caplog.text
    # Pagination and filter links carry only the pseudonym.
    assert re.search(r'href="/aisec/audit\?subject=hmac-sha256%3A[0-9a-f]{64}"', found.text)


def test_a_raw_identifier_in_a_url_is_refused_without_echo(
    client: Any, users: Users, configured: Seeded
) -> None:
    email = configured.subject.email
    response = client.get("/aisec/audit", params={"subject": email}, headers=bearer(users.viewer))
    assert response.status_code == 400 and email not in response.text


def test_malformed_parameters_are_named_but_not_quoted(client: Any, users: Users) -> None:
    response = client.get("/aisec/audit?before=secret-value", headers=bearer(users.viewer))
    assert response.status_code == 400 and "before" in response.text and "secret-value" not in response.text


def test_the_audit_page_filters_and_paginates(client: Any, users: Users, configured: Seeded) -> None:
    with AuditLog.open(configured.log_uri, keyring=str(configured.keyring), create=False) as log:
        erasure = [e.index for e in log.entries() if e.action == "dsr.erasure"]
    shown = client.get("/aisec/audit?action=dsr.erasure", headers=bearer(users.viewer)).text
    listed = {int(i) for i in re.findall(r'href="/aisec/audit/entries/(\d+)"', shown)}
    assert listed == set(erasure)
    first = client.get("/aisec/audit?action=dsr.erasure", headers=bearer(users.viewer))
    assert first.status_code == 200


def test_an_entry_shows_its_verified_inclusion_proof(client: Any, users: Users) -> None:
    shown = client.get("/aisec/audit/entries/1", headers=bearer(users.viewer)).text
    assert "Proof verified" in shown and "signed with the log&#39;s key" in shown


def test_the_request_page_shows_steps_and_a_verified_certificate(client: Any, users: Users) -> None:
    shown = client.get(f"/aisec/requests/{REQUEST_ID}", headers=bearer(users.viewer)).text
    assert "Certificate verified" in shown and "Download the certificate" in shown
    assert "complete" in shown and "orders" in shown
    download = client.get(f"/aisec/requests/{REQUEST_ID}/certificate.json", headers=bearer(users.viewer))
    assert download.json()["certificate"]["request"]["request_id"] == REQUEST_ID
    assert "attachment" in download.headers["content-disposition"]


def test_unknown_things_are_404(client: Any, users: Users) -> None:
    headers = bearer(users.viewer)
    for path in ("/aisec/audit/entries/99999", "/aisec/requests/nope", "/aisec/datasets/nope"):
        assert client.get(path, headers=headers).status_code == 404
    assert client.get("/aisec/lineage?dataset=nope", headers=headers).status_code == 404
    assert client.get("/aisec/requests/..%2Fetc", headers=headers).status_code in (400, 404)


def test_the_lineage_page_marks_masked_and_encrypted_flows(client: Any, users: Users) -> None:
    shown = client.get("/aisec/lineage", headers=bearer(users.viewer)).text
    assert "<svg" in shown and 'class="edge masked"' in shown
    assert "support_tickets_masked" in shown


def test_the_dataset_page_shows_its_classification(client: Any, users: Users) -> None:
    shown = client.get("/aisec/datasets/customers", headers=bearer(users.viewer)).text
    assert "EMAIL_ADDRESS" in shown and "generalize to=year" in shown and "pii-columns" in shown


def test_the_plugin_declares_the_nav_entry_and_the_dag_tab() -> None:
    from airflow_aisec.plugins import AisecPlugin

    views = {v["destination"]: v for v in AisecPlugin.external_views}
    assert views["nav"]["href"] == "/aisec/audit" and views["nav"]["nav_top_level"] is True
    assert views["dag"]["href"] == "/aisec/dags/{DAG_ID}"
    assert AisecPlugin.fastapi_apps[0]["url_prefix"] == "/aisec"


def test_a_dataset_that_is_an_airflow_asset_links_to_its_page(client: Any, users: Users) -> None:
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        asset = AssetModel(name="customers", uri="file:///lake/customers")
        session.add(asset)
        session.flush()
        asset_id = asset.id
    try:
        shown = client.get("/aisec/datasets/customers", headers=bearer(users.viewer)).text
        assert f'href="/assets/{asset_id}"' in shown
        tab = client.get("/aisec/dags/aisec_privacy_pipeline", headers=bearer(users.viewer)).text
        assert f'href="/assets/{asset_id}"' in tab
    finally:
        with create_session() as session:
            session.query(AssetModel).filter(AssetModel.id == asset_id).delete()


def test_lineage_boxes_show_a_path_by_its_file_and_a_name_by_its_start() -> None:
    from airflow_aisec.plugins.ui.render import label

    assert label("customers") == "customers"
    assert label("file:///tmp/a/very/long/lake/masked/support_tickets-2024.jsonl").endswith(
        "support_tickets-2024.jsonl"
    )
    assert label("a_dataset_name_far_too_long_for_its_box").startswith("a_dataset_name")
