"""Several processes append at once; a process killed mid-way leaves no gap and no duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from airflow_aisec.audit import AuditLog

APPENDER = """
import sys
from airflow_aisec.audit import AuditLog
uri, keyring, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log = AuditLog.open(uri, keyring=keyring, checkpoint_every=250)
for i in range(count):
    log.append("pii.scan", details={"worker": worker, "i": i}, idempotency_key=f"{worker}:{i}")
log.close()
"""

KILLED_BEFORE_CHECKPOINT = """
import os, sys, time
from airflow_aisec.audit import AuditLog
uri, keyring, ready = sys.argv[1], sys.argv[2], sys.argv[3]
log = AuditLog.open(uri, keyring=keyring, checkpoint_every=0)
for i in range(40):
    log.append("pii.scan", details={"i": i})
open(ready, "w").close()   # entries committed, no checkpoint signed yet
time.sleep(60)
"""


def _spawn(script: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", script, *args], stderr=subprocess.PIPE)


def test_eight_concurrent_appenders_get_contiguous_indices(log_uri: str, keyring_path: Path) -> None:
    AuditLog.open(log_uri, keyring=str(keyring_path)).close()  # create tables and keys once
    workers = [_spawn(APPENDER, log_uri, str(keyring_path), str(w), "1000") for w in range(8)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err.decode()[-2000:]
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        entries = list(log.entries())
        report = log.verify()
    assert [e.index for e in entries] == list(range(8000))
    assert len({(e.data["details"]["worker"], e.data["details"]["i"]) for e in entries}) == 8000
    assert report.ok, report.findings


def test_kill_between_append_and_checkpoint_loses_nothing(
    log_uri: str, keyring_path: Path, tmp_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        log.append("pii.mask")
    ready = tmp_path / "ready"
    child = _spawn(KILLED_BEFORE_CHECKPOINT, log_uri, str(keyring_path), str(ready))
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        assert log.verify().ok
        log.append("pii.mask")
        indices = [e.index for e in log.entries()]
        assert indices == list(range(42))
        assert log.checkpoint() is not None
        assert log.verify().ok
