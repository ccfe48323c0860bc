"""Evidently's data drift on two Parquet datasets, run by the drift benchmark's side interpreter.

``python evidently_side.py REF CUR --numeric n0,n1 --categorical c0,c1`` prints one JSON line: per column,
the test Evidently picked, its statistic and whether the column drifted; the wall-clock seconds from the
data on disk to the decisions (reading both sides into pandas, building Evidently's datasets, running the
``DataDriftPreset`` report with its defaults and reading its results; imports are not timed); and the
peak resident memory (``ru_maxrss``) after the imports and at the end. It runs where Evidently works
(pandas < 3), so it never imports this project's package.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def decisions(snapshot: Any) -> dict[str, dict[str, Any]]:
    """Per column: Evidently's method, drift score and its own verdict (its value-drift test failed)."""
    doc = snapshot.dict()
    out: dict[str, dict[str, Any]] = {}
    for metric in doc["metrics"]:
        params = metric["config"]
        if params.get("type", "").endswith("ValueDrift"):
            out[params["column"]] = {"method": params["method"], "statistic": float(metric["value"])}
    for test in doc["tests"]:
        column = test["metric_config"]["params"].get("column")
        if test["id"] == "drift" and column in out:
            out[column]["drifted"] = test["status"] == "FAIL"
    return out


def run(ref_dir: str, cur_dir: str, numeric: list[str], categorical: list[str]) -> dict[str, Any]:
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref, cur = pd.read_parquet(ref_dir), pd.read_parquet(cur_dir)
    report = Report([DataDriftPreset()], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    return {"decisions": decisions(snapshot)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--numeric", default="")
    parser.add_argument("--categorical", default="")
    args = parser.parse_args(argv)
    numeric = [name for name in args.numeric.split(",") if name]
    categorical = [name for name in args.categorical.split(",") if name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = run(args.reference, args.current, numeric, categorical)
    out["seconds"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["rss_growth_mib"] = (peak - before) / 1024
    out["peak_rss_mib"] = peak / 1024
    out["evidently"] = sys.modules["evidently"].__dict__.get("__version__", "?")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
