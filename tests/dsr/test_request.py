"""Requests are checked against the catalog before anything is read; errors name fields, never values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from dsr_support import SUBJECT, catalog_for

from airflow_aisec.catalog import Catalog
from airflow_aisec.dsr import make_request, parse_identity
from airflow_aisec.exceptions import DsrError


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return catalog_for(tmp_path / "lake")


def _refused(catalog: Catalog, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(DsrError) as raised:
        make_request(catalog, *args, **kwargs)
    return str(raised.value)


def test_a_valid_request_keeps_raw_values_out_of_its_repr_and_public_form(catalog: Catalog) -> None:
    received = dt.datetime(2026, 11, 2, 9, 30)  # naive: taken as UTC
    request = make_request(
        catalog, "rectification", "email", f"  {SUBJECT.email} ", request_id="rect-2026.11-1",
        reason=f"asked by {SUBJECT.email.upper()} on the phone", changes={"phone": "+44 20 7946 0999"},
        received_at=received, deadline_days=10,
    )  # fmt: skip
    assert request.identity_value == SUBJECT.email  # trimmed
    assert request.deadline == dt.datetime(2026, 11, 12, 9, 30, tzinfo=dt.UTC)
    public = request.public(lambda value: "hmac-sha256:" + str(len(value)))
    assert public["subject"] == f"hmac-sha256:{len(SUBJECT.email)}"
    assert public["reason"] == "asked by [redacted] on the phone"
    assert public["fields"] == ["phone"]
    shown = repr(request) + repr(public)
    assert SUBJECT.email.lower() not in shown.lower() and "7946 0999" not in shown


@pytest.mark.parametrize(
    ("identity_type", "value", "request_id", "expected"),
    [
        ("passport", SUBJECT.email, "ok-1", "identity type 'passport' is not one of the catalog's"),
        ("email", "", "ok-1", "identity value: must be 1 to 1024 printable characters"),
        ("email", "   ", "ok-1", "identity value: must be 1 to 1024 printable characters"),
        ("email", f"{SUBJECT.email}\x00", "ok-1", "identity value: must be 1 to 1024 printable characters"),
        ("email", SUBJECT.email * 50, "ok-1", "identity value: must be 1 to 1024 printable characters"),
        ("email", SUBJECT.email, "../../etc/passwd", "request_id: 1 to 64 letters"),
        ("email", SUBJECT.email, "with space", "request_id: 1 to 64 letters"),
        ("email", SUBJECT.email, "x" * 65, "request_id: 1 to 64 letters"),
        ("email", SUBJECT.email, f"req-{SUBJECT.email}", "request_id: 1 to 64 letters"),
        ("email", SUBJECT.email, "r1:2", "request_id: 1 to 64 letters"),  # ':' separates audit key parts
    ],
    ids=[
        "unknown-identity-type", "empty-value", "blank-value", "control-character", "too-long",
        "path-as-request-id", "space-in-request-id", "request-id-too-long", "email-in-request-id",
        "colon-in-request-id",
    ],
)  # fmt: skip
def test_bad_requests_are_refused_without_quoting_the_value(
    catalog: Catalog, identity_type: str, value: str, request_id: str, expected: str
) -> None:
    message = _refused(catalog, "erasure", identity_type, value, request_id=request_id)
    assert message.startswith("invalid request: ") and expected in message
    assert SUBJECT.email not in message and "passwd" not in message and "with space" not in message


def test_every_problem_is_reported_at_once(catalog: Catalog) -> None:
    message = _refused(
        catalog, "portability", "ssn", "", request_id="-bad", reason="line\x07bell", deadline_days=0,
        changes={"phone": "+1 212-555-0100"},
    )  # fmt: skip
    for part in (
        "type: 'portability' is not one of access, erasure, rectification",
        "identity type 'ssn'",
        "identity value",
        "request_id",
        "reason: must not contain control characters",
        "deadline_days: must be at least 1",
        "portability: only a rectification changes fields",
    ):
        assert part in message, part
    assert "555-0100" not in message


def test_access_needs_a_declared_export_key(catalog: Catalog) -> None:
    assert "access: name the key the export is encrypted with" in _refused(
        catalog, "access", "email", SUBJECT.email
    )
    message = _refused(catalog, "access", "email", SUBJECT.email, export_key="no-such-key")
    declared = "(aisec-pseudonyms, pii-columns)"
    assert f"export_key: 'no-such-key' is not declared in the catalog's keys {declared}" in message


def test_a_generated_request_id_names_the_kind() -> None:
    catalog = catalog_for("/nonexistent")
    request = make_request(catalog, "erasure", "customer_id", SUBJECT.customer_id)
    kind, day, token = request.request_id.split("-")
    assert (kind, len(day), len(token)) == ("erasure", 8, 8)
    assert make_request(catalog, "erasure", "customer_id", "C1").request_id != request.request_id


def test_identities_are_parsed_from_type_equals_value() -> None:
    assert parse_identity(" email = a.b@example.com ") == ("email", "a.b@example.com")
    assert parse_identity("customer_id=C=1") == ("customer_id", "C=1")
    for text in (SUBJECT.email, "=x", "email=", "email=  "):
        with pytest.raises(DsrError, match="expected TYPE=VALUE") as raised:
            parse_identity(text)
        assert SUBJECT.email not in str(raised.value)
