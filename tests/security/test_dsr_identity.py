"""Attacks on who a data-subject request is about: a reused request id, a pseudonym given as the identity,
Unicode that folds differently on each side, identifiers outliving the request, and other people's personal
data in the free-text reason. Each test carries the attack out, then shows it is refused or defused."""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dsr_support import (
    OTHER,
    SAMPLE,
    SUBJECT,
    audit_text,
    by_dataset,
    catalog_for,
    customer_rows,
    dataset_table,
    decode,
    digests,
    run,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Dataset
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.dsr import (
    DsrContext,
    DsrRequest,
    StateStore,
    begin,
    carry_out,
    complete,
    make_request,
    verify_certificate,
)
from airflow_aisec.dsr.certificate import dumps
from airflow_aisec.dsr.index import SubjectIndex, _normal, refresh_catalog
from airflow_aisec.dsr.matching import Criteria, as_text, fold, fold_text, member
from airflow_aisec.dsr.scan import catalog_scanner
from airflow_aisec.dsr.state import Binding
from airflow_aisec.exceptions import DsrError

EXPORT_KEY = "pii-columns"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- a request id reused for another subject or another type -----------------------------------------------


@pytest.mark.parametrize(
    ("kind", "who"),
    [("access", OTHER), ("access", SUBJECT), ("erasure", OTHER)],
    ids=["access-for-another-subject", "access-for-the-same-subject", "erasure-of-another-subject"],
)
def test_reused_request_id_for_another_subject_or_type_is_refused(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, kind: str, who: Any
) -> None:
    ring.ensure(EXPORT_KEY, "symmetric")
    catalog = catalog_for(lake)
    # The subject's erasure ends with their chargeback held, so their identifiers stay in the state folder.
    first = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="TICKET-4711")
    assert run(catalog, first, ring, log, tmp_path)["certificate"]["status"] == "completed_with_holds"
    lake_before, state_before, size = digests(lake), _files(tmp_path / "state"), log.size()
    assert state_before  # the held request's sealed identifiers

    # The same ticket number, for someone else or as another type of request: it used to be merged with the
    # kept state and exported the first subject's held chargeback in the second subject's package.
    reused = make_request(
        catalog, kind, "customer_id", who.customer_id, request_id="TICKET-4711",
        export_key=EXPORT_KEY if kind == "access" else None,
    )  # fmt: skip
    with pytest.raises(DsrError, match="request id 'TICKET-4711' is already used") as refused:
        run(catalog, reused, ring, log, tmp_path)

    message = str(refused.value)
    assert not any(v in message for v in (who.customer_id, who.email, SUBJECT.customer_id, SUBJECT.email))
    assert "hmac-sha256" not in message
    assert log.size() == size  # nothing recorded
    assert digests(lake) == lake_before and _files(tmp_path / "state") == state_before
    assert not (tmp_path / "exports" / "TICKET-4711").exists()  # nothing exported

    # Without the audit log's binding (another log, or one with entries removed) the state still does not
    # open for the other request: it is authenticated with the request id, type and subject.
    elsewhere = AuditLog.open(f"sqlite:///{tmp_path / 'other-audit.db'}", keyring=ring)
    with elsewhere, pytest.raises(DsrError, match="belong to another request"):
        run(catalog, reused, ring, elsewhere, tmp_path)
    assert digests(lake) == lake_before and not (tmp_path / "exports" / "TICKET-4711").exists()

    # The same request again (same subject, same type) stays an idempotent rerun.
    again = run(catalog, first, ring, log, tmp_path)
    assert again["certificate"]["status"] == "completed_with_holds"
    assert verify_certificate(again, log).ok


# --- a pseudonym given as the identity ---------------------------------------------------------------------


