"""Per-subject legal holds: a held subject's data is not erased until the hold is lifted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dsr_support import (
    COPIES,
    HOLD_REASON,
    SUBJECT,
    by_dataset,
    catalog_for,
    digests,
    leaks,
    raw_identifiers,
    run,
)

from airflow_aisec.audit import AuditLog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import active_holds, make_request, verify_certificate
from airflow_aisec.retention import HoldList


def test_a_held_subject_is_not_erased_until_the_hold_is_lifted(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    holds = tmp_path / "holds.json"
    pseudonym = log.pseudonym(SUBJECT.customer_id)  # as retention and `aisec holds` record it
    HoldList(holds).add(pseudonym, "investigation")
    assert SUBJECT.customer_id not in holds.read_text()
    catalog = catalog_for(lake)
    before = digests(lake)
    held = active_holds(str(holds))
    assert held[pseudonym].reason == "investigation"
    # Held under the customer id, asked for by e-mail: the hold is found through the resolved identities.
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-held")

    document = run(catalog, request, ring, log, tmp_path, holds=held)

    assert digests(lake) == before
    certificate = document["certificate"]
    assert certificate["status"] == "completed_with_holds"
    datasets = by_dataset(document)
    assert [datasets.pop(n)["status"] for n in COPIES] == ["no_data"] * 2  # nothing of theirs: nothing held
    assert {n: d["status"] for n, d in datasets.items()} == dict.fromkeys(datasets, "held")
    assert {n: d["legal_hold"]["reason"] for n, d in datasets.items()} == {
        "customers": "investigation",
        "orders": "investigation",
        "support_tickets": "investigation",
        "chargebacks": HOLD_REASON,  # the dataset's own hold comes first
    }
    assert datasets["customers"]["legal_hold"]["scope"] == "subject"
    assert certificate["summary"]["datasets_changed"] == []
    assert certificate["summary"]["rows_held"] == sum(d["rows_affected"] for d in datasets.values()) > 0
    assert not [e for e in log.entries() if "operation" in e.data["details"]]
    assert verify_certificate(document, log).ok

    # Lifted, the same request erases the subject (but still not the dataset-held chargebacks).
    assert HoldList(holds).remove(pseudonym)
    assert active_holds(str(holds)) == {}
    again = run(catalog, request, ring, log, tmp_path, holds=active_holds(str(holds)))
    assert again["certificate"]["summary"]["datasets_changed"] == ["customers", "orders", "support_tickets"]
    assert set(leaks(lake, raw_identifiers().values())) <= {r for r in before if r.startswith("chargebacks/")}
    assert verify_certificate(again, log).ok


def test_an_expired_hold_no_longer_counts(tmp_path: Path, log: AuditLog) -> None:
    holds = tmp_path / "holds.json"
    pseudonym = log.pseudonym(SUBJECT.customer_id)
    HoldList(holds).add(pseudonym, "closed case", dt.date(2026, 1, 31))
    assert active_holds(str(holds), today=dt.date(2026, 1, 31))[pseudonym].reason == "closed case"
    assert active_holds(str(holds), today=dt.date(2026, 2, 1)) == {}
    assert active_holds(None) == {}
    assert active_holds(str(tmp_path / "no-such-file.json")) == {}
