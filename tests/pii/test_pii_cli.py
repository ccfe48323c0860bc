"""`aisec scan`, `aisec mask` and `aisec unmask` on the sample lake, recorded in the audit log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from airflow_aisec.audit import AuditLog
from airflow_aisec.cli.main import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"


@pytest.fixture
def env(tmp_path: Path, sample_lake_dir: Path) -> dict[str, object]:
    lake = tmp_path / "lake"
    shutil.copytree(sample_lake_dir, lake)
    log, keyring = f"sqlite:///{tmp_path / 'audit.db'}", str(tmp_path / "keys.json")
    return {"lake": lake, "args": ["--log", log, "--keyring", keyring], "log": log, "keyring": keyring}


def run(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_scan_json_classifies_columns(env: dict) -> None:  # type: ignore[type-arg]
    out = run([*env["args"], "scan", str(env["lake"] / "customers"), "--json", "--mode", "patterns"])
    columns = json.loads(out)["columns"]
    assert columns["email"]["entity"] == "EMAIL_ADDRESS"
    assert columns["phone"]["entity"] == "PHONE_NUMBER"
    assert columns["created_at"]["entity"] is None
    assert 0 <= columns["email"]["confidence"] <= 1


def test_scan_against_catalog_reports_undeclared_pii(env: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    lake = env["lake"]
    first = sorted((lake / "orders").glob("*.parquet"))[0]
    table = pq.read_table(first)
    contact = pa.array([f"buyer{i}@example.org" for i in range(table.num_rows)])
    pq.write_table(table.append_column("contact", contact), first)
    base = [*env["args"], "scan", "--catalog", str(EXAMPLE), "--dataset", "orders", "--var", f"lake={lake}"]
    result = runner.invoke(app, [*base, "--json", "--mode", "patterns", "--fail-on-undeclared"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["undeclared"] == ["contact"]
    with AuditLog.open(env["log"], keyring=env["keyring"]) as log:
        [entry] = [e.data for e in log.entries() if e.action == "pii.scan"]
    assert entry["outcome"] == "failure" and entry["details"]["undeclared"] == ["contact"]
    assert "buyer0@example.org" not in json.dumps(entry)


def test_a_uuid_key_reviewed_as_pii_none_passes_fail_on_undeclared(env: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    import uuid

    lake = env["lake"]
    for path in sorted((lake / "orders").glob("*.parquet")):
        table = pq.read_table(path)
        keys = pa.array([str(uuid.uuid4()) for _ in range(table.num_rows)])
        pq.write_table(table.append_column("tracking_id", keys), path)
    reviewed = tmp_path / "reviewed.yaml"
    text = EXAMPLE.read_text()
    declared = "      order_id: {}\n      customer_id: {}\n      shipping_address"
    assert text.count(declared) == 1
    with_key = declared.replace("      order_id: {}", "      order_id: {}\n      tracking_id: {pii: none}")
    reviewed.write_text(text.replace(declared, with_key))
    scan = ["scan", "--dataset", "orders", "--var", f"lake={lake}", "--json", "--mode", "patterns"]
    before = runner.invoke(app, [*env["args"], *scan, "--catalog", str(EXAMPLE), "--fail-on-undeclared"])
    assert before.exit_code == 1 and json.loads(before.stdout)["undeclared"] == ["tracking_id"]
    after = runner.invoke(app, [*env["args"], *scan, "--catalog", str(reviewed), "--fail-on-undeclared"])
    assert after.exit_code == 0, after.output
    report = json.loads(after.stdout)
    assert report["undeclared"] == [] and report["columns"]["tracking_id"]["entity"] == "UUID"


def test_mask_with_catalog_masks_free_text_and_records_digests(env: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    lake, out = env["lake"], tmp_path / "masked"
    run([
        *env["args"], "mask", str(lake / "support_tickets"), str(out),
        "--catalog", str(EXAMPLE), "--dataset", "support_tickets", "--var", f"lake={lake}", "--json",
    ])  # fmt: skip
    before = "".join(p.read_text() for p in sorted((lake / "support_tickets").glob("*.jsonl")))
    after = "".join(p.read_text() for p in sorted(out.glob("*.jsonl")))
    assert before.count("\n") == after.count("\n")
    assert "@example." in before and "@example." not in after
    assert "<EMAIL_ADDRESS>" in after
    with AuditLog.open(env["log"], keyring=env["keyring"]) as log:
        [entry] = [e.data for e in log.entries() if e.action == "pii.mask"]
        assert log.verify().ok
    assert entry["columns"] == ["body"]
    assert entry["details"]["masked_per_entity"]["EMAIL_ADDRESS"] > 0
    assert all(len(o["sha256"]) == 64 for o in entry["outputs"])


def test_mask_without_catalog_masks_what_the_scan_finds(env: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    src = env["lake"] / "customers"
    out = tmp_path / "customers_masked"
    run([*env["args"], "mask", str(src), str(out), "--mode", "patterns"])
    original = pq.read_table(src)
    masked = pq.read_table(out)
    assert masked.schema == original.schema
    emails = set(original["email"].to_pylist())
    assert not emails & set(masked["email"].to_pylist())
    assert masked["customer_id"].to_pylist() == original["customer_id"].to_pylist()


def test_encrypt_strategy_round_trips_through_unmask(env: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        EXAMPLE.read_text().replace(
            "email: {pii: EMAIL_ADDRESS}", "email: {pii: EMAIL_ADDRESS, mask: {strategy: encrypt}}"
        )
    )
    lake, out, back = env["lake"], tmp_path / "enc", tmp_path / "dec"
    run([
        *env["args"], "mask", str(lake / "customers"), str(out),
        "--catalog", str(catalog), "--dataset", "customers", "--var", f"lake={lake}", "--mode", "patterns",
    ])  # fmt: skip
    assert all(v.startswith("enc:") for v in pq.read_table(out)["email"].to_pylist())
    run([*env["args"], "unmask", str(out), str(back), "--columns", "email"])
    assert pq.read_table(back)["email"].to_pylist() == pq.read_table(lake / "customers")["email"].to_pylist()
