"""Model cards from the audit log and the catalog: training data through lineage, signature, verification,
drift, bias, metrics and notes; escaped HTML and Markdown; never a data value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from model_audit import entries
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.catalog.models import Catalog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.drift import drift_check
from airflow_aisec.exceptions import ModelCardError
from airflow_aisec.model import record, sign_model, signing_key, training_inputs, verify_model, verifying_keys
from airflow_aisec.model.card import ModelCard, gather_card, load_metrics
from airflow_aisec.model.card_render import render_html, render_markdown, write_card

EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
PLANTED = ("jane.roe@example.org", "Jane Roe")  # values in the data that no card may show


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return load_catalog(EXAMPLE, {"lake": str(tmp_path / "lake")})


def _drift_data(folder: Path) -> tuple[str, str]:
    """A reference and a drifted current table, one of whose columns holds a planted email and name."""
    folder.mkdir()
    contacts = [f"{PLANTED[0]} / {PLANTED[1]}"] * 30 + [f"c{i}" for i in range(30)]
    pq.write_table(
        pa.table({"amount": [float(i) for i in range(60)], "contact": contacts}), folder / "ref.parquet"
    )
    pq.write_table(
        pa.table({"amount": [float(i) * 9 + 500 for i in range(60)], "contact": contacts[::-1]}),
        folder / "cur.parquet",
    )
    return str(folder / "ref.parquet"), str(folder / "cur.parquet")


BIAS_DETAILS = {
    "dataset": "customers",
    "rows": 400,
    "prediction": "approved",
    "label": None,
    "passed": False,
    "attributes": [
        {
            "attribute": "birth_date",
            "groups": [{"group": PLANTED[1], "n": 200, "selection_rate": 0.5}],
            "compared_groups": 2,
            "small_groups": 0,
            "metrics": {"selection_rate_ratio": 0.61, "demographic_parity_difference": 0.2},
            "passed": False,
            "violations": [f"birth_date: group {PLANTED[1]}"],
        }
    ],
}


@pytest.fixture
def world(ring: LocalKeyring, log_path: str, catalog: Catalog, model: Path, tmp_path: Path) -> str:
    """A log where tickets were landed, masked, the model trained on the masked copy and on customers
    (encrypted in place), signed, verified, checked for drift and for bias."""
    with AuditLog.open(log_path, keyring=ring) as opened:
        opened.append(
            "task.outcome",
            inputs=[{"uri": "tickets", "dataset": "support_tickets"}],
            outputs=[{"uri": "landing", "dataset": "support_tickets_landing"}],
        )
        opened.append(
            "pii.mask",
            dataset="support_tickets",
            inputs=[{"uri": "landing", "dataset": "support_tickets_landing"}],
            outputs=[{"uri": "masked", "dataset": "support_tickets_masked"}],
            columns=["body"],
            rows=120,
        )
        customers = {"uri": "customers", "dataset": "customers"}
        opened.append("dataset.encrypt", dataset="customers", inputs=[customers], outputs=[customers])
        refs = training_inputs(catalog, ["support_tickets_masked", "customers"])
        record(opened, sign_model(model, signing_key("model-signing", keyring=ring), inputs=refs))
        record(opened, verify_model(model, verifying_keys("model-signing", keyring=ring)))
        run = drift_check(*_drift_data(tmp_path / "drift"))
        opened.append("drift.check", dataset="customers", **run.result.audit_fields())
        opened.append("bias.check", dataset="customers", outcome="failure", details=BIAS_DETAILS)
    return log_path


@pytest.fixture
def log(world: str, ring: LocalKeyring) -> Iterator[AuditLog]:
    """The audit log of ``world``, open."""
    with AuditLog.open(world, keyring=ring) as opened:
        yield opened


def _card(log: AuditLog, catalog: Catalog, **kwargs: Any) -> ModelCard:
    return gather_card(log, catalog, "fraud-model", **kwargs)


def test_the_card_lists_training_datasets_through_lineage_with_pii_protection_purposes_and_retention(
    log: AuditLog, catalog: Catalog
) -> None:
    card = _card(log, catalog)
    by_name = {d.name: d for d in card.datasets}
    assert set(by_name) == {
        "support_tickets_masked",
        "customers",
        "support_tickets_landing",
        "support_tickets",
    }
    masked, landing, customers = (
        by_name["support_tickets_masked"],
        by_name["support_tickets_landing"],
        by_name["customers"],
    )
    assert masked.direct and customers.direct and not landing.direct
    assert landing.feeds == ("support_tickets_masked",)
    assert masked.pii == {"body": "free_text"} and masked.purposes == ("support",)
    assert masked.retention == "P2Y from opened_at"
    assert [s.label() for s in masked.applied] == ["pii.mask #1 (from support_tickets_landing)"]
    assert customers.pii == {
        "full_name": "PERSON",
        "email": "EMAIL_ADDRESS",
        "phone": "PHONE_NUMBER",
        "birth_date": "DATE_TIME",
    }
    assert customers.masking == {"birth_date": "generalize"}
    assert customers.encrypted == {"email": "pii-columns", "phone": "pii-columns", "full_name": "pii-columns"}
    assert [s.action for s in customers.applied] == ["dataset.encrypt"]
    text = render_markdown(card)
    assert "| support_tickets_landing | upstream of support_tickets_masked |" in text
    assert "email: encrypted (pii-columns)" in text and "birth_date: generalize" in text
    assert "billing, support" in text and "P3Y from created_at" in text


def test_the_card_shows_signature_verification_drift_bias_metrics_and_notes(
    log: AuditLog, catalog: Catalog
) -> None:
    [signed] = [e for e in log.entries() if e.action == "model.sign"]
    card = _card(log, catalog, metrics={"auc": 0.91234, "rows": 1200}, notes="Intended use: triage only.")
    assert card.verified
    assert card.signature is not None and card.signature.index == signed.index
    assert card.signature.details["key"] == "local:model-signing@v1"
    assert card.signature.details["manifest_sha256"] == signed.data["details"]["manifest_sha256"]
    text = render_markdown(card)
    assert "| result | verified |" in text
    assert f"| manifest_sha256 | {signed.data['details']['manifest_sha256']} |" in text
    assert (
        "## Drift" in text
        and "| outcome | drift detected |" in text
        and "| columns drifted | amount |" in text
    )
    assert (
        "| outcome | failed: a metric is past its threshold |" in text and "selection_rate_ratio 0.61" in text
    )
    assert "| auc | 0.9123 |" in text and "| rows | 1200 |" in text
    assert "Intended use: triage only." in text


def test_a_model_signed_again_since_its_last_verification_is_not_shown_verified(
    log: AuditLog, catalog: Catalog, model: Path, ring: LocalKeyring
) -> None:
    (model / "config.json").write_text('{"layers": 5}\n')
    record(log, sign_model(model, signing_key("model-signing", keyring=ring)))
    card = _card(log, catalog)
    assert not card.verified
    assert "NOT verified (the verification is of another signed version)" in render_markdown(card)


def test_html_and_markdown_escape_every_value(log: AuditLog, catalog: Catalog) -> None:
    evil = "<script>alert(1)</script>"
    card = _card(log, catalog, metrics={f"<b>{evil}</b>|x": evil}, notes=f"{evil}\n\nsecond & last")
    page = render_html(card)
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "second &amp; last" in page
    text = render_markdown(card)
    assert "<script" not in text and "<b>" not in text and "\\|x" in text


def test_the_card_holds_no_data_value(log: AuditLog, catalog: Catalog, tmp_path: Path) -> None:
    card = _card(log, catalog)
    files = write_card(card, tmp_path / "cards")
    assert sorted(p.name for p in files) == ["fraud-model.card.html", "fraud-model.card.md"]
    written = "".join(p.read_text() for p in files) + json.dumps(card.as_dict())
    assert "Jane" not in written and "@example.org" not in written
    assert all(oct(p.stat().st_mode)[-3:] == "644" for p in files)


def test_a_model_never_signed_has_no_card(log: AuditLog, catalog: Catalog) -> None:
    with pytest.raises(ModelCardError, match=r"no model\.sign entry for model://churn"):
        gather_card(log, catalog, "model://churn")


def test_metrics_come_from_json_or_yaml_and_a_nested_metric_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"auc": 0.9, "note": "ok"}')
    (tmp_path / "m.yaml").write_text("auc: 0.9\nf1: 0.8\n")
    (tmp_path / "bad.yaml").write_text("per_class: {a: 0.9}\n")
    assert load_metrics(tmp_path / "m.json") == {"auc": 0.9, "note": "ok"}
    assert load_metrics(tmp_path / "m.yaml") == {"auc": 0.9, "f1": 0.8}
    with pytest.raises(ModelCardError, match="metric 'per_class' is a dict"):
        load_metrics(tmp_path / "bad.yaml")
    with pytest.raises(ModelCardError, match="cannot be read"):
        load_metrics(tmp_path / "missing.yaml")


def test_the_command_line_writes_the_card_and_records_it(
    world: str, log_path: str, ring: LocalKeyring, tmp_path: Path
) -> None:
    (tmp_path / "metrics.yaml").write_text("auc: 0.91\n")
    (tmp_path / "notes.md").write_text("Limitations: synthetic data.\n")
    flags = ["--log", log_path, "--keyring", str(ring.path)]
    result = CliRunner().invoke(
        app,
        [*flags, "model", "card", "fraud-model", "--metrics", str(tmp_path / "metrics.yaml"), "--notes",
         str(tmp_path / "notes.md"), "--out", str(tmp_path / "out"), "--format", "html",
         "--catalog", str(EXAMPLE), "--var", f"lake={tmp_path / 'lake'}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "model card of model://fraud-model (verified, 4 training dataset(s))" in result.stdout
    page = (tmp_path / "out" / "fraud-model.card.html").read_text()
    assert "Limitations: synthetic data." in page and "0.91" in page
    assert not (tmp_path / "out" / "fraud-model.card.md").exists()
    [entry] = entries(log_path, "model.card", str(ring.path))
    details: Any = entry["details"]
    assert entry["dataset"] == "model://fraud-model" and details["verified"] is True
    assert list(details["files"]) == [str(tmp_path / "out" / "fraud-model.card.html")]
    assert details["metrics"] == ["auc"]


def test_an_unknown_card_format_is_refused_before_anything_is_written(
    world: str, ring: LocalKeyring, tmp_path: Path
) -> None:
    flags = ["--log", world, "--keyring", str(ring.path)]
    result = CliRunner().invoke(
        app, [*flags, "model", "card", "fraud-model", "--format", "pdf", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2 and "unknown card format(s) pdf" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_verified_copy_elsewhere_does_not_make_a_changed_model_verified(
    log: AuditLog, catalog: Catalog, model: Path, ring: LocalKeyring, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy" / model.name
    shutil.copytree(model, copy)
    shutil.copy(model.with_name(model.name + ".sig"), copy.with_name(model.name + ".sig"))
    (model / "weights.bin").write_bytes(b"changed after signing")
    keys = verifying_keys("model-signing", keyring=ring)
    record(log, verify_model(model, keys))
    record(log, verify_model(copy, keys))  # the untouched copy verifies, under the same model name

    card = _card(log, catalog)
    assert card.verification is not None and card.verification.outcome == "failure"
    assert not card.verified
