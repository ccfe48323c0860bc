"""Benchmark of Parquet modular encryption against plain Parquet, on the same table and in the same run.

Write: ``pyarrow.parquet.write_table`` with ``encryption_properties(...)`` (every column encrypted, encrypted
footer, AES-GCM, fresh data keys, key material written beside the file; creating the properties is timed)
vs the same call without encryption. Read: ``read_table`` with ``decryption_properties(...)`` (key material
read and keys unwrapped through the local key provider, timed) vs a plain ``read_table``. Targets: encrypted
at most 1.15x the plain time, for writes and for reads. Best of ``--repeats`` runs, interleaved by round.

For information (no target), the product paths: ``atomic_write_encrypted`` (temporary file, full decrypting
read-back, SHA-256, fsync, renames) and ``read_encrypted_batches`` (streaming).

Run with ``python -m benchmarks parquet_encryption`` or ``python benchmarks/bench_parquet_encryption.py``.
Data and the local keyring live in a temporary folder on local disk, deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from airflow_aisec.crypto.parquet import (
    atomic_write_encrypted,
    decryption_properties,
    encryption_properties,
    read_encrypted_batches,
)
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.io import Location

ROWS = 2_000_000
WRITE_TARGET = 1.15
READ_TARGET = 1.15
KEY = "bench-columns"
MiB = 1 << 20


def make_table(rows: int) -> pa.Table:
    """``rows`` deterministic rows: an int64 id, an email-like string and a float64 amount."""
    ids = pa.array(range(rows), pa.int64())
    # Knuth's multiplicative hash: spread values, the same on every run.
    mixed = pc.bit_wise_and(pc.multiply(ids, 2_654_435_761), 0xFFFFFFFF)
    return pa.table(
        {
            "id": ids,
            "email": pc.binary_join_element_wise("user", pc.cast(mixed, pa.string()), "@example.com", ""),
            "amount": pc.divide(pc.cast(pc.remainder(mixed, 1_000_000), pa.float64()), 100.0),
        }
    )


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best (minimum) seconds of each variant, interleaved round by round after one warm-up round."""
    times: dict[str, list[float]] = {label: [] for label in variants}
    for attempt in range(repeats + 1):
        for label, run in variants.items():
            elapsed = timed(run)
            if attempt:
                times[label].append(elapsed)
    return {label: min(values) for label, values in times.items()}


def show(label: str, seconds: float, rows: int) -> None:
    """One timing line."""
    print(f"    {label:<55} {seconds:7.3f} s {rows / seconds:>13,.0f} rows/s")


def verdict(ratio: float, target: float) -> str:
    """``meets target`` or ``misses target``."""
    return "meets target" if ratio <= target else "misses target"


def bench_write(root: Path, table: pa.Table, provider: LocalKeyProvider, repeats: int) -> None:
    """Encrypted vs plain ``write_table``; then the verified atomic write, for information."""
    fs = pafs.LocalFileSystem()
    plain, encrypted, atomic = (str(root / f"write-{name}.parquet") for name in ("plain", "enc", "atomic"))
    columns = list(table.column_names)

    def write_encrypted() -> None:
        props = encryption_properties(provider, KEY, columns, fs, encrypted)
        pq.write_table(table, encrypted, encryption_properties=props)

    def write_atomic() -> None:
        target = Location.parse(atomic)
        with atomic_write_encrypted(target, table.schema, provider, KEY, columns, overwrite=True) as writer:
            writer.write(table)

    plain_label, enc_label = "pq.write_table (plain)", "pq.write_table + encryption_properties"
    atomic_label = "atomic_write_encrypted (verify + sha256 + renames)"
    best = best_of(
        {
            plain_label: lambda: pq.write_table(table, plain),
            enc_label: write_encrypted,
            atomic_label: write_atomic,
        },
        repeats,
    )
    sizes = [os.path.getsize(p) / MiB for p in (plain, encrypted, atomic)]
    print(f"write: {table.num_rows:,} rows x 3 columns (best of {repeats})")
    print(f"  plain file {sizes[0]:,.1f} MiB, encrypted {sizes[1]:,.1f} MiB, atomic {sizes[2]:,.1f} MiB")
    for label, seconds in best.items():
        show(label, seconds, table.num_rows)
    ratio = best[enc_label] / best[plain_label]
    print(f"  -> encrypted write {ratio:.2f}x the plain write (target <= {WRITE_TARGET}x): "
          f"{verdict(ratio, WRITE_TARGET)}")  # fmt: skip
    print(f"  -> verified atomic encrypted write {best[atomic_label] / best[plain_label]:.2f}x (no target)")


def bench_read(root: Path, table: pa.Table, provider: LocalKeyProvider, repeats: int) -> None:
    """Encrypted vs plain ``read_table`` of the files just written; then streaming reads, for information."""
    fs = pafs.LocalFileSystem()
    plain, encrypted = str(root / "write-plain.parquet"), str(root / "write-enc.parquet")

    def read_encrypted() -> pa.Table:
        return pq.read_table(encrypted, decryption_properties=decryption_properties(provider, fs, encrypted))

    def stream_encrypted() -> int:
        return sum(b.num_rows for b in read_encrypted_batches(Location.parse(encrypted), provider))

    def stream_plain() -> int:
        return sum(b.num_rows for b in pq.ParquetFile(plain).iter_batches(batch_size=65_536))

    if not read_encrypted().equals(table):
        raise RuntimeError("the encrypted file does not decrypt to the table written")
    plain_label, enc_label = "pq.read_table (plain)", "pq.read_table + decryption_properties"
    stream_plain_label = "ParquetFile.iter_batches (plain, streaming)"
    stream_label = "read_encrypted_batches (streaming)"
    best = best_of(
        {
            plain_label: lambda: pq.read_table(plain),
            enc_label: read_encrypted,
            stream_plain_label: stream_plain,
            stream_label: stream_encrypted,
        },
        repeats,
    )
    print(f"read: {table.num_rows:,} rows x 3 columns (best of {repeats})")
    for label, seconds in best.items():
        show(label, seconds, table.num_rows)
    ratio = best[enc_label] / best[plain_label]
    print(f"  -> encrypted read {ratio:.2f}x the plain read (target <= {READ_TARGET}x): "
          f"{verdict(ratio, READ_TARGET)}")  # fmt: skip
    streaming = best[stream_label] / best[stream_plain_label]
    print(f"  -> streaming decrypting read {streaming:.2f}x the plain streaming read (no target)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the 2,000,000 rows")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (best is kept)")
    parser.add_argument("--dir", default=None, help="local folder for the generated data (default: temp)")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.repeats < 1:
        parser.error("--scale must be positive and --repeats at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    args = parse_args(argv)
    start = time.perf_counter()
    python = sys.version.split()[0]
    print(f"python {python}, pyarrow {pa.__version__}, {os.cpu_count()} CPUs, scale {args.scale}x")
    table = make_table(max(1, round(ROWS * args.scale)))
    with tempfile.TemporaryDirectory(prefix="aisec-bench-pqenc-", dir=args.dir) as tmp:
        root = Path(tmp)
        (root / "keys").mkdir()
        provider = LocalKeyProvider(root / "keys" / "ring.json")
        provider.create(KEY)
        bench_write(root, table, provider, args.repeats)
        bench_read(root, table, provider, args.repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"total {time.perf_counter() - start:.1f} s; peak RSS of this process {peak / MiB:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
