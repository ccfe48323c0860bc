"""Benchmark of envelope encryption against raw AES-GCM, on the same bytes and in the same run.

Encrypts and decrypts a generated file (1 GiB by default, ``--size-mb``) two ways, in the same chunk size
(1 MiB): the envelope format (``encrypt_stream`` / ``decrypt_stream``: a data key from a local key provider,
an authenticated header, STREAM nonces) and the bare baseline (read a chunk, ``AESGCM.encrypt`` or
``decrypt`` it with a counter nonce, write it). Each measurement runs in a child process of its own, which
reports its throughput and peak resident memory (``ru_maxrss``); the two ways take turns, dirty pages are
flushed before each run, and the best of ``--repeats`` is kept. Targets: at least 0.8x the baseline's
throughput, peak RSS under 100 MB. The file-level ``encrypt_file`` and ``decrypt_file`` (temporary file, full
verification, fsync, rename) are timed once, for information.

Run with ``python -m benchmarks envelope`` or ``python -m benchmarks.bench_envelope --size-mb 256``.
The data goes to a temporary folder on local disk (``--dir``) and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cryptography
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Only what the streaming path needs: the file-level functions import airflow_aisec.io (pyarrow) on use.
from airflow_aisec.crypto.envelope import DEFAULT_CHUNK_SIZE, decrypt_stream, encrypt_stream
from airflow_aisec.crypto.providers import LocalKeyProvider

MiB = 1 << 20
MB = 1_000_000
KEY_NAME = "bench"
CONTEXT = {"benchmark": "envelope"}
THROUGHPUT_TARGET = 0.8
RSS_TARGET = 100 * MB
CHILD_TIMEOUT_S = 600
TAG = 16


# --- child side: one measurement in a fresh process ----------------------------------------------------


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


def aesgcm_encrypt(src: str, dst: str, key: bytes, chunk_size: int) -> None:
    """The baseline: read a chunk, encrypt it under a counter nonce, write it. No header, no final flag."""
    aead = AESGCM(key)
    with open(src, "rb") as source, open(dst, "wb") as out:
        index = 0
        while chunk := source.read(chunk_size):
            out.write(aead.encrypt(index.to_bytes(12, "big"), chunk, None))
            index += 1


def aesgcm_decrypt(src: str, dst: str, key: bytes, chunk_size: int) -> None:
    """The baseline's decryption: read a chunk and its tag, decrypt it, write it."""
    aead = AESGCM(key)
    with open(src, "rb") as source, open(dst, "wb") as out:
        index = 0
        while chunk := source.read(chunk_size + TAG):
            out.write(aead.decrypt(index.to_bytes(12, "big"), chunk, None))
            index += 1


def envelope_encrypt(src: str, dst: str, keyring: str, chunk_size: int) -> None:
    """Ours, streaming: ``encrypt_stream`` from one open file to another."""
    provider = LocalKeyProvider(keyring)
    with open(src, "rb") as source, open(dst, "wb") as out:
        encrypt_stream(source, out, provider, KEY_NAME, CONTEXT, chunk_size)


def envelope_decrypt(src: str, dst: str, keyring: str, chunk_size: int) -> None:
    """Ours, streaming: ``decrypt_stream`` (the chunk size comes from the header)."""
    provider = LocalKeyProvider(keyring)
    with open(src, "rb") as source, open(dst, "wb") as out:
        decrypt_stream(source, out, provider, context=CONTEXT)


def file_encrypt(src: str, dst: str, keyring: str, chunk_size: int) -> None:
    """Ours, file-level: ``encrypt_file`` (temporary file, decrypt-verify, SHA-256, fsync, rename)."""
    from airflow_aisec.crypto.envelope import encrypt_file
    from airflow_aisec.io import Location

    provider = LocalKeyProvider(keyring)
    encrypt_file(Location.parse(src), Location.parse(dst), provider, KEY_NAME, CONTEXT, chunk_size=chunk_size)


def file_decrypt(src: str, dst: str, keyring: str, chunk_size: int) -> None:
    """Ours, file-level: ``decrypt_file`` (temporary file, every tag checked, fsync, rename)."""
    from airflow_aisec.crypto.envelope import decrypt_file
    from airflow_aisec.io import Location

    decrypt_file(Location.parse(src), Location.parse(dst), LocalKeyProvider(keyring), context=CONTEXT)


def child(kind: str, src: str, dst: str, secret: str, chunk_size: int) -> int:
    """Run one measurement; print plaintext bytes, seconds, peak RSS and its growth as JSON."""
    if kind.startswith("file"):
        import airflow_aisec.io  # noqa: F401 - imported before measuring, so the growth is the work's alone

    before = current_rss()
    start = time.perf_counter()
    if kind.startswith("aesgcm"):
        key = Path(secret).read_bytes()
        (aesgcm_encrypt if kind == "aesgcm-encrypt" else aesgcm_decrypt)(src, dst, key, chunk_size)
    else:
        run = {
            "envelope-encrypt": envelope_encrypt,
            "envelope-decrypt": envelope_decrypt,
            "file-encrypt": file_encrypt,
            "file-decrypt": file_decrypt,
        }[kind]
        run(src, dst, secret, chunk_size)
    seconds = time.perf_counter() - start
    plaintext = os.path.getsize(dst if kind.endswith("decrypt") else src)
    peak = peak_rss()
    print(json.dumps({"bytes": plaintext, "seconds": seconds, "peak": peak, "growth": peak - before}))
    return 0


# --- parent side ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """What one child measured."""

    bytes: int
    seconds: float
    peak: int
    growth: int

    @property
    def rate(self) -> float:
        """Plaintext MB/s."""
        return self.bytes / self.seconds / MB