def test_a_pseudonym_given_as_the_identity_is_refused(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    victim = log.pseudonym(SUBJECT.email)  # what `aisec audit show` displays for the subject
    before = digests(lake)
    # It used to pass through unpseudonymized, match nothing, and certify `no_data_found` under the victim's
    # pseudonym while their rows stayed.
    for crafted in (
        victim,
        victim.upper(),
        f"  {victim}",
        victim.replace("h", "ｈ"),  # fullwidth: NFKC makes it the pseudonym again
    ):
        with pytest.raises(DsrError, match="identity value: is a pseudonym") as refused:
            make_request(catalog, "erasure", "email", crafted, request_id="erase-by-pseudonym")
        assert victim not in str(refused.value) and victim[12:] not in str(refused.value)

    # Built without `make_request`, the request is still refused before anything is read or recorded.
    direct = DsrRequest("erasure", "email", victim, "erase-by-pseudonym")
    with pytest.raises(DsrError, match="pseudonym, not an identifier") as refused:
        run(catalog, direct, ring, log, tmp_path)
    assert victim not in str(refused.value)
    assert log.size() == 0 and digests(lake) == before
    # And the context never passes a pseudonym-looking value through: it is pseudonymized like any other.
    ctx = DsrContext(catalog, direct, keyring=ring, audit=log)
    assert ctx.pseudonym(victim) != victim and ctx.pseudonym(SUBJECT.email) == victim
    assert ctx.subject != victim


def test_a_pseudonym_is_refused_by_the_trigger_form() -> None:
    from airflow.sdk.definitions.param import ParamsDict, ParamValidationError

    from airflow_aisec.operators.dsr_dag import dsr_params

    conf = {"identity_type": "email", "request_id": "r1", "reason": "ticket"}
    params = ParamsDict(dsr_params("erasure"))
    params.update({**conf, "identity_value": SUBJECT.email})
    params.validate()
    for crafted in ("hmac-sha256:" + "ab" * 32, " HMAC-SHA256:" + "ab" * 32):
        params = ParamsDict(dsr_params("erasure"))
        with pytest.raises(ParamValidationError, match="identity_value"):
            params.update({**conf, "identity_value": crafted})
            params.validate()


# --- Unicode case folding: the request side and the data side agree ----------------------------------------


def _store_email(lake: Path, stored: str) -> Path:
    [path] = [
        p for p in (lake / "customers").glob("*.parquet") if SUBJECT.email in str(decode(p).to_pylist())
    ]
    table = decode(path)
    emails = pc.if_else(pc.equal(table.column("email"), SUBJECT.email), stored, table.column("email"))
    pq.write_table(table.set_column(table.schema.get_field_index("email"), "email", emails), path)
    return path


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "subject-index"])
@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("İlkay.Yilmaz@example.com", "İlkay.Yilmaz@example.com"),  # Python: i + U+0307, Arrow: i
        ("ΑΛΕΞΗΣ.Π@example.com", "ΑΛΕΞΗΣ.Π@example.com"),  # Python: final ς, Arrow: σ
        ("ilkay.yilmaz@example.com", "İLKAY.YILMAZ@EXAMPLE.COM"),
        ("jürgen.strauss@example.com", "Ｊu\u0308rgen.STRAUSS@example.com"),  # fullwidth, combining mark
    ],
    ids=["dotted-capital-i", "final-sigma", "dotted-capital-i-asked", "fullwidth-and-combining"],
)
def test_an_email_the_two_sides_fold_differently_is_still_the_subjects(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog, stored: str, asked: str, indexed: bool
) -> None:
    path = _store_email(lake, stored)
    rows = decode(path).num_rows
    catalog = catalog_for(lake)
    index = None
    if indexed:
        index = SubjectIndex(str(tmp_path / "index"), ring)
        refresh_catalog(catalog, index, catalog_scanner(KeySource(catalog, ring)))
    # The request used to lower-case with Python and the data with Arrow: a verified `no_data_found`
    # certificate while the row stayed.
    request = make_request(catalog, "erasure", "email", asked, request_id="erase-unicode")
    document = run(catalog, request, ring, log, tmp_path, index=index)

    assert document["certificate"]["status"] == "completed_with_holds"  # the chargeback is held
    assert by_dataset(document)["customers"]["rows_affected"] == 1
    assert stored not in decode(path).column("email").to_pylist() and decode(path).num_rows == rows - 1
    assert customer_rows(dataset_table(lake, "orders"), SUBJECT.customer_id).num_rows == 0
    assert verify_certificate(document, log).ok


