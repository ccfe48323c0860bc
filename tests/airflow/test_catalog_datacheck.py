"""``CatalogValidateOperator(check_data=True)``: the catalog checked against the files, in a DAG run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import EXAMPLE
from dag_runs import dag_from
from dag_runs import states as _states

from airflow_aisec.operators.catalog import CatalogValidateOperator

TEST_DAGS = Path(__file__).resolve().parent / "dags"


def _dag() -> Any:
    return dag_from(TEST_DAGS / "aisec_test_check_data.py")


@pytest.mark.integration
def test_check_data_fails_the_task_on_a_misspelt_column_and_passes_on_the_sample_lake(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    passed = _dag().test(run_conf={"catalog": str(EXAMPLE), "lake": str(sample_lake_dir)})
    assert _states(passed) == {"validate_catalog": "success"}

    data = yaml.safe_load(EXAMPLE.read_text())
    columns = data["datasets"]["orders"]["columns"]
    columns["ammount"] = columns.pop("amount")
    broken = tmp_path / "catalog.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    capfd.readouterr()
    failed = _dag().test(run_conf={"catalog": str(broken), "lake": str(sample_lake_dir)})

    assert _states(failed) == {"validate_catalog": "failed"}
    logged = "".join(capfd.readouterr())
    assert "datasets.orders.columns.ammount: dataset orders:" in logged
    assert "column ammount is not in the data (did you mean 'amount'?)" in logged


def test_check_data_is_an_option_that_catches_what_the_file_checks_do_not(
    sample_lake_dir: Path, tmp_path: Path
) -> None:
    from airflow_aisec.exceptions import CatalogError

    data = yaml.safe_load(EXAMPLE.read_text())
    columns = data["datasets"]["orders"]["columns"]
    columns["ammount"] = columns.pop("amount")
    broken = tmp_path / "catalog.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    variables = {"lake": str(sample_lake_dir)}

    def validate(catalog: Path, check_data: bool) -> dict[str, Any]:
        operator = CatalogValidateOperator(
            task_id="v", catalog=str(catalog), variables=variables, check_data=check_data
        )
        return operator.execute(context={})  # type: ignore[arg-type,no-any-return]

    assert "data" not in validate(broken, check_data=False)
    with pytest.raises(CatalogError, match=r"column ammount is not in the data \(did you mean 'amount'\?\)"):
        validate(broken, check_data=True)
    files = validate(EXAMPLE, check_data=True)["data"]["files"]
    assert files["orders"] == len(list((sample_lake_dir / "orders").glob("*.parquet")))
