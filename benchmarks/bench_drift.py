"""Benchmark of the drift checks against Evidently itself and a scipy baseline, same data, same run.

Evidently: 0.7.23 with its defaults (``DataDriftPreset``), in a side virtual environment
(``.venv-evidently/``, built on first use from ``benchmarks/evidently-requirements.txt`` and reused): it does
not import with pandas 3.1.1, which this project's Airflow pins. ``benchmarks/evidently_side.py`` runs it.
Baseline: scipy's tests on the full data (pandas frames, every value in memory, counts by pandas' hashing as
in Evidently), with Evidently's default choice of test and thresholds (KS/chi²/z on a reference of at most
1,000 values, normed Wasserstein/Jensen–Shannon on a larger one, Sturges bins; p < 0.05, distance ≥ 0.1).

Data: 6 numeric and 4 categorical columns, 4 of them drifted, written as Parquet files of 250,000 rows;
``airflow_aisec.drift`` streams them into sketches. Every side is timed the same way, in a child process of
its own after its imports: wall clock from the Parquet files on disk to the per-column decisions. Reported:
the share of columns with the same decision (a 1,000,000-row reference and current, and an 800-row reference
against 5,000 rows), the time ratio on 1,000,000 rows, and the growth of peak resident memory
(``ru_maxrss``) at 100,000 / 1,000,000 / 5,000,000 rows. Targets: same decision on at least 95% of columns,
at least 10x faster than Evidently on 1,000,000 rows, flat memory. ``--quick`` runs a small version for CI;
``--no-evidently`` leaves Evidently out (and never builds its environment).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
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
HERE = Path(__file__).resolve().parent
SIDE_VENV = HERE.parent / ".venv-evidently"
SIDE_REQUIREMENTS = HERE / "evidently-requirements.txt"
SIDE_SCRIPT = HERE / "evidently_side.py"


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
    columns = run.result.columns
    return {
        "decisions": {
            c.column: {"method": c.method, "statistic": c.statistic, "drifted": c.drifted} for c in columns
        }
    }


def child(which: str, ref_dir: str, cur_dir: str) -> None:
    """Run one side in this process; print its seconds, peak-memory growth and decisions as JSON."""
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401

    import airflow_aisec.drift  # noqa: F401  # imports are not part of the measured time or memory

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    out = (run_ours if which == "ours" else run_baseline)(ref_dir, cur_dir)
    out["seconds"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["rss_growth_mib"], out["peak_rss_mib"] = (peak - before) / 1024, peak / 1024
    print(json.dumps(out))


def measure(which: str, ref_dir: Path, cur_dir: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_drift", "--child", which, str(ref_dir), str(cur_dir)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- Evidently itself, in its side environment -------------------------------------------------------------


def evidently_python() -> Path:
    """The side environment's interpreter; built on first use (``python3.11 -m venv`` and the pinned
    requirements from the configured package index), reused while its marker names the same requirements."""
    python, marker = SIDE_VENV / "bin" / "python", SIDE_VENV / ".installed"
    wanted = SIDE_REQUIREMENTS.read_text(encoding="utf-8")
    if marker.exists() and marker.read_text(encoding="utf-8") == wanted and python.exists():
        return python
    print(f"building {SIDE_VENV.name}/ from {SIDE_REQUIREMENTS.name} (once)", flush=True)
    shutil.rmtree(SIDE_VENV, ignore_errors=True)  # a half-built environment is never reused
    base = shutil.which("python3.11") or sys.executable
    subprocess.run([base, "-m", "venv", str(SIDE_VENV)], check=True, timeout=300)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-r", str(SIDE_REQUIREMENTS)], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"pip could not install {SIDE_REQUIREMENTS.name}:\n{done.stderr[-4000:]}")
    marker.write_text(wanted, encoding="utf-8")  # written last: the environment is complete
    return python


def measure_evidently(python: Path, ref_dir: Path, cur_dir: Path) -> dict[str, Any]:
    cmd = [str(python), "-W", "ignore", str(SIDE_SCRIPT), str(ref_dir), str(cur_dir)]
    cmd += ["--numeric", ",".join(NUMERIC), "--categorical", ",".join(CATEGORICAL)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=3600)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the report -------------------------------------------------------------------------------------------


def same_share(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> tuple[int, int]:
    """How many columns of the runs in ``theirs`` have the decision of the matching run in ``ours``."""
    pairs = [(mine["decisions"], other["decisions"]) for mine, other in zip(ours, theirs, strict=True)]
    same = sum(1 for m, o in pairs for name in o if m.get(name, {}).get("drifted") == o[name]["drifted"])
    return same, sum(len(o) for _, o in pairs)


def _stat(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def print_table(
    labels: list[str], ours: list[dict[str, Any]], others: dict[str, list[dict[str, Any]]]
) -> None:
    """Per run and column: our test, statistic and decision, the others' decisions, Evidently's statistic."""
    head = f"{'run':10} {'column':7} {'aisec method':14} {'statistic':10} {'aisec':6} "
    ev_head = " evidently statistic" if "evidently" in others else ""
    print(head + " ".join(f"{k:9}" for k in others) + ev_head)
    for i, label in enumerate(labels):
        for name, mine in ours[i]["decisions"].items():
            cells = " ".join(f"{other[i]['decisions'][name]['drifted']!s:9}" for other in others.values())
            if "evidently" in others:
                cells += f"  {_stat(others['evidently'][i]['decisions'][name]['statistic'])}"
            stat = _stat(mine["statistic"])
            print(f"{label:10} {name:7} {mine['method']:14} {stat:10} {mine['drifted']!s:6} {cells}")


def print_differences(labels: list[str], ours: list[dict[str, Any]], evidently: list[dict[str, Any]]) -> None:
    """Every column where Evidently decides otherwise, with both tests and statistics."""
    for label, mine, theirs in zip(labels, ours, evidently, strict=True):
        for name, ev in theirs["decisions"].items():
            me = mine["decisions"][name]
            if me["drifted"] != ev["drifted"]:
                mine_test, their_test = (
                    f"{me['method']} {_stat(me['statistic'])}",
                    f"{ev['method']} {ev['statistic']:.4g}",
                )
                print(
                    f"differs: {label} {name}: aisec {mine_test} -> {me['drifted']}; "
                    f"Evidently {their_test} -> {ev['drifted']}"
                )


def report(
    runs: dict[str, list[dict[str, Any]]], memory: dict[str, dict[int, dict[str, Any]]], timed_rows: int
) -> None:
    labels = ["small", f"{timed_rows:,}"]
    ours = runs.pop("aisec")
    memory["baseline"] = {timed_rows: runs["baseline"][1]}
    print_table(labels, ours, runs)
    for name, theirs in runs.items():
        same, total = same_share(ours, theirs)
        print(f"same decision as {name}: {same}/{total} columns ({same / total:.0%}; target >= 95%)")
        if same / total < 0.95:
            print(f"target missed: fewer than 95% of columns have the same decision as {name}")
    if "evidently" in runs:
        print_differences(labels, ours, runs["evidently"])
    mine = ours[1]["seconds"]
    for name, theirs in runs.items():
        other = theirs[1]["seconds"]
        print(
            f"time on {timed_rows:,} rows, Parquet on disk to decisions: aisec {mine:.2f} s, {name} "
            f"{other:.2f} s: ratio aisec/{name} {mine / other:.3f} ({other / mine:.1f}x as fast)"
        )
    if "evidently" in runs and runs["evidently"][1]["seconds"] < 10 * mine:
        print("target missed: less than 10x faster than Evidently")
    for name, sizes in memory.items():
        for n, run in sorted(sizes.items()):
            growth, peak, seconds = run["rss_growth_mib"], run["peak_rss_mib"], run["seconds"]
            print(
                f"{name} peak memory growth at {n:>9,} rows: +{growth:.0f} MiB "
                f"(peak {peak:.0f} MiB with the imports; {seconds:.2f} s)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--no-evidently", action="store_true", help="leave Evidently out")
    parser.add_argument("--child", nargs=3, metavar=("WHICH", "REF", "CUR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    python = None if args.no_evidently else evidently_python()
    scale = 50 if args.quick else 1
    timed_rows = 1_000_000 // scale
    memory_rows = [100_000 // scale, 1_000_000 // scale, 5_000_000 // scale]
    sides: dict[str, Any] = {"aisec": lambda r, c: measure("ours", r, c)}
    sides["baseline"] = lambda r, c: measure("baseline", r, c)
    if python is not None:
        sides["evidently"] = lambda r, c: measure_evidently(python, r, c)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    memory: dict[str, dict[int, dict[str, Any]]] = {"aisec": {}, **({"evidently": {}} if python else {})}
    with tempfile.TemporaryDirectory(prefix="aisec-bench-drift-") as tmp:
        root = Path(tmp)
        pairs = [
            (
                write_dataset(root / "small-ref", 800, 1, False),
                write_dataset(root / "small-cur", 5000, 2, True),
            ),
            (
                write_dataset(root / "ref", timed_rows, 3, False),
                write_dataset(root / "cur", timed_rows, 4, True),
            ),
        ]
        for ref, cur in pairs:
            for name, run in sides.items():
                runs[name].append(run(ref, cur))
        for name in memory:
            memory[name][timed_rows] = runs[name][1]
        for n in memory_rows:
            if n in memory["aisec"]:
                continue
            r, c = write_dataset(root / f"r{n}", n, 5, False), write_dataset(root / f"c{n}", n, 6, True)
            for name in memory:
                memory[name][n] = sides[name](r, c)
            shutil.rmtree(r)
            shutil.rmtree(c)
    report(runs, memory, timed_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