def spawn(kind: str, src: Path, dst: Path, secret: Path, chunk_size: int) -> Measure:
    """Run one measurement in a fresh interpreter and return what it printed."""
    dst.unlink(missing_ok=True)
    # Flush the previous run's written gigabyte first, or its write-back would slow this run down.
    os.sync()
    command = [sys.executable, "-m", "benchmarks.bench_envelope", "--child", kind, str(src), str(dst)]
    command += [str(secret), "--chunk-size", str(chunk_size)]
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            command, check=True, stdout=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT_S, cwd=root
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{kind} did not finish in {CHILD_TIMEOUT_S} s") from None
    return Measure(**json.loads(done.stdout.strip().splitlines()[-1]))


def best(runs: list[Measure]) -> Measure:
    """The fastest run, with the highest peak RSS of all runs (memory must hold on every run)."""
    fastest = min(runs, key=lambda m: m.seconds)
    return Measure(fastest.bytes, fastest.seconds, max(m.peak for m in runs), max(m.growth for m in runs))


def generate(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` in 1 MiB blocks; return their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for offset in range(0, size, MiB):
            block = os.urandom(min(MiB, size - offset))
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def sha256_path(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def show(label: str, result: Measure) -> None:
    """One line of the report."""
    print(
        f"  {label:<46} {result.seconds:7.3f} s {result.rate:9,.0f} MB/s"
        f"  peak RSS {result.peak / MB:6.1f} MB (+{result.growth / MB:.1f} MB while running)"
    )


def verdict(ok: bool) -> str:
    """The words the benchmarks print for a target."""
    return "meets target" if ok else "misses target"


def compare(operation: str, ours: Measure, base: Measure) -> None:
    """Print the throughput ratio and the memory of one operation against its targets."""
    ratio = ours.rate / base.rate
    print(
        f"  -> {operation}: throughput ours/baseline {ratio:.2f}x (target >= {THROUGHPUT_TARGET}x): "
        f"{verdict(ratio >= THROUGHPUT_TARGET)}; peak RSS {ours.peak / MB:.1f} MB "
        f"(target < {RSS_TARGET / MB:.0f} MB): {verdict(ours.peak < RSS_TARGET)}"
    )


def run(root: Path, args: argparse.Namespace) -> None:
    """Generate the data and keys, run every measurement and print the report."""
    size = args.size_mb * MiB
    source, ours, theirs, plain = (root / n for n in ("data.bin", "data.aisec", "data.gcm", "plain.bin"))
    start = time.perf_counter()
    expected = generate(source, size)
    print(f"generated {size / MiB:,.0f} MiB of random data in {time.perf_counter() - start:.1f} s")
    keyring = root / "keyring.json"
    LocalKeyProvider(keyring).create(KEY_NAME)
    secret = root / "baseline.key"
    secret.touch(mode=0o600)
    secret.write_bytes(AESGCM.generate_key(256))

    runs: dict[str, list[Measure]] = {}
    pairs = [
        [("envelope-encrypt", source, ours, keyring), ("aesgcm-encrypt", source, theirs, secret)],
        [("envelope-decrypt", ours, plain, keyring), ("aesgcm-decrypt", theirs, plain, secret)],
    ]
    for round_ in range(args.repeats):
        for pair in pairs:
            # Alternate who goes first, so neither side always inherits the other's page-cache state.
            for kind, src, dst, key in pair if round_ % 2 == 0 else reversed(pair):
                runs.setdefault(kind, []).append(spawn(kind, src, dst, key, args.chunk_size))
                if kind.endswith("decrypt") and sha256_path(dst) != expected:
                    raise RuntimeError(f"{kind} did not restore the original bytes")
    overhead = ours.stat().st_size - theirs.stat().st_size
    print(
        f"chunks of {args.chunk_size / MiB:g} MiB; best of {args.repeats}; "
        f"the envelope is {overhead:,} bytes larger than the baseline's ciphertext (its header)"
    )
    results = {kind: best(measures) for kind, measures in runs.items()}
    for operation in ("encrypt", "decrypt"):
        show(f"envelope {operation}_stream", results[f"envelope-{operation}"])
        show(f"raw AESGCM.{operation} per chunk (baseline)", results[f"aesgcm-{operation}"])
        compare(operation, results[f"envelope-{operation}"], results[f"aesgcm-{operation}"])
    if args.skip_files:
        return
    print("file-level, for information (one run each; Location imports pyarrow through airflow_aisec.io):")
    encrypted = spawn("file-encrypt", source, ours, keyring, args.chunk_size)
    show("encrypt_file (+ decrypt-verify, sha256, fsync)", encrypted)
    show("decrypt_file (+ sha256, fsync)", spawn("file-decrypt", ours, plain, keyring, args.chunk_size))
    if sha256_path(plain) != expected:
        raise RuntimeError("decrypt_file did not restore the original bytes")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (``--child`` is internal: one measurement in a child process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the file in MiB (default 1024)")
    parser.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="plaintext bytes per chunk"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--skip-files", action="store_true", help="skip the file-level measurements")
    parser.add_argument("--dir", default=None, help="local folder for the generated data (default: temp)")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "SRC", "DST", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.repeats < 1 or args.chunk_size < 1:
        parser.error("--size-mb, --chunk-size and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    args = parse_args(argv)
    if args.child:
        kind, src, dst, secret = args.child
        return child(kind, src, dst, secret, args.chunk_size)
    python = sys.version.split()[0]
    print(f"python {python}, cryptography {cryptography.__version__}, {os.cpu_count()} CPUs")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aisec-bench-envelope-", dir=args.dir) as tmp:
        run(Path(tmp), args)
    print(f"total {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