_SPECIAL = [*"İıIiΣσςßẞSsſKkKǅǄǆΘϴϑµΜΩΩÅÅﬁﬀŉe", "\u0301", "\u0307", "\u0308", "\u0327"]
_FULLWIDTH = [chr(c) for c in range(0xFF21, 0xFF3B)] + [chr(c) for c in range(0xFF41, 0xFF5B)]
_TEXT = st.text(
    st.sampled_from(_SPECIAL + _FULLWIDTH)
    | st.characters(codec="utf-8", categories=("Lu", "Ll", "Lt", "Mn", "Nd"))
    | st.sampled_from(list("abcxyz.-_+")),
    min_size=1,
    max_size=12,
)


def _case_variant(text: str, rng: random.Random) -> str:
    """``text`` with each character in upper, lower or its own case (one-character mappings only, as a
    case-insensitive mailbox would see it), composed or decomposed."""
    out = []
    for char in text:
        options = [c for c in (char, char.upper(), char.lower()) if len(c) == 1]
        out.append(rng.choice(options))
    return unicodedata.normalize(rng.choice(["NFC", "NFD", "NFKC"]), "".join(out))


@functools.cache
def _customers() -> Dataset:
    return catalog_for("/lake").dataset("customers")


@settings(max_examples=300, deadline=None)
@given(local=_TEXT, seed=st.integers(0, 2**32 - 1))
def test_request_and_data_normalize_identifiers_alike(local: str, seed: int) -> None:
    asked = f"{local}@example.com"
    stored = _case_variant(asked, random.Random(seed))
    customers = _customers()
    column = pa.array([stored], pa.string())

    # One function: the request side (a one-element array) and the data side (a column) agree.
    assert fold_text(asked) == fold(pa.array([asked], pa.string()))[0].as_py()
    assert as_text(pa.array([asked]), casefold=True)[0].as_py() == fold_text(asked)
    # A row holding a case variant of the requested address is the subject's: in memory, in the pushed-down
    # Parquet filter, and in the subject index's hashing.
    assert member(column, {asked}, casefold=True).to_pylist() == [True]
    table = pa.table({"email": column})
    expression = Criteria(customers, {"email": frozenset({asked})}).expression(table.schema)
    assert expression is not None
    assert stored in table.filter(expression).column("email").to_pylist()
    assert _normal(customers, "email", asked) == as_text(pa.array([stored]), casefold=True)[0].as_py()


# --- identifiers outliving the request ---------------------------------------------------------------------


def _unheld_subject() -> Any:
    charged = {str(r["customer_id"]) for r in SAMPLE.rows("chargebacks")}
    ordered = {str(r["customer_id"]) for r in SAMPLE.rows("orders")}
    return next(c for c in SAMPLE.customers if c.customer_id in ordered and c.customer_id not in charged)


