"""Benchmark of the drift checks against a baseline on the same data, in the same run.

Baseline: scipy's tests on the full data (pandas frames, every value in memory, counts by pandas' hashing as
in Evidently), with Evidently's default choice of test and thresholds (KS/chi²/z on a reference of at most
1,000 values, normed Wasserstein/Jensen–Shannon on a larger one, Sturges bins; p < 0.05, distance ≥ 0.1).
Evidently itself is not the baseline: 0.7.23 does not import with pandas 3.1.1, which this project's Airflow
pins (``infer_dtype_from_object`` is gone).

Data: 6 numeric and 4 categorical columns, 4 of them drifted, written as Parquet files of 250,000 rows;
``airflow_aisec.drift`` streams them into sketches. Reported: the share of columns with the same decision
(a 1,000,000-row reference and current, and an 800-row reference against 5,000 rows), the time ratio on
1,000,000 rows, and the growth of peak resident memory (``ru_maxrss``, each run in a child process of its
own) at 100,000 / 1,000,000 / 5,000,000 rows, which stays flat. Targets: same decision on at least 95% of
columns, flat memory. ``--quick`` runs a small version for CI.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FILE_ROWS = 250_000
NUMERIC = ("n0", "n1", "n2", "n3", "n4", "n5")
CATEGORICAL = ("c0", "c1", "c2", "c3")
LETTERS = np.array(list("abcde"))
CITIES = np.array([f"city{i:03d}" for i in range(200)])
MiB = 1 << 20


def make_table(rows: int, seed: int, drifted: bool) -> pa.Table:
    """``rows`` rows; with ``drifted``, n0, n1, c1 and n4 move (n5 a little, below the thresholds)."""
    rng = np.random.default_rng(seed)
    shift = 1.0 if drifted else 0.0
    zipf = np.minimum(rng.zipf(1.5, rows), len(CITIES)) - 1
    c1_p = [0.5, 0.2, 0.1, 0.1, 0.1] if drifted else [0.2] * 5
    return pa.table(
        {
            "n0": rng.normal(0.5 * shift, 1.0, rows),
            "n1": rng.normal(10.0, 2.0 + shift, rows),
            "n2": rng.exponential(1.0, rows),
            "n3": rng.uniform(0.0, 100.0, rows),
            "n4": rng.poisson(3.0 + 1.5 * shift, rows).astype(np.int64),
            "n5": rng.normal(0.02 * shift, 1.0, rows),
            "c0": pa.array(LETTERS[rng.integers(0, 5, rows)]),
            "c1": pa.array(LETTERS[rng.choice(5, rows, p=c1_p)]),
            "c2": pa.array(np.where(rng.random(rows) < 0.3, "yes", "no")),
            "c3": pa.array(CITIES[zipf]),
        }
    )


def write_dataset(folder: Path, rows: int, seed: int, drifted: bool) -> Path:
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        table = make_table(min(FILE_ROWS, rows - start), seed * 1000 + i, drifted)
        pq.write_table(table, folder / f"part-{i:04d}.parquet")
    return folder


# -- the baseline: scipy on every value, Evidently's defaults --------------------------------------------


def _counts(data: Any, values: list[Any]) -> np.ndarray:
    """How often each of ``values`` occurs in ``data`` (pandas' hash-based value counts, as Evidently)."""
    return data.value_counts().reindex(values, fill_value=0).to_numpy(dtype=float)


def _baseline_column(ref: Any, cur: Any, numeric: bool) -> tuple[str, bool]:
    """Evidently's default test of one column (pandas Series without nulls), computed with scipy."""
    import pandas as pd
    import scipy.stats as ss
    from scipy.spatial import distance

    n_values = pd.concat([ref, cur]).nunique()
    many = numeric and n_values > 5
    values = [] if many else sorted(pd.concat([ref, cur]).unique())
    if len(ref) <= 1000:
        if many:
            return "ks", bool(ss.ks_2samp(ref, cur).pvalue < 0.05)
        ref_n, cur_n = _counts(ref, values), _counts(cur, values)
        if n_values > 2:
            return "chisquare", bool(ss.chisquare(cur_n, ref_n * len(cur) / len(ref)).pvalue < 0.05)
        p1, p2 = ref_n[0] / len(ref), cur_n[0] / len(cur)
        pooled = (ref_n[0] + cur_n[0]) / (len(ref) + len(cur))
        z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
        return "z", bool(2 * ss.norm.sf(abs(z)) < 0.05)
    if many:
        wd = ss.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        return "wasserstein", bool(wd >= 0.1)
    if numeric and ref.nunique() > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        p, q = np.histogram(ref, edges)[0] / len(ref), np.histogram(cur, edges)[0] / len(cur)
    else:
        p, q = _counts(ref, values) / len(ref), _counts(cur, values) / len(cur)
    return "jensenshannon", bool(distance.jensenshannon(p, q) >= 0.1)


def run_baseline(ref_dir: str, cur_dir: str) -> dict[str, Any]:
    ref, cur = pq.read_table(ref_dir).to_pandas(), pq.read_table(cur_dir).to_pandas()
    decisions = {}
    for name in (*NUMERIC, *CATEGORICAL):
        decisions[name] = _baseline_column(ref[name].dropna(), cur[name].dropna(), name in NUMERIC)
    return {"decisions": {k: {"method": m, "drifted": d} for k, (m, d) in decisions.items()}}


def run_ours(ref_dir: str, cur_dir: str) -> dict[str, Any]:
    from airflow_aisec.drift import drift_check

    run = drift_check(ref_dir, cur_dir)
    return {"decisions": {c.column: {"method": c.method, "drifted": c.drifted} for c in run.result.columns}}


def child(which: str, ref_dir: str, cur_dir: str) -> None:
    """Run one side in this process; print its seconds, peak-memory growth and decisions as JSON."""
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401

    import airflow_aisec.drift  # noqa: F401  # imports are not part of the measured time or memory

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = (run_ours if which == "ours" else run_baseline)(ref_dir, cur_dir)
    out["seconds"] = time.perf_counter() - start
    out["rss_growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps(out))


def measure(which: str, ref_dir: Path, cur_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_drift", "--child", which, str(ref_dir), str(cur_dir)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def agreement(ours: dict[str, Any], base: dict[str, Any]) -> list[tuple[str, str, bool, bool]]:
    rows = []
    for name, theirs in base["decisions"].items():
        mine = ours["decisions"].get(name, {"method": "-", "drifted": None})
        rows.append((name, mine["method"], mine["drifted"], theirs["drifted"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "REF", "CUR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    scale = 50 if args.quick else 1
    timed_rows = 1_000_000 // scale
    memory_rows = [100_000 // scale, 1_000_000 // scale, 5_000_000 // scale]
    with tempfile.TemporaryDirectory(prefix="aisec-bench-drift-") as tmp:
        root = Path(tmp)
        small_ref = write_dataset(root / "small-ref", 800, 1, False)
        small_cur = write_dataset(root / "small-cur", 5000, 2, True)
        rows = agreement(measure("ours", small_ref, small_cur), measure("baseline", small_ref, small_cur))
        ref = write_dataset(root / "ref", timed_rows, 3, False)
        cur = write_dataset(root / "cur", timed_rows, 4, True)
        ours, base = measure("ours", ref, cur), measure("baseline", ref, cur)
        rows += agreement(ours, base)
        memory = {timed_rows: ours["rss_growth_mib"]}
        for n in memory_rows:
            if n not in memory:
                r, c = write_dataset(root / f"r{n}", n, 5, False), write_dataset(root / f"c{n}", n, 6, True)
                memory[n] = measure("ours", r, c)["rss_growth_mib"]
    same = sum(1 for row in rows if row[2] == row[3])
    print(f"{'column':8} {'method':14} {'aisec':6} baseline")
    for name, method, mine, theirs in rows:
        print(f"{name:8} {method:14} {mine!s:6} {theirs}")
    share = same / len(rows)
    ratio = base["seconds"] / ours["seconds"]
    print(f"same decision: {same}/{len(rows)} columns ({share:.0%}; target >= 95%)")
    print(
        f"time on {timed_rows:,} rows: aisec {ours['seconds']:.2f} s, baseline (scipy, all values in memory) "
        f"{base['seconds']:.2f} s: {ratio:.1f}x; baseline peak memory +{base['rss_growth_mib']:.0f} MiB"
    )
    for n, growth in sorted(memory.items()):
        print(f"aisec peak memory growth at {n:>9,} rows: +{growth:.0f} MiB")
    if share < 0.95:
        print("target missed: fewer than 95% of columns have the same decision")
    return 0


if __name__ == "__main__":
    sys.exit(main())
