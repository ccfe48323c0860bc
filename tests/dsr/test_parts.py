"""A dataset's share of a request split into parts, carried out part by part as the DAG's mapped tasks do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import lake_copy, open_log
from dsr_support import (
    EXAMPLE,
    ROOT,
    SUBJECT,
    by_dataset,
    catalog_for,
    customer_rows,
    dataset_table,
    digests,
    others,
    run,
)

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.crypto.datasets import encrypt_files, subject_columns
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.crypto.providers import LocalKeyProvider
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.crypto.subjects import subject_key_name
from airflow_aisec.dsr import DatasetOutcome, DsrContext, StateStore, make_request, verify_certificate
from airflow_aisec.dsr.parts import PartLimits, Plan, mapped_parts, merge_outcomes, part_of
from airflow_aisec.dsr.registration import mapped, plan_of, registration
from airflow_aisec.dsr.run import Begun, begin, carry_out, complete, rescan
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import Location
from airflow_aisec.rewrite import FileChange

ORDER_FILES = 10
LIMITS = PartLimits(max_files_per_task=4)  # the ten orders files: parts of 4, 4 and 2 files


def _spread_orders(lake: Path) -> None:
    """Rewrite the orders into ten files, each holding one order of the subject among other people's."""
    table = dataset_table(lake, "orders")
    theirs, rest = customer_rows(table, SUBJECT.customer_id).to_pylist(), others(table)
    assert theirs and rest.num_rows >= ORDER_FILES
    for path in (lake / "orders").glob("*.parquet"):
        path.unlink()
    for i in range(ORDER_FILES):
        order = {**theirs[i % len(theirs)], "order_id": f"{theirs[i % len(theirs)]['order_id']}-{i}"}
        rows = [*rest.take(list(range(i, rest.num_rows, ORDER_FILES))).to_pylist(), order]
        pq.write_table(
            pa.Table.from_pylist(rows, schema=table.schema), lake / "orders" / f"orders-{i:02}.parquet"
        )


def _erasure(catalog: Catalog, request_id: str = "erase-parts") -> Any:
    return make_request(catalog, "erasure", "email", SUBJECT.email, request_id=request_id)


def _carry_out_parts(
    ctx: DsrContext, begun: Begun, plan: Plan, *, only: Sequence[tuple[str, int]] | None = None
) -> list[DatasetOutcome]:
    """Each part as its mapped task does: its part of the match brought up to date, then carried out."""
    ids = begun.resolution.identifiers
    outcomes = []
    for item in mapped_parts(list(begun.resolution.datasets), plan):
        name, index = item["dataset"], item["part"]
        if only is not None and (name, index) not in only:
            continue
        part = part_of(plan, name, index, item["parts"])
        match = rescan(ctx, ids, begun.resolution.datasets[name], part)
        outcomes.append(carry_out(ctx, match, ids, part=part))
    return outcomes


def _in_parts(
    catalog: Catalog,
    ring: LocalKeyring,
    log: AuditLog,
    tmp_path: Path,
    *,
    drop: tuple[str, int] | None = None,
) -> tuple[dict[str, Any], Plan]:
    """The erasure carried out part by part (``drop``: a part whose task never reported), and its plan."""
    ctx = DsrContext(catalog, _erasure(catalog), keyring=ring, audit=log)
    state = StateStore(tmp_path / "state", ring)
    begun = begin(ctx, state=state)
    plan = begun.plan(LIMITS)
    outcomes = [o for o in _carry_out_parts(ctx, begun, plan) if drop is None or (o.dataset, o.part) != drop]
    return complete(ctx, begun.resolution, outcomes, state=state, parts=plan), plan


def _files(document: dict[str, Any]) -> dict[str, dict[str, tuple[Any, ...]]]:
    return {
        name: {f["uri"]: (f["action"], f["sha256_after"], f["rows_affected"]) for f in d["files"]}
        for name, d in by_dataset(document).items()
    }


