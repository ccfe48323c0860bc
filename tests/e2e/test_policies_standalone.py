"""End to end: with ``[aisec] policies = True``, `airflow standalone`'s dag-processor refuses a DAG that
breaks the policies, and the REST API shows one import error listing every violation, while a compliant DAG
of the same folder is loaded."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_standalone import ROOT, Standalone, _poll, explained, running_standalone

pytestmark = pytest.mark.e2e

HEADER = """\
import datetime as dt

from airflow.sdk import DAG, Asset, task

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""

VIOLATING = """\
with DAG("aisec_e2e_violating", schedule=None, start_date=START):

    @task(inlets=[Asset(name="customers")])
    def no_purpose() -> None: ...

    @task(inlets=[Asset(name="orders")], params={"aisec_purpose": "marketing.advertising"})
    def wrong_purpose() -> None: ...

    @task(inlets=[Asset(name="customers")], outlets=[Asset(name="partner_export")],
          params={"aisec_purpose": "billing"})
    def raw_export() -> None: ...

    no_purpose() >> wrong_purpose() >> raw_export()
"""

COMPLIANT = """\
with DAG(
    "aisec_e2e_compliant",
    schedule=None,
    start_date=START,
    default_args={"owner": "data-platform", "aisec_purpose": "billing"},
):

    @task(inlets=[Asset(name="customers"), Asset(name="orders")])
    def invoice() -> None: ...

    invoice()
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """`airflow standalone` over a DAGs folder of one violating and one compliant DAG, policies on."""
    tmp = tmp_path_factory.mktemp("policies")
    dags = tmp / "dags"
    dags.mkdir()
    for name, body in (("violating", VIOLATING), ("compliant", COMPLIANT)):
        (dags / f"{name}.py").write_text(HEADER + textwrap.dedent(body), encoding="utf-8")
    settings = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__AISEC__POLICIES": "True",
        "AIRFLOW__AISEC__CATALOG": str(ROOT / "dags" / "catalog.yaml"),
    }
    with running_standalone(tmp, tmp / "lake", settings) as running:
        yield running


def _import_error(client: Any, filename: str) -> str | None:
    errors = client.get("/api/v2/importErrors").raise_for_status().json()["import_errors"]
    found = [e["stack_trace"] for e in errors if Path(e["filename"]).name == filename]
    return found[0] if found else None


def _dag_ids(client: Any) -> set[str]:
    return {d["dag_id"] for d in client.get("/api/v2/dags").raise_for_status().json()["dags"]}


def test_the_violating_dag_is_one_import_error_listing_all_its_violations(airflow: Standalone) -> None:
    client, proc = airflow.client, airflow.proc
    with explained(airflow):
        error = _poll("the import error", lambda: _import_error(client, "violating.py"), 240, proc)
        _poll("the compliant DAG", lambda: "aisec_e2e_compliant" in _dag_ids(client), 120, proc)
        assert "aisec_e2e_violating" not in _dag_ids(client)
    assert "AirflowClusterPolicyViolation: DAG aisec_e2e_violating: 4 aisec policy violations (" in error
    lines = sorted(line.split(": ", 2)[:2] for line in error.splitlines() if line.startswith("- "))
    assert lines == [
        ["- DAG", "AISEC-P002"],
        ["- task no_purpose", "AISEC-P001"],
        ["- task raw_export", "AISEC-P003"],
        ["- task wrong_purpose", "AISEC-P001"],
    ]