def _xcoms(run: Any) -> list[tuple[str, str, Any]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return [(r.task_id, r.key, XComModel.deserialize_value(r)) for r in rows]


@pytest.mark.integration
def test_identifiers_sealed_in_xcom_do_not_open_once_the_erasure_is_done(
    airflow_db: Path, sample_lake_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    copy = tmp_path / "lake"
    shutil.copytree(sample_lake_dir, copy)
    for name, value in {
        "CATALOG_VARS": f"lake={copy}", "DSR_APPROVAL": "False", "DSR_EXPORTS": str(tmp_path / "exports"),
        "DSR_STATE": str(tmp_path / "state"), "HOLDS": str(tmp_path / "holds.json"),
        "DSR_INDEX": str(tmp_path / "index"),
        # A log of this test only: the run's lineage coverage must not depend on what other tests recorded.
        "AUDIT_LOG": f"sqlite:///{tmp_path / 'audit.db'}",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW__AISEC__{name}", value)
    ring = LocalKeyring(os.environ["AISEC_KEYRING"])
    subject = _unheld_subject()
    conf = {
        "identity_type": "email",
        "identity_value": subject.email,
        "request_id": "sec-xcom-1",
        "reason": "r",
    }
    dags = Path(__file__).resolve().parents[2] / "dags"
    dag = DagBag(dag_folder=str(dags / "aisec_dsr_erasure.py")).dags["aisec_dsr_erasure"]

    dag_run = dag.test(run_conf=conf)

    xcoms = _xcoms(dag_run)
    result = next(v for t, k, v in xcoms if t == "complete" and k == "return_value")
    assert result["status"] == "completed"
    registration = next(v for t, k, v in xcoms if t == "register" and k == "registration")
    token = registration["state"]
    assert subject.email not in json.dumps([v for _, _, v in xcoms], default=str)
    # XCom outlives the run; the identifiers it holds used to open with a keyring key nobody ever destroyed.
    catalog = catalog_for(copy)
    request = make_request(catalog, "erasure", "email", subject.email, request_id="sec-xcom-1")
    binding = Binding.of(DsrContext(catalog, request, keyring=ring))
    store = StateStore(tmp_path / "state", ring)
    with pytest.raises(DsrError, match="key was destroyed"):
        store.open(binding, token)
    name = StateStore.key_name("sec-xcom-1")
    assert "sec-xcom-1" not in name and subject.email not in name
    assert {v.state for v in ring.versions(name)} == {"destroyed"}
    assert all(v.material == b"" for v in ring.versions(name))
    assert not list((tmp_path / "state").glob("*.state"))  # no state file left either


def test_identifiers_of_a_held_request_outlive_only_in_the_state_file(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    request = make_request(catalog, "erasure", "email", SUBJECT.email, request_id="erase-held-xcom")
    ctx = DsrContext(catalog, request, keyring=ring, audit=log)
    store = StateStore(tmp_path / "state", ring)
    begun = begin(ctx, state=store)
    handed_on = store.seal(begun.binding, begun.resolution.identifiers)  # what the DAG puts in XCom
    outcomes = [carry_out(ctx, m, begun.resolution.identifiers) for m in begun.resolution.datasets.values()]
    document = complete(ctx, begun.resolution, outcomes, state=store)

    assert document["certificate"]["status"] == "completed_with_holds"
    with pytest.raises(DsrError, match="key was destroyed"):
        store.open(begun.binding, handed_on)
    kept = store.load(begun.binding)  # sealed again, under a fresh version, for the rerun after the hold
    assert kept is not None and SUBJECT.email in kept.identities["email"]
    versions = ring.versions(StateStore.key_name("erase-held-xcom"))
    assert [v.state for v in versions] == ["destroyed", "active"]


# --- other people's personal data in the reason ------------------------------------------------------------


def test_the_reason_keeps_nobodys_personal_data(
    lake: Path, tmp_path: Path, ring: LocalKeyring, log: AuditLog
) -> None:
    catalog = catalog_for(lake)
    reason = "Per ticket from Jane Roe (jane.roe@example.org, SSN 078-05-1120) about Bob, ticket 4711"
    request = make_request(
        catalog, "erasure", "email", SUBJECT.email, request_id="erase-reason", reason=reason
    )
    ctx = DsrContext(catalog, request, keyring=ring, audit=log)
    store = StateStore(tmp_path / "state", ring)
    begun = begin(ctx, state=store)
    handed_on = json.dumps(begun.public(ctx))  # what the register task puts in XCom
    outcomes = [carry_out(ctx, m, begun.resolution.identifiers) for m in begun.resolution.datasets.values()]
    document = complete(ctx, begun.resolution, outcomes, state=store)

    # The reason used to go everywhere as typed, scrubbed only of the subject's own identifiers.
    others = ("Jane", "Roe", "jane.roe@example.org", "078-05-1120", "Bob")
    for stored in (audit_text(log), dumps(document), handed_on):
        assert not [v for v in others if v in stored]
        assert "ticket 4711" in stored  # the reason itself is kept
    assert document["certificate"]["request"]["reason"].startswith("Per ticket from <PERSON>")
    assert verify_certificate(document, log).ok
