"""Run the benchmarks: ``python -m benchmarks`` runs every ``bench_*.py``; ``python -m benchmarks io merkle``
runs the named ones (``pii-eval`` and ``pii_eval`` both name ``bench_pii_eval.py``).

Each benchmark runs in a fresh interpreter (``python -m benchmarks.bench_<name>``) from the repository root,
so the peak-memory figures it prints are its own. Arguments after ``--``, or from the first one that starts
with ``-`` (``python -m benchmarks pii-eval --split dev``), go to every selected benchmark.
A benchmark that raises makes the run exit non-zero; one that misses a target only says so in its output.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIX = "bench_"


def available() -> dict[str, Path]:
    """Every benchmark module of this folder by short name (``io`` for ``bench_io.py``), sorted."""
    return {path.stem[len(PREFIX) :]: path for path in sorted(HERE.glob(f"{PREFIX}*.py"))}


def select(names: list[str], known: dict[str, Path]) -> list[str]:
    """The benchmarks to run: all of them, or the named ones (``io`` or ``bench_io``) in sorted order."""
    if not names:
        return list(known)
    wanted = {name.removeprefix(PREFIX).removesuffix(".py").replace("-", "_") for name in names}
    unknown = sorted(wanted - known.keys())
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(known)}")
    return [name for name in known if name in wanted]


def run_one(name: str, extra: list[str]) -> tuple[int, float]:
    """Run ``benchmarks.bench_<name>`` in a child interpreter; return its exit code and wall-clock time."""
    module = f"benchmarks.{PREFIX}{name}"
    print(f"=== {module} {' '.join(extra)}".rstrip() + " ===", flush=True)
    start = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", module, *extra], cwd=ROOT, check=False).returncode
    elapsed = time.perf_counter() - start
    status = "ok" if code == 0 else f"FAILED (exit code {code})"
    print(f"--- {module}: {status} in {elapsed:.1f} s", flush=True)
    return code, elapsed


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """Benchmark names and the arguments for them: split at ``--``, else at the first option."""
    if "--" in args:
        return args[: args.index("--")], args[args.index("--") + 1 :]
    first = next((i for i, arg in enumerate(args) if arg.startswith("-")), len(args))
    return args[:first], args[first:]


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks one after the other; 1 if any of them failed."""
    args = sys.argv[1:] if argv is None else argv
    names, extra = split_args(args)
    if not names and extra[:1] in (["-h"], ["--help"]):
        print(__doc__)
        print(f"available: {', '.join(available())}")
        return 0
    chosen = select(names, available())
    start = time.perf_counter()
    failed = [name for name in chosen if run_one(name, extra)[0] != 0]
    total = time.perf_counter() - start
    verdict = f"{len(failed)} failed ({', '.join(failed)})" if failed else "all succeeded"
    print(f"=== {len(chosen)} benchmark(s) in {total:.1f} s: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
