"""An erasure killed mid-way leaves every file old or new; rerunning the request completes it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from dsr_support import (
    EXAMPLE,
    ROOT,
    SUBJECT,
    by_dataset,
    catalog_for,
    digests,
    leaks,
    per_customer,
    raw_identifiers,
    run,
)

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import make_request, verify_certificate
from airflow_aisec.io import Location

REQUEST_ID = "erase-crash"

CHILD = r"""
import contextlib, os, signal, sys
from airflow_aisec.rewrite import source as rewrite
from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import StateStore, make_request, run_request

catalog_path, lake, log_uri, keyring, state, exports, mode, nth, email, request_id = sys.argv[1:]
rewrites = 0
real_write = rewrite.atomic_write


@contextlib.contextmanager
def write(*args, **kwargs):
    global rewrites
    rewrites += 1
    doomed = rewrites == int(nth)
    with real_write(*args, **kwargs) as writer:
        if doomed and mode == "mid-write":
            first = writer.write

            def write_then_die(data):
                first(data)
                os.kill(os.getpid(), signal.SIGKILL)  # the new version half written, before the swap

            writer.write = write_then_die
        yield writer
    if doomed and mode == "after-swap":
        os.kill(os.getpid(), signal.SIGKILL)  # swapped, but its outcome never recorded


rewrite.atomic_write = write
catalog = load_catalog(catalog_path, {"lake": lake})
ring = LocalKeyring(keyring)
with AuditLog.open(log_uri, keyring=ring) as log:
    request = make_request(catalog, "erasure", "email", email, request_id=request_id)
    run_request(catalog, request, keyring=ring, audit=log, state=StateStore(state, ring), exports=exports)
print("finished without being killed")
"""


def _uninterrupted(sample_lake_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The lake's digests after the same erasure, not interrupted."""
    reference = tmp_path / "reference"
    shutil.copytree(sample_lake_dir, reference)
    catalog = catalog_for(reference)
    ring = LocalKeyring(reference.parent / "reference-ring.json")
    with AuditLog.open(f"sqlite:///{tmp_path / 'reference.db'}", keyring=ring) as log:
        request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id=REQUEST_ID)
        run(catalog, request, ring, log, tmp_path / "reference-run")
    return digests(reference)


@pytest.mark.parametrize("mode", ["mid-write", "after-swap"])
def test_killed_erasure_leaves_old_or_new_files_and_a_rerun_completes_it(
    lake: Path, sample_lake_dir: Path, tmp_path: Path, mode: str
) -> None:
    before = digests(lake)
    counts = per_customer(lake)
    expected = _uninterrupted(sample_lake_dir, tmp_path)
    assert {rel for rel in before if expected[rel] != before[rel]}  # the erasure rewrites files
    log_uri, keyring = f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "ring.json"
    state, exports = tmp_path / "state", tmp_path / "exports"
    child = subprocess.run(
        [
            sys.executable, "-c", CHILD, str(EXAMPLE), str(lake), log_uri, str(keyring), str(state),
            str(exports), mode, "2", SUBJECT.email, REQUEST_ID,
        ],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr

    crashed = digests(lake)
    assert set(crashed) == set(before)
    for rel, digest in crashed.items():
        assert digest in {before[rel], expected[rel]}, rel  # old or new, never partial
    done_before_crash = {rel for rel in crashed if crashed[rel] != before[rel]}
    assert len(done_before_crash) == (1 if mode == "mid-write" else 2)

    catalog = catalog_for(lake)
    ring = LocalKeyring(keyring)
    with AuditLog.open(log_uri, keyring=ring) as log:
        request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id=REQUEST_ID)
        document = run(catalog, request, ring, log, tmp_path)
        report = verify_certificate(document, log)
        assert report.ok, report.problems
        assert log.verify().ok
        operations: dict[str, list[str]] = {}
        for entry in log.entries():
            if "operation" in entry.data["details"]:
                operations.setdefault(entry.data["details"]["operation"], []).append(entry.data["outcome"])

    assert digests(lake) == expected
    assert set(leaks(lake, raw_identifiers().values())) <= {r for r in before if r.startswith("chargebacks/")}
    after = per_customer(lake)
    for name, rows in counts.items():  # nobody else lost a row
        assert {c: n for c, n in after[name].items() if c not in (SUBJECT.customer_id, "None")} == {
            c: n for c, n in rows.items() if c not in (SUBJECT.customer_id, "None")
        }, name
    assert all(sorted(o) == ["intent", "success"] for o in operations.values()), operations

    certificate = document["certificate"]
    assert certificate["status"] == "completed_with_holds"
    listed = {f["uri"]: f for d in by_dataset(document).values() for f in d["files"]}
    for rel in done_before_crash:  # the certificate covers the changes of the killed run too
        entry = listed[Location.parse(lake / rel).uri]
        assert entry["sha256_after"] == expected[rel]
        assert isinstance(entry["audit_entry"], int)
    recovered = [f for f in listed.values() if f["recovered"]]
    assert len(recovered) == (1 if mode == "after-swap" else 0)
    assert set(listed) == {Location.parse(lake / rel).uri for rel in before if expected[rel] != before[rel]}
