"""The lineage summary read through the search terms is the one read from every entry, and is proven by
``verify --index``; a log written before lineage terms existed still works."""

from __future__ import annotations

from pathlib import Path

from test_audit_tamper import tamper

from airflow_aisec.audit import AuditLog, Failure
from airflow_aisec.audit.lineage_index import NEWEST, LineageSummary


def _actor(run: str) -> dict[str, object]:
    return {"kind": "airflow", "dag_id": "pipe", "run_id": run, "task_id": "t"}


def _mixed(log: AuditLog) -> None:
    """Flows under several actions, files without a catalog name, plain-string refs, entries on their own
    dataset, entries with no dataset at all, and one flow with more entries and runs than are kept."""
    log.append_many(
        [
            {
                "action": "pii.mask",
                "dataset": "raw",
                "inputs": [{"dataset": "raw", "uri": f"file:///lake/raw/p{i}.parquet"}],
                "outputs": [{"dataset": "masked", "uri": f"file:///lake/masked/p{i}.parquet"}],
                "actor": _actor(f"run{i % 7}"),
            }
            for i in range(30)
        ]
    )
    log.append("dataset.encrypt", inputs=[{"dataset": "masked"}], outputs=[{"dataset": "sealed"}])
    log.append("dataset.write", inputs=[{"dataset": "masked"}], outputs=[{"dataset": "sealed"}])
    log.append("dataset.write", inputs=[{"uri": "s3://drop/in.csv"}], outputs=["report.csv"])
    log.append("key.rotate", dataset="sealed")
    log.append("pii.scan", dataset="tickets", inputs=[{"location": "file:///lake/tickets"}])
    log.append("dsr.erasure", subject="jane@example.com", details={"request_id": "r1", "stage": "request"})
    log.append("catalog.validate")


def test_lineage_through_the_index_is_the_lineage_of_every_entry(log_uri: str, keyring_path: Path) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        _mixed(log)
        indexed = LineageSummary.from_index(log.store)
        full = LineageSummary.from_entries(log.entries())
    assert indexed == full
    assert full.nodes == {
        "raw",
        "masked",
        "sealed",
        "s3://drop/in.csv",
        "report.csv",
        "tickets",
        "file:///lake/tickets",
    }
    mask = full.flows[("raw", "masked")]
    assert mask.count == 30 and mask.newest == [29, 28, 27, 26, 25] and len(mask.runs) == NEWEST
    assert full.flows[("masked", "sealed")].counts == {"dataset.encrypt": 1, "dataset.write": 1}
    assert full.operations["sealed"] == {"dataset.encrypt": 1, "dataset.write": 1, "key.rotate": 1}


def test_a_flow_the_index_invents_is_not_shown_and_verify_index_names_its_entry(
    log_uri: str, keyring_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        _mixed(log)
        log.checkpoint()
        honest = LineageSummary.from_entries(log.entries())
    fake = '["flow","raw","elsewhere","pii.mask"]'
    tamper(
        log_uri, lambda a: a.run("INSERT INTO aisec_terms (kind, value, idx) VALUES ('lineage', ?, 3)", fake)
    )
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        indexed = LineageSummary.from_index(log.store)
        assert indexed is not None and ("raw", "elsewhere") not in indexed.flows
        assert indexed.flows == honest.flows
        assert log.verify().ok
        report = log.verify(index=True)
        assert report.exit_code == Failure.MODIFIED and [f.index for f in report.findings] == [3]


def test_a_changed_lineage_term_is_found_by_verify_index(log_uri: str, keyring_path: Path) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        _mixed(log)
        log.checkpoint()
    tamper(log_uri, lambda a: a.run("DELETE FROM aisec_terms WHERE kind = 'lineage' AND idx = 30"))
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        report = log.verify(index=True)
        assert report.exit_code == Failure.MODIFIED and [f.index for f in report.findings] == [30]


def test_a_log_written_before_lineage_terms_is_read_whole_until_a_writer_indexes_it(
    log_uri: str, keyring_path: Path
) -> None:
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:
        _mixed(log)
        log.checkpoint()

    def make_old(attacker):  # type: ignore[no-untyped-def]
        if not log_uri.startswith("sqlite"):
            attacker.run("ALTER TABLE aisec_meta DISABLE TRIGGER USER")
        attacker.run("DELETE FROM aisec_terms WHERE kind = 'lineage'")
        attacker.run("DELETE FROM aisec_meta WHERE key = 'terms.lineage'")

    tamper(log_uri, make_old)
    with AuditLog.open(log_uri, keyring=str(keyring_path), create=False) as log:
        assert LineageSummary.from_index(log.store) is None  # the page reads every entry instead
        assert log.verify(index=True).ok  # the terms it has are the terms it was written with
    with AuditLog.open(log_uri, keyring=str(keyring_path)) as log:  # a writer indexes lineage once
        log.append("dataset.write", inputs=[{"dataset": "sealed"}], outputs=[{"dataset": "archive"}])
        log.checkpoint()
        assert LineageSummary.from_index(log.store) == LineageSummary.from_entries(log.entries())
        assert log.verify(index=True).ok
