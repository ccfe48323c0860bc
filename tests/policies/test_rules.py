"""The rules on DAGs built in the test, without a DagBag: which Asset is which catalog dataset, mapped tasks,
and a setting that is not True or False."""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path
from typing import Any

import pytest

from airflow_aisec.catalog import Catalog, load_catalog
from airflow_aisec.policies import check_dag
from airflow_aisec.policies.tasks import catalog_dataset_of

CATALOG = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(str(CATALOG), {"lake": "s3://company-lake/prod"})


@pytest.mark.parametrize(
    ("name", "uri", "dataset"),
    [
        ("customers", "customers", "customers"),
        ("s3://company-lake/prod/orders", "s3://company-lake/prod/orders", "orders"),
        ("raw", "s3://company-lake/prod/orders/2026/part-0.parquet", "orders"),
        ("raw", "s3a://company-lake/prod/orders/", "orders"),
        ("raw", "s3://company-lake/prod/orders_archive/part-0.parquet", None),
        ("raw", "s3://other-lake/prod/orders/part-0.parquet", None),
        ("partner_export", "partner_export", None),
    ],
)
def test_an_asset_is_a_catalog_dataset_by_its_name_or_its_location(
    catalog: Catalog, name: str, uri: str, dataset: str | None
) -> None:
    assert catalog_dataset_of(types.SimpleNamespace(name=name, uri=uri), catalog) == dataset


def _dag(**default_args: Any) -> Any:
    from airflow.sdk import DAG, Asset, task

    with DAG("aisec_test_mapped", schedule=None, start_date=START, default_args=default_args) as dag:

        @task(inlets=[Asset(name="customers")], outlets=[Asset(name="partner_export")])
        def export(part: int) -> None: ...

        export.expand(part=[1, 2])
    return dag


def test_a_mapped_task_is_judged_like_the_task_it_maps(catalog: Catalog) -> None:
    found = check_dag(_dag(), catalog)
    assert [(v.task_id, v.rule) for v in found] == [
        ("export", "AISEC-P001"),
        ("export", "AISEC-P003"),
        (None, "AISEC-P002"),
    ]


def test_a_purpose_and_an_owner_in_default_args_satisfy_their_rules(catalog: Catalog) -> None:
    found = check_dag(_dag(owner="data-platform", aisec_purpose="support"), catalog)
    assert [(v.task_id, v.rule) for v in found] == [("export", "AISEC-P003")]


def test_a_policies_setting_that_is_not_a_boolean_refuses_the_dag(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.exceptions import AirflowClusterPolicyViolation

    from airflow_aisec.policies.plugin import dag_policy

    monkeypatch.setenv("AIRFLOW__AISEC__POLICIES", "sometimes")
    with pytest.raises(AirflowClusterPolicyViolation, match=r"\[aisec\] policies: expected True or False"):
        dag_policy(_dag())
