"""A bias check of a catalog dataset, in core and with ``aisec bias check``."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from bias_data import ETHNICITIES
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.cli.main import app
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.exceptions import FairnessError
from airflow_aisec.fairness import BiasCounter, BiasThresholds, check_dataset, evaluate

PSEUDONYM = Pseudonymizer(b"k" * 32)


def _check(lake: dict[str, Any], **options: Any) -> Any:
    catalog = load_catalog(lake["catalog"], lake["vars"])
    return check_dataset(catalog, "scores", "approved", pseudonym=PSEUDONYM, **options)


def test_the_catalogs_protected_attributes_are_checked_in_one_pass_over_every_file(
    lake: dict[str, Any],
) -> None:
    report = _check(lake, label="repaid")
    assert report.files == 3 and report.rows == 600
    assert [a.attribute for a in report.attributes] == ["gender", "ethnicity"]
    gender = report.attributes[0]
    direct = BiasCounter("approved", ["gender"], label="repaid").add_all(lake["table"].to_batches())
    assert gender.metrics == evaluate(direct.counts["gender"], BiasThresholds()).metrics
    assert gender.metrics["selection_rate_ratio"] < 0.8  # women approved at about half the rate
    assert not report.passed and any(
        "gender: selection_rate_ratio" in v for v in report.as_dict()["violations"]
    )


def test_groups_of_an_attribute_declared_personal_are_shown_as_keyed_pseudonyms(lake: dict[str, Any]) -> None:
    report = _check(lake, attributes="ethnicity")
    document = json.dumps(report.as_dict())
    assert not any(value in document for value in ETHNICITIES)
    labels = [g.label for g in report.attributes[0].groups]
    assert len(labels) == 3 and all(label.startswith("group-") and len(label) == 18 for label in labels)
    assert labels == [g.label for g in _check(lake, attributes="ethnicity").attributes[0].groups]  # stable


def test_groups_of_an_attribute_not_declared_personal_are_shown_by_value(lake: dict[str, Any]) -> None:
    report = _check(lake, attributes=["gender"])
    assert [g.label for g in report.attributes[0].groups] == ["F", "M"]


def test_without_labels_only_selection_rates_are_measured(lake: dict[str, Any]) -> None:
    metrics = _check(lake, attributes="gender").attributes[0].metrics
    assert set(metrics) == {"selection_rate_ratio", "demographic_parity_difference"}


def test_an_attribute_the_catalog_does_not_declare_is_refused(lake: dict[str, Any]) -> None:
    with pytest.raises(FairnessError, match="protected attribute shoe_size is not a column the catalog"):
        _check(lake, attributes="shoe_size")
    catalog = load_catalog(lake["catalog"], lake["vars"])
    with pytest.raises(
        FairnessError, match="dataset unprotected: the catalog declares no protected attribute"
    ):
        check_dataset(catalog, "unprotected", "approved")


def test_groups_of_personal_data_need_a_pseudonym_key(lake: dict[str, Any]) -> None:
    catalog = load_catalog(lake["catalog"], lake["vars"])
    with pytest.raises(FairnessError, match="ethnicity is declared as personal data"):
        check_dataset(catalog, "scores", "approved", attributes="ethnicity")


def test_aisec_bias_check_prints_json_exits_1_on_bias_and_records_the_check(
    lake: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    args = ["--catalog", str(lake["catalog"]), "bias", "check", "scores", "--prediction", "approved",
            "--label", "repaid", "--var", f"lake={lake['root']}", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is False and document["rows"] == 600
    shown = result.output + caplog.text
    assert not any(value in shown for value in ETHNICITIES)
    with AuditLog.open() as log:
        entries = [e.data for e in log.entries() if e.action == "bias.check"]
    assert entries[-1]["outcome"] == "failure" and entries[-1]["dataset"] == "scores"
    assert not any(value in json.dumps(entries) for value in ETHNICITIES)

    fair = runner.invoke(app, [*args[:-1], "--attribute", "ethnicity", "--max-eo-difference", "0.2"])
    assert fair.exit_code == 0, fair.output
    assert "groups of ethnicity" in fair.stdout


def test_aisec_bias_check_names_a_missing_column(lake: dict[str, Any]) -> None:
    args = ["--catalog", str(lake["catalog"]), "bias", "check", "scores", "--prediction", "score",
            "--var", f"lake={lake['root']}"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "no column(s) score" in result.output


def test_encrypted_files_are_checked_decrypted_through_the_catalog_key(lake: dict[str, Any]) -> None:
    import os

    import pyarrow.parquet as pq

    from airflow_aisec.crypto.datasets import encrypt_files
    from airflow_aisec.crypto.providers import LocalKeyProvider
    from airflow_aisec.io import Location

    before = _check(lake, attributes="ethnicity").as_dict()
    scores = Location.parse(lake["root"] / "scores")
    provider = LocalKeyProvider(os.environ["AISEC_KEYRING"])
    encrypt_files(scores, scores, "parquet", provider, "bias-columns", columns=["ethnicity"])
    with pytest.raises(Exception, match=r"(?i)encrypt|decrypt|key"):
        pq.read_table(lake["root"] / "scores")
    assert _check(lake, attributes="ethnicity").as_dict() == before


@pytest.mark.integration
def test_a_dataset_on_s3_is_checked_file_by_file(lake: dict[str, Any], s3_options: Any, bucket: str) -> None:
    from airflow_aisec.io.storage import s3_client

    client = s3_client(s3_options)
    for path in sorted((lake["root"] / "scores").glob("*.parquet")):
        client.put_object(Bucket=bucket, Key=f"scores/{path.name}", Body=path.read_bytes())
    catalog = load_catalog(lake["catalog"], {"lake": f"s3://{bucket}"})
    report = check_dataset(catalog, "scores", "approved", label="repaid", pseudonym=PSEUDONYM, s3=s3_options)
    local = _check(lake, label="repaid")
    assert report.files == 3 and report.uri == f"s3://{bucket}/scores"
    assert [a.as_dict() for a in report.attributes] == [a.as_dict() for a in local.attributes]


def test_a_protected_attribute_inside_a_nested_field_is_a_catalog_error(lake: dict[str, Any]) -> None:
    from airflow_aisec.exceptions import CatalogError

    text = (
        lake["catalog"]
        .read_text()
        .replace("      repaid: {}\n", "      repaid: {}\n      profile.sex: {protected: true}\n", 1)
    )
    lake["catalog"].write_text(text)
    with pytest.raises(CatalogError, match=r"'profile\.sex': a protected attribute must be a top-level"):
        load_catalog(lake["catalog"], lake["vars"])
