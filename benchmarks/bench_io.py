"""Benchmark of the dataset I/O layer against plain pyarrow, on the same data and in the same run.

Reads: ``read_dataset`` (streams one batch at a time) vs ``pyarrow.dataset.dataset(path).to_table()`` (builds
the whole table) on a multi-file Parquet, JSON Lines and CSV dataset. Every read runs in a child process of
its own, which reports rows/s and the growth of its peak resident memory (``ru_maxrss``), so the memory of
one measurement never hides in another's. Write: ``atomic_write`` (temporary file, full read-back, SHA-256,
fsync, rename) vs ``pyarrow.parquet.write_table`` of the same table; the target is at most 2.0x the time.

Run with ``python -m benchmarks io`` or ``python benchmarks/bench_io.py --scale 4`` (rows per file x 4).
Data is generated deterministically into a temporary folder on local disk and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from airflow_aisec.io import Location, atomic_write, read_dataset, sha256_file

ROWS_PER_FILE = 50_000
FILES = {"parquet": 40, "jsonl": 10, "csv": 10}
WRITE_FILES = 10
WRITE_TARGET = 2.0
EPOCH_US = 1_600_000_000 * 1_000_000
FIVE_YEARS_S = 5 * 365 * 86_400
COUNTRIES = pa.array(["DE", "FR", "GB", "US", "PL", "ES", "IT", "NL", "SE", "JP"])
BASELINE_FORMAT = {"parquet": "parquet", "jsonl": "json", "csv": "csv"}
# With pyarrow 26.0.1 the JSON scan never returns from to_table() (threads idle on futexes) once a dataset has
# 4 or more files of a few MiB; scanning one file at a time still builds the whole table, and works.
SCAN_OPTIONS: dict[str, dict[str, Any]] = {"jsonl": {"fragment_readahead": 1}}
CHILD_TIMEOUT_S = 120  # per measurement at scale 1; a hung scan fails the benchmark instead of blocking it
MiB = 1 << 20


def make_table(first_id: int, rows: int) -> pa.Table:
    """``rows`` deterministic rows (ids from ``first_id``): 2 ints, 3 strings and a UTC timestamp."""
    ids = pa.array(range(first_id, first_id + rows), pa.int64())
    # Knuth's multiplicative hash: spread values, the same on every run.
    mixed = pc.bit_wise_and(pc.multiply(ids, 2_654_435_761), 0xFFFFFFFF)
    micros = pc.add(pc.multiply(pc.remainder(mixed, FIVE_YEARS_S), 1_000_000), EPOCH_US)
    return pa.table(
        {
            "id": ids,
            "customer_id": pc.binary_join_element_wise(
                "C", pc.utf8_lpad(pc.cast(pc.remainder(mixed, 1_000_000), pa.string()), 7, "0"), ""
            ),
            "email": pc.binary_join_element_wise("user", pc.cast(mixed, pa.string()), "@example.com", ""),
            "amount_cents": pc.remainder(mixed, 100_000),
            "country": pc.take(COUNTRIES, pc.remainder(mixed, len(COUNTRIES))),
            "created_at": pc.cast(micros, pa.timestamp("us", tz="UTC")),
        }
    )


def jsonl_text(table: pa.Table) -> str:
    """The table as JSON Lines, timestamps as ISO-8601 UTC with ``Z`` (like the project's writer)."""
    stamp = pc.strftime(table["created_at"], format="%Y-%m-%dT%H:%M:%SZ")
    parts = [
        '{"id":', pc.cast(table["id"], pa.string()),
        ',"customer_id":"', table["customer_id"],
        '","email":"', table["email"],
        '","amount_cents":', pc.cast(table["amount_cents"], pa.string()),
        ',"country":"', table["country"],
        '","created_at":"', stamp, '"}',
    ]  # fmt: skip
    lines = pc.binary_join_element_wise(*parts, "")
    return "\n".join(lines.to_pylist()) + "\n"


def write_source(path: Path, fmt: str, table: pa.Table) -> None:
    """Write one file of the input dataset with plain pyarrow (or plain Python for JSON Lines)."""
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        path.write_text(jsonl_text(table), encoding="utf-8")


def generate(folder: Path, fmt: str, files: int, rows: int) -> int:
    """Write ``files`` files of ``rows`` rows each into ``folder``; return the bytes on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        write_source(folder / f"part-{index:03d}.{fmt}", fmt, make_table(index * rows, rows))
    return sum(p.stat().st_size for p in folder.iterdir())


# --- child side: one read, measured in a fresh process -------------------------------------------------


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    """Resident memory of this process now, in bytes (Linux ``/proc``; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def read_ours(fmt: str, path: str) -> int:
    """Stream the dataset with ``read_dataset``, keeping one batch at a time; return the row count."""
    return sum(batch.num_rows for batch in read_dataset(Location.parse(path), fmt))


def read_baseline(fmt: str, path: str) -> int:
    """Read the dataset with ``pyarrow.dataset(...).to_table()``, the whole table in memory."""
    dataset = ds.dataset(path, format=BASELINE_FORMAT[fmt])
    return dataset.scanner(**SCAN_OPTIONS.get(fmt, {})).to_table().num_rows


READERS: dict[str, Callable[[str, str], int]] = {"ours": read_ours, "baseline": read_baseline}


def child(kind: str, fmt: str, path: str, repeats: int) -> int:
    """Time ``repeats`` reads; print the row count, best time and peak RSS (and its growth) of the first."""
    read = READERS[kind]
    # Growth from the resident memory now, not from the peak so far: imports may have peaked above it.
    before = current_rss()
    times = []
    rows = growth = peak = 0
    for attempt in range(repeats):
        start = time.perf_counter()
        rows = read(fmt, path)
        times.append(time.perf_counter() - start)
        if attempt == 0:
            peak = peak_rss()
            growth = peak - before
    print(json.dumps({"rows": rows, "seconds": min(times), "peak_growth": growth, "peak": peak}))
    return 0


# --- parent side ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadResult:
    """What one child measured."""

    rows: int
    seconds: float
    peak_growth: int
    peak: int

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds


def spawn(kind: str, fmt: str, path: Path, repeats: int, scale: float) -> ReadResult:
    """Run one read measurement in a fresh interpreter and return what it printed."""
    timeout = CHILD_TIMEOUT_S * max(1.0, scale)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, fmt, str(path)]
    command += ["--repeats", str(repeats)]
    try:
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{kind} read of {fmt} did not finish in {timeout:.0f} s") from None
    output = done.stdout
    return ReadResult(**json.loads(output.strip().splitlines()[-1]))


def show_read(label: str, result: ReadResult) -> None:
    """One line of a read comparison."""
    print(
        f"  {label:<40} {result.rows:>11,} rows {result.seconds:7.3f} s {result.rate:>13,.0f} rows/s"
        f"  peak RSS +{result.peak_growth / MiB:,.0f} MiB (total {result.peak / MiB:,.0f} MiB)"
    )


def bench_read(root: Path, fmt: str, files: int, rows: int, args: argparse.Namespace) -> None:
    """Generate one dataset, read it both ways in child processes and print rates, memory and ratios."""
    folder = root / fmt
    size = generate(folder, fmt, files, rows)
    shape = f"{files} files x {rows:,} rows x 6 columns"
    print(f"{fmt}: {shape}, {size / MiB:,.1f} MiB on disk (best of {args.repeats})")
    ours = spawn("ours", fmt, folder, args.repeats, args.scale)
    base = spawn("baseline", fmt, folder, args.repeats, args.scale)
    for result in (ours, base):
        if result.rows != files * rows:
            raise RuntimeError(f"{fmt}: read {result.rows} rows, expected {files * rows}")
    show_read("read_dataset (streaming)", ours)
    options = "".join(f" [{k.split('_')[-1]}={v}]" for k, v in SCAN_OPTIONS.get(fmt, {}).items())
    show_read(f"pyarrow.dataset to_table(){options}", base)
    memory = ours.peak_growth / base.peak_growth if base.peak_growth else float("nan")
    throughput = ours.rate / base.rate
    print(f"  -> throughput ours/baseline {throughput:.2f}x; peak RSS growth ours/baseline {memory:.2f}x")


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_plain(table: pa.Table, path: Path) -> None:
    """The baseline: ``pyarrow.parquet.write_table``, no temporary file, no verification."""
    pq.write_table(table, path)


def write_atomic(table: pa.Table, path: Path, verify: bool) -> None:
    """Ours: ``atomic_write`` of the table's batches (temporary file, read-back, SHA-256, fsync, rename)."""
    with atomic_write(Location.parse(path), "parquet", table.schema, overwrite=True, verify=verify) as writer:
        writer.write(table)
    if writer.result.rows != table.num_rows:
        raise RuntimeError(f"atomic_write committed {writer.result.rows} rows of {table.num_rows}")


PLAIN = "pyarrow.parquet.write_table"
VERIFIED = "atomic_write (verify + sha256)"


def time_writes(root: Path, table: pa.Table, repeats: int) -> dict[str, float]:
    """Median seconds of each way of writing ``table``, interleaved round by round after one warm-up round."""
    variants: dict[str, Callable[[Path], None]] = {
        PLAIN: lambda p: write_plain(table, p),
        "atomic_write(verify=False)": lambda p: write_atomic(table, p, verify=False),
        VERIFIED: lambda p: write_atomic(table, p, verify=True),
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    for attempt in range(repeats + 1):
        for index, (label, write) in enumerate(variants.items()):
            path = root / f"write-{index}.parquet"
            path.unlink(missing_ok=True)
            elapsed = timed(lambda write=write, path=path: write(path))
            if attempt:
                times[label].append(elapsed)
    return {label: statistics.median(values) for label, values in times.items()}


def show_writes(title: str, root: Path, table: pa.Table, repeats: int) -> float:
    """Time and print the writes of ``table``; return the verified/plain time ratio."""
    medians = time_writes(root, table, repeats)
    sizes = [(root / f"write-{i}.parquet").stat().st_size / MiB for i in (0, 2)]
    print(f"  {title}: plain file {sizes[0]:,.1f} MiB, atomic file {sizes[1]:,.1f} MiB")
    for label, seconds in medians.items():
        print(f"    {label:<45} {seconds:7.3f} s {table.num_rows / seconds:>13,.0f} rows/s")
    return medians[VERIFIED] / medians[PLAIN]


def bench_write(root: Path, rows: int, repeats: int) -> None:
    """Time atomic verified writes against plain ``write_table`` of the same table, in two layouts.

    With the table in one chunk both writers produce one row group, so the ratio is the price of the
    temporary file, read-back, SHA-256, fsync and rename (the target). ``atomic_write`` writes one row group
    per batch, so the same rows given as ``rows``-row batches also pay for smaller row groups: shown apart.
    """
    chunked = pa.concat_tables(make_table(i * rows, rows) for i in range(WRITE_FILES))
    print(f"write: {chunked.num_rows:,} rows x 6 columns to Parquet (median of {repeats})")
    ratio = show_writes("table in one chunk", root, chunked.combine_chunks(), repeats)
    verdict = "meets target" if ratio <= WRITE_TARGET else "misses target"
    print(f"  -> verified atomic write {ratio:.2f}x the plain write (target <= {WRITE_TARGET}x): {verdict}")
    batched = show_writes(f"same table as {WRITE_FILES} batches of {rows:,} rows", root, chunked, repeats)
    print(f"  -> verified atomic write {batched:.2f}x the plain write (a row group per batch; no target)")
    digest = sha256_file(Location.parse(root / "write-2.parquet"))
    print(f"  -> sha256 of the last committed file {digest[:16]}…")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (``--child`` is internal: one measurement in a child process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the rows per file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--dir", default=None, help="local folder for the generated data (default: temp)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FORMAT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.repeats < 1:
        parser.error("--scale must be positive and --repeats at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    args = parse_args(argv)
    if args.child:
        kind, fmt, path = args.child
        return child(kind, fmt, path, args.repeats)
    rows = max(1, round(ROWS_PER_FILE * args.scale))
    start = time.perf_counter()
    python = sys.version.split()[0]
    print(f"python {python}, pyarrow {pa.__version__}, {os.cpu_count()} CPUs, scale {args.scale}x")
    with tempfile.TemporaryDirectory(prefix="aisec-bench-io-", dir=args.dir) as tmp:
        root = Path(tmp)
        for fmt, files in FILES.items():
            bench_read(root, fmt, files, rows, args)
        bench_write(root, rows, max(args.repeats, 5))
    print(f"total {time.perf_counter() - start:.1f} s; peak RSS of this process {peak_rss() / MiB:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