def test_an_erasure_in_parts_changes_and_certifies_what_one_part_does(
    lake: Path, sample_lake_dir: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    single = lake_copy(sample_lake_dir, tmp_path, "single")
    for root in (lake, single):
        _spread_orders(root)
    with open_log(tmp_path, ring, "single.db") as single_log:
        catalog = catalog_for(single)
        whole = run(catalog, _erasure(catalog), ring, single_log, tmp_path / "single-run")

    split, plan = _in_parts(catalog_for(lake), ring, log, tmp_path)

    assert [len(p) for p in plan["orders"]] == [4, 4, 2] and set(plan) == {"orders"}
    assert digests(lake) == digests(single)
    assert digests(lake) != digests(sample_lake_dir)
    one, many = whole["certificate"], split["certificate"]
    assert many["status"] == one["status"] == "completed_with_holds"
    assert many["summary"] == one["summary"]
    assert many["summary"]["rows_affected"] >= ORDER_FILES
    assert [d["dataset"] for d in many["datasets"]] == [d["dataset"] for d in one["datasets"]]  # each once
    keep = ("status", "rows_affected", "mentions_masked", "strategy")
    for name, d in by_dataset(split).items():
        assert {k: d[k] for k in keep} == {k: by_dataset(whole)[name][k] for k in keep}, name
        assert d["parts"] == (3 if name == "orders" else 1)
    relative = {
        n: {Path(u.removeprefix("file://")).relative_to(lake): v for u, v in f.items()}
        for n, f in _files(split).items()
    }
    assert relative == {
        n: {Path(u.removeprefix("file://")).relative_to(single): v for u, v in f.items()}
        for n, f in _files(whole).items()
    }
    assert len(relative["orders"]) == ORDER_FILES
    assert verify_certificate(split, log).ok
    assert log.verify().ok


def test_each_part_records_its_own_summary_and_a_single_part_keeps_the_usual_key(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    _spread_orders(lake)
    _in_parts(catalog_for(lake), ring, log, tmp_path)

    summaries = [key for key, _ in log.keyed("dsr.erasure:erase-parts:") if ":summary:" in key]
    orders = sorted(k.split(":summary:")[1].split(":")[0] for k in summaries if ":orders:" in k)
    assert orders == ["part-1-of-3", "part-2-of-3", "part-3-of-3"]
    customers = [k for k in summaries if ":customers:" in k]
    assert len(customers) == 1 and "part-" not in customers[0]


def test_a_missing_part_fails_the_dataset_like_a_missing_dataset() -> None:
    plan = {"orders": [["a"], ["b"], ["c"]]}
    done = [
        DatasetOutcome("orders", "anonymize", "changed", rows_affected=2, part=i, parts=3) for i in (0, 2)
    ]
    middle = DatasetOutcome("orders", "anonymize", "changed", rows_affected=2, part=1, parts=3)

    (merged,) = merge_outcomes(["orders"], done, plan)
    assert merged.status == "failed" and merged.error == "dataset orders: part(s) 2/3 not processed"
    assert merged.rows_affected == 4 and merged.parts == 3
    assert [(p["part"], p["status"], p["error"]) for p in merged.part_outcomes] == [
        ("1/3", "changed", None), ("2/3", "failed", "not processed"), ("3/3", "changed", None)
    ]  # fmt: skip
    (whole,) = merge_outcomes(["orders"], [*done, middle], plan)
    assert whole.status == "changed" and whole.error is None and whole.rows_affected == 6
    (claimed,) = merge_outcomes(["orders"], [*done, middle])  # the registration has one part: 3 do not fit
    assert claimed.status == "failed" and "outcomes of 3 parts" in str(claimed.error)
    with pytest.raises(DsrError, match="part 2/2 is not a part of the request's registration"):
        part_of(plan, "orders", 1, 2)


def test_parts_that_agree_on_the_hold_merge_held_and_parts_that_disagree_fail() -> None:
    plan = {"orders": [["a"], ["b"], ["c"]]}
    hold = {"scope": "dataset", "reason": "litigation", "until": "2099-12-31"}
    held = [
        DatasetOutcome("orders", "anonymize", "held", 2, legal_hold=hold, part=i, parts=3, rows_held=2)
        for i in (0, 1)
    ]
    settled = FileChange("c", "rewrite", 5, 5, 1, recovered=True)  # a killed run's change, finished
    never_asked = [
        DatasetOutcome("orders", "anonymize", "no_data", part=2, parts=3),
        DatasetOutcome("orders", "anonymize", "changed", files=[settled], part=2, parts=3),
    ]
    for other in never_asked:  # no row to change: the part never decided on the hold
        (merged,) = merge_outcomes(["orders"], [*held, other], plan)
        assert (merged.status, merged.rows_affected, merged.rows_held, merged.error) == ("held", 4, 4, None)
        assert merged.legal_hold == hold

    for status in ("changed", "dry_run"):  # a row to change, and no hold when that part ran
        other = DatasetOutcome("orders", "anonymize", status, rows_affected=1, part=2, parts=3)
        (merged,) = merge_outcomes(["orders"], [*held, other], plan)
        assert merged.status == "failed" and (merged.rows_affected, merged.rows_held) == (1, 4)
        assert f"parts {status} and held ({status}: part(s) 3/3, 1 row(s); held: part(s) 1/3, 2/3" in str(
            merged.error
        )


def _on_hold(data: dict[str, Any]) -> None:
    data["datasets"]["orders"]["legal_hold"] = {"reason": "litigation 2026-99", "until": "2099-12-31"}


def test_a_hold_that_comes_into_force_between_parts_fails_the_dataset_and_counts_each_row_where_it_is(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    """Each part decides on the hold when it runs: a hold deployed after part 1/3 leaves its 4 rows erased
    and the other parts' 6 held. Neither "held" nor "completed" is true of the dataset: it is failed, part
    by part, its erased rows counted as changed and its held rows as held; a rerun under the hold holds the
    rest."""
    _spread_orders(lake)
    catalog = catalog_for(lake)
    ctx = DsrContext(catalog, _erasure(catalog), keyring=ring, audit=log)
    state = StateStore(tmp_path / "state", ring)
    begun = begin(ctx, state=state)
    plan = begun.plan(LIMITS)
    first = _carry_out_parts(ctx, begun, plan, only=[(name, 0) for name in begun.resolution.datasets])
    held = catalog_for(lake, tmp_path, _on_hold)
    later = DsrContext(held, _erasure(held), keyring=ring, audit=log)
    rest = _carry_out_parts(later, begun, plan, only=[("orders", 1), ("orders", 2)])

    document = complete(later, begun.resolution, [*first, *rest], state=state, parts=plan)

    certificate, orders = document["certificate"], by_dataset(document)["orders"]
    assert certificate["status"] == "failed" and orders["status"] == "failed"
    assert orders["error"] == (
        "dataset orders: the dataset's hold changed during the request: parts changed and held (changed: "
        "part(s) 1/3, 4 row(s); held: part(s) 2/3, 3/3, 6 row(s)); run the request again"
    )
    assert (orders["rows_affected"], orders["rows_held"], len(orders["files"])) == (4, 6, 4)
    parts = [
        (p["part"], p["status"], p["rows_affected"], p["files_changed"]) for p in orders["part_outcomes"]
    ]
    assert parts == [("1/3", "changed", 4, 4), ("2/3", "held", 4, 0), ("3/3", "held", 2, 0)]
    rest_of = [d for d in certificate["datasets"] if d["dataset"] != "orders"]
    summary = certificate["summary"]
    assert summary["rows_affected"] == 4 + sum(
        d["rows_affected"] for d in rest_of if d["status"] == "changed"
    )
    assert summary["rows_held"] == 6 + sum(d["rows_affected"] for d in rest_of if d["status"] == "held")
    assert "orders" in summary["datasets_changed"] and "orders" in summary["datasets_held"]
    assert "part_outcomes" not in by_dataset(document)["customers"]  # one part: the entry it always had
    assert verify_certificate(document, log).ok

    again, _ = _in_parts(held, ring, log, tmp_path)
    orders = by_dataset(again)["orders"]
    assert again["certificate"]["status"] == "completed_with_holds"
    assert (orders["status"], orders["rows_affected"], orders["error"]) == ("held", 6, None)
    assert len(orders["files"]) == 4  # the rows erased before the hold came into force stay on record
    assert verify_certificate(again, log).ok


def test_a_registration_giving_a_file_two_parts_or_a_file_it_did_not_match_is_refused(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    _spread_orders(lake)
    catalog = catalog_for(lake)
    ctx = DsrContext(catalog, _erasure(catalog), keyring=ring, audit=log)
    state = StateStore(tmp_path / "state", ring)
    begun = begin(ctx, state=state)
    plan = begun.plan(LIMITS)
    registered = registration(ctx, begun, state, plan)
    assert plan_of(registered) == plan
    first, second, third = plan["orders"]
    customers = registered["matches"]["customers"]["files"][0]["uri"]

    crafted = {
        r"is in part 1/3 and in part 2/3 \(a file belongs to one part only\)": {
            "orders": [first, [*second, first[0]], third]
        },
        r"is in part 3/3 and in part 3/3": {"orders": [first, second, [*third, third[0]]]},
        r"part 3/3 lists .*customers.*, which is not a file the registration found the subject in": {
            "orders": [first, second, [*third, customers]]
        },
        "splits dataset nowhere into parts, but did not find the subject there": {
            "nowhere": [[first[0]], []]
        },
    }
    for message, parts in crafted.items():
        for opened in (plan_of, mapped):
            with pytest.raises(DsrError, match=message):
                opened({**registered, "parts": parts})


def _sealed_orders(lake: Path, tmp_path: Path, ring: LocalKeyring) -> Catalog:
    """Orders spread over ten files whose shipping address is sealed with a key of each subject's own."""

    def edit(data: dict[str, Any]) -> None:
        orders = data["datasets"]["orders"]
        orders["encryption"] = {"key": "pii-columns", "columns": ["shipping_address"],
                                "per_subject_columns": ["shipping_address"]}  # fmt: skip
        orders["erasure"] = "delete_rows"
        del data["datasets"]["chargebacks"]["legal_hold"]

    _spread_orders(lake)
    catalog = catalog_for(lake, tmp_path, edit)
    orders = catalog.dataset("orders")
    location = Location.parse(lake / "orders")
    encrypt_files(
        location, location, "parquet", LocalKeyProvider(ring), "pii-columns", columns=["shipping_address"],
        subjects=subject_columns(KeySource(catalog, ring), orders),
    )  # fmt: skip
    return catalog


@pytest.mark.parametrize("missing", [False, True], ids=["every-part", "a-part-missing"])
def test_a_part_missing_from_the_outcomes_fails_the_request_and_destroys_no_key(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, missing: bool
) -> None:
    catalog = _sealed_orders(lake, tmp_path, ring)
    theirs = subject_key_name(
        Pseudonymizer(ring.get(catalog.subjects.pseudonym_key).material), SUBJECT.customer_id
    )
    assert {v.state for v in ring.versions(theirs)} == {"active"}

    document, plan = _in_parts(catalog, ring, log, tmp_path, drop=("orders", 1) if missing else None)

    certificate = document["certificate"]
    assert len(plan["orders"]) == 3
    orders = by_dataset(document)["orders"]
    shreds = [e.data for e in log.entries() if e.data["action"] == "key.shred"]
    if missing:
        assert certificate["status"] == "failed"
        assert orders["status"] == "failed" and orders["error"] == "dataset orders: part(s) 2/3 not processed"
        assert certificate["keys_shredded"] == [] and not shreds
        assert {v.state for v in ring.versions(theirs)} == {"active"}
    else:
        assert certificate["status"] == "completed" and orders["status"] == "changed"
        assert certificate["keys_shredded"] == [theirs] and {v.state for v in ring.versions(theirs)} == {
            "destroyed"
        }
    assert verify_certificate(document, log).ok


def test_rerunning_a_request_in_parts_records_nothing_twice(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    _spread_orders(lake)
    catalog = catalog_for(lake)
    ctx = DsrContext(catalog, _erasure(catalog), keyring=ring, audit=log)
    state = StateStore(tmp_path / "state", ring)
    begun = begin(ctx, state=state)
    plan = begun.plan(LIMITS)
    first = complete(ctx, begun.resolution, _carry_out_parts(ctx, begun, plan), state=state, parts=plan)
    files = digests(lake)
    size = log.size()

    # Every part again on the same registration (its mapped tasks cleared), then the whole request again.
    again = complete(ctx, begun.resolution, _carry_out_parts(ctx, begun, plan), state=state, parts=plan)
    rerun, _ = _in_parts(catalog, ring, log, tmp_path)
    after_rerun = log.size()
    last, _ = _in_parts(catalog, ring, log, tmp_path)

    assert digests(lake) == files
    new = [e.data for e in log.entries(size)]
    assert not [e for e in new if "operation" in e["details"]]  # no intent, no file outcome
    assert log.size() == after_rerun  # the same run once more: every entry it would make is there already
    listed = {f["uri"] for d in first["certificate"]["datasets"] for f in d["files"]}
    for document in (again, rerun, last):
        assert document["certificate"]["changed_in_this_run"] is False
        assert {f["uri"] for d in document["certificate"]["datasets"] for f in d["files"]} == listed
        assert verify_certificate(document, log).ok
    assert verify_certificate(first, log).ok


# --- a part killed mid-way ----------------------------------------------------------------------------------

CHILD = r"""
import contextlib, json, os, signal, sys
from airflow_aisec.rewrite import source as rewrite
from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import load_catalog
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import DsrContext, StateStore, make_request
from airflow_aisec.dsr.parts import part_of
from airflow_aisec.dsr.registration import plan_of, resolution_of
from airflow_aisec.dsr.run import carry_out, rescan

catalog_path, lake, log_uri, keyring, state, registered, index, count, email, request_id = sys.argv[1:]
real_write = rewrite.atomic_write


@contextlib.contextmanager
def write(*args, **kwargs):
    with real_write(*args, **kwargs) as writer:
        yield writer
    os.kill(os.getpid(), signal.SIGKILL)  # the first file of the part swapped, its outcome never recorded


rewrite.atomic_write = write
catalog = load_catalog(catalog_path, {"lake": lake})
ring = LocalKeyring(keyring)
with open(registered) as handle:
    registered = json.load(handle)
with AuditLog.open(log_uri, keyring=ring) as log:
    ctx = DsrContext(catalog, make_request(catalog, "erasure", "email", email, request_id=request_id),
                     keyring=ring, audit=log)
    resolution = resolution_of(ctx, StateStore(state, ring), registered)
    part = part_of(plan_of(registered), "orders", int(index), int(count))
    match = rescan(ctx, resolution.identifiers, resolution.datasets["orders"], part)
    carry_out(ctx, match, resolution.identifiers, part=part)
print("finished without being killed")
"""


def _open_intents(log: AuditLog) -> dict[str, str]:
    """Operation → file URI of every intent without an outcome."""
    states: dict[str, dict[str, Any]] = {}
    for entry in log.entries():
        details = entry.data["details"]
        if "operation" in details:
            states.setdefault(details["operation"], {})[entry.data["outcome"]] = entry.data["inputs"][0][
                "uri"
            ]
    return {op: found["intent"] for op, found in states.items() if set(found) == {"intent"}}


def _killed_log(tmp_path: Path, ring: LocalKeyring) -> AuditLog:
    """The audit log of the killed run's test (opened for a block, closed while another process writes)."""
    return AuditLog.open(f"sqlite:///{tmp_path / 'killed.db'}", keyring=ring)


def test_a_killed_part_is_settled_by_its_own_rerun_and_by_no_other_part(
    lake: Path, sample_lake_dir: Path, tmp_path: Path, ring: LocalKeyring
) -> None:
    reference = lake_copy(sample_lake_dir, tmp_path, "reference")
    for root in (lake, reference):
        _spread_orders(root)
    with open_log(tmp_path, ring, "reference.db") as reference_log:
        catalog = catalog_for(reference)
        run(catalog, _erasure(catalog), ring, reference_log, tmp_path / "reference-run")
    catalog = catalog_for(lake)
    state = StateStore(tmp_path / "state", ring)
    with _killed_log(tmp_path, ring) as log:
        ctx = DsrContext(catalog, _erasure(catalog), keyring=ring, audit=log)
        begun = begin(ctx, state=state)
        plan = begun.plan(LIMITS)
        registered = tmp_path / "registration.json"
        registered.write_text(json.dumps(registration(ctx, begun, state, plan)))

    child = subprocess.run(
        [
            sys.executable, "-c", CHILD, str(EXAMPLE), str(lake), f"sqlite:///{tmp_path / 'killed.db'}",
            str(ring.path), str(tmp_path / "state"), str(registered), "1", "3", SUBJECT.email, "erase-parts",
        ],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=dict(os.environ),
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr

    with _killed_log(tmp_path, ring) as log:
        (killed,) = _open_intents(log).values()
        assert killed in part_of(plan, "orders", 1, 3).files
        ctx = DsrContext(catalog, _erasure(catalog), keyring=ring, audit=log)
        elsewhere = [(name, i) for name in begun.resolution.datasets for i in (0, 2)]
        rest = _carry_out_parts(ctx, begun, plan, only=elsewhere)
        assert list(_open_intents(log).values()) == [killed]  # parts 1/3 and 3/3 leave it to its own part
        assert not [f for o in rest for f in o.files if f.uri == killed]
        (own,) = _carry_out_parts(ctx, begun, plan, only=[("orders", 1)])
        assert _open_intents(log) == {}
        (recovered,) = [f for f in own.files if f.uri == killed]
        assert recovered.recovered and own.status == "changed"
        document = complete(ctx, begun.resolution, [*rest, own], state=state, parts=plan)
        assert document["certificate"]["status"] == "completed_with_holds"
        assert verify_certificate(document, log).ok and log.verify().ok

    assert digests(lake) == digests(reference)
    listed = {f["uri"]: f for f in by_dataset(document)["orders"]["files"]}
    assert listed[killed]["recovered"] and len(listed) == ORDER_FILES
