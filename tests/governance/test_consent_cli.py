"""``aisec consent show|grant|withdraw`` for the privacy office (the subject identifier typed is never printed
back), and the catalog's checks of its consent source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import catalog_file
from consent_setup import consent_catalog, consent_edit, customer_ids
from typer.testing import CliRunner

from airflow_aisec.catalog import load_catalog
from airflow_aisec.cli.main import app
from airflow_aisec.exceptions import CatalogError, ConsentError


def _aisec(tmp_path: Path, catalog: Path, lake: Path, *args: str) -> Any:
    flags = ["--catalog", str(catalog), "--log", f"sqlite:///{tmp_path / 'audit.db'}"]
    flags += ["--keyring", str(tmp_path / "keyring.json")]
    command = [*args[:2], *args[2:], "--var", f"lake={lake}"]
    return CliRunner().invoke(app, [*flags, *command])


def test_grant_show_and_withdraw_name_the_subject_by_pseudonym_only(
    sample_lake_dir: Path, tmp_path: Path
) -> None:
    _, path = consent_catalog(sample_lake_dir, tmp_path)
    [subject] = customer_ids(sample_lake_dir, 1)
    granted = _aisec(tmp_path, path, sample_lake_dir, "consent", "grant", "--subject-id", subject,
                     "--purpose", "newsletter", "--at", "2026-03-01T09:00:00Z", "--json")  # fmt: skip
    assert granted.exit_code == 0, granted.output
    change = json.loads(granted.stdout)
    assert change["changed"] and change["subject"].startswith("hmac-sha256:")
    withdrawn = _aisec(tmp_path, path, sample_lake_dir, "consent", "withdraw", "--subject-id", subject,
                       "--purpose", "newsletter", "--at", "2026-04-01T09:00:00Z")  # fmt: skip
    assert withdrawn.exit_code == 0 and "withdrawn newsletter" in withdrawn.stdout
    shown = _aisec(tmp_path, path, sample_lake_dir, "consent", "show", "--subject-id", subject, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {
        "subject": change["subject"],
        "identity": "customer_id",
        "consents": {"newsletter": {"state": "withdrawn", "since": "2026-04-01T09:00:00+00:00"}},
    }
    assert not [r for r in (granted, withdrawn, shown) if subject in r.output]


def test_an_unknown_purpose_is_refused_naming_no_value(sample_lake_dir: Path, tmp_path: Path) -> None:
    _, path = consent_catalog(sample_lake_dir, tmp_path)
    result = _aisec(
        tmp_path, path, sample_lake_dir, "consent", "grant", "--subject-id", "C-1", "--purpose", "x y"
    )
    assert isinstance(result.exception, ConsentError)
    assert "purpose '<not a purpose name>'" in str(result.exception) and "C-1" not in str(result.exception)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["consent"].update(dataset="consent_log"),
            r"consent.dataset: unknown dataset 'consent_log'",
        ),
        (
            lambda d: d["datasets"]["consents"]["columns"].pop("withdrawn_at"),
            r"lacks the column\(s\) withdrawn_at",
        ),
        (
            lambda d: d.pop("consent"),
            r"purposes.newsletter.needs_consent: purpose 'newsletter' needs consent, but",
        ),
        (
            lambda d: d["datasets"]["consents"].update(identity={}),
            r"consent dataset 'consents' has no identity",
        ),
    ],
)
def test_the_catalog_refuses_a_consent_source_that_cannot_be_read(
    sample_lake_dir: Path, tmp_path: Path, change: Any, message: str
) -> None:
    def edit(data: Any) -> None:
        consent_edit(tmp_path / "consents")(data)
        change(data)

    with pytest.raises(CatalogError, match=message):
        load_catalog(catalog_file(tmp_path, edit), {"lake": str(sample_lake_dir)})
