"""Fuzzing of everything that parses input a user or an attacker controls: the catalog, dataset files,
envelopes and certificates.

The promise for each: malformed input ends in the product's own error (``AisecError``) or a report of what
is wrong, within a deadline, and no error text (the whole traceback a log would show) quotes a value of the
input. A distinctive marker is planted where a leak would show it: in data values, the encryption context
and the certificate. Catalog problems name the bad value on purpose (a catalog holds no personal data), so
there only the error type and the time are checked.

``AISEC_FUZZ_EXAMPLES`` sets the examples per test (``make fuzz`` runs many more); runs are derandomized, so
a failure in CI reproduces exactly.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.catalog import load_catalog, validate_catalog
from airflow_aisec.exceptions import AisecError, CatalogError, DsrError, EncryptionError

EXAMPLES = int(os.environ.get("AISEC_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=dt.timedelta(seconds=3),  # the slowest honest example takes a few milliseconds
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MARKER = "Qx7SecretMarker9"
EXAMPLE = Path(__file__).resolve().parents[2] / "dags" / "catalog.yaml"
# Bytes that matter to the formats: structure of JSON/YAML/CSV, and the extremes of length fields.
SPECIAL = [*b"\x00\x01\x7f\x80\xff\"',:[]{}#&*!|>\n\r\t\\-9"]


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after a few byte-level edits: flips, overwrites, deletions, insertions, truncation."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        size = len(data)
        # Half of the edits land in the last 512 bytes, where Parquet keeps its footer.
        low = draw(st.sampled_from([0, max(size - 512, 0)]))
        at = draw(st.integers(low, max(size - 1, low)))
        kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "duplicate"]))
        if kind == "flip" and at < size:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and at < size:
            data[at] = draw(st.sampled_from(SPECIAL))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=32) | st.sampled_from([b"\n", b'"', b"\x00" * 8])
            )
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 256))]
    return bytes(data)


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "P3Y", "parquet", "customers.customer_id", "2027-02-30", MARKER]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


@st.composite
def reshaped(draw: st.DrawFn, document: Any) -> Any:
    """``document`` (JSON-like) with a few values replaced by values of any type, or removed."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))[1:]
        if not paths:
            return draw(VALUES)
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(VALUES)
    return doc


def assert_quotes_nothing(error: BaseException, *values: str) -> None:
    """Neither the message nor anything a logged traceback shows (causes included) holds ``values``."""
    shown = "".join(traceback.format_exception(error))
    for value in values or (MARKER,):
        assert value not in shown, f"the error quotes the input: {shown}"


# --- the catalog -------------------------------------------------------------------------------------------


@FUZZ
@given(text=mutated(EXAMPLE.read_bytes()))
def test_a_damaged_catalog_file_is_reported_never_crashes(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(text)
    report = validate_catalog(path, {"lake": str(tmp_path)})
    assert report.ok or report.errors
    try:
        load_catalog(path, {"lake": str(tmp_path)})
    except CatalogError as e:
        assert e.problems and all(p.startswith(f"{path}: ") for p in e.problems)


@FUZZ
@given(document=reshaped(yaml.safe_load(EXAMPLE.read_text())))
def test_a_catalog_with_values_of_any_shape_is_reported_never_crashes(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    report = validate_catalog(path, {"lake": str(tmp_path)})
    assert report.ok or report.errors
    if not report.ok:
        with pytest.raises(CatalogError):
            load_catalog(path, {"lake": str(tmp_path)})


# --- dataset files -----------------------------------------------------------------------------------------

TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "email": [f"{MARKER}@example.com", "b@example.com", None],
        "note": [f"line one\nline two {MARKER}", "", "plain"],
        "born": pa.array([dt.date(1990, 1, 2), None, dt.date(2001, 3, 4)], pa.date32()),
        "amount": pa.array([1.5, None, -2.25], pa.float64()),
    }
)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from airflow_aisec.io.formats import FORMATS
    from airflow_aisec.io.writers import open_writer

    folder = tmp_path_factory.mktemp("formats")
    files = {}
    for fmt in FORMATS:
        path = folder / f"valid.{fmt}"
        writer = open_writer(pafs.LocalFileSystem(), str(path), fmt, TABLE.schema)
        writer.write(TABLE)
        writer.close()
        files[fmt] = path.read_bytes()
    return files


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
@FUZZ
@given(data=st.data())
def test_a_damaged_data_file_fails_with_a_dataset_error_that_quotes_nothing(
    tmp_path: Path, data_files: dict[str, bytes], fmt: str, data: st.DataObject
) -> None:
    from airflow_aisec.io.formats import read_batches

    damaged = data.draw(mutated(data_files[fmt]), label="file")
    path = tmp_path / f"damaged.{fmt}"
    path.write_bytes(damaged)
    for options in ({}, {"schema": TABLE.schema}, {"columns": ["email"]}):
        try:
            for _ in read_batches(pafs.LocalFileSystem(), str(path), fmt, batch_size=2, **options):
                pass
        except AisecError as e:
            assert_quotes_nothing(e)


# --- envelopes ---------------------------------------------------------------------------------------------

PLAINTEXT = (f"id,email\n1,{MARKER}@example.com\n".encode()) * 20
CONTEXT = {"dataset": MARKER, "file": "a.csv"}


@pytest.fixture(scope="module")
def envelope(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, bytes]:
    from airflow_aisec.crypto.envelope import encrypt_stream
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.providers import LocalKeyProvider

    provider = LocalKeyProvider(LocalKeyring(tmp_path_factory.mktemp("keys") / "ring.json"))
    provider.create("fuzz-key")
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(PLAINTEXT), out, provider, "fuzz-key", CONTEXT, chunk_size=256)
    return provider, out.getvalue()


@FUZZ
@given(data=st.data())
def test_a_damaged_envelope_is_refused_and_leaves_no_plaintext(
    tmp_path: Path, envelope: tuple[Any, bytes], data: st.DataObject
) -> None:
    from airflow_aisec.crypto.envelope import decrypt_file, read_header
    from airflow_aisec.io import Location

    provider, original = envelope
    damaged = data.draw(mutated(original), label="envelope")
    source, target = tmp_path / "damaged.csv.aisec", tmp_path / "plain.csv"
    source.write_bytes(damaged)
    target.unlink(missing_ok=True)
    try:
        read_header(io.BytesIO(damaged))
    except EncryptionError as e:
        assert_quotes_nothing(e)
    try:
        decrypt_file(Location.parse(str(source)), Location.parse(str(target)), provider)
    except AisecError as e:
        assert_quotes_nothing(e, MARKER, "Qx7Secret")
        assert not target.exists(), "plaintext was published from a damaged envelope"
        assert [p.name for p in tmp_path.iterdir()] == [source.name], "a temporary file was left behind"
    else:
        assert damaged == original and target.read_bytes() == PLAINTEXT


# --- certificates ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    """An audit log holding a request's entries, and the certificate signed over them."""
    from airflow_aisec.audit import AuditLog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr.certificate import FORMAT, proofs, sign

    folder = tmp_path_factory.mktemp("certificate")
    ring = LocalKeyring(folder / "ring.json")
    with AuditLog.open(f"sqlite:///{folder / 'audit.db'}", keyring=ring) as log:
        log.append("fuzz.other", details={"request_id": "other"})
        indices = [
            log.append("dsr.erasure", dataset=name, details={"request_id": "fuzz-1", "note": MARKER})
            for name in ("customers", "orders", "support_tickets")
        ]
        certificate = {
            "format": FORMAT,
            "request": {"request_id": "fuzz-1", "type": "erasure", "reason": MARKER},
            "status": "completed",
            "datasets": [{"dataset": "customers", "files": [{"uri": f"file:///lake/{MARKER}.parquet"}]}],
            "audit": proofs(log, indices),
        }
        document = sign(certificate, log)
        yield log, document


def _verify(text: str, log: Any) -> None:
    from airflow_aisec.dsr.certificate import load, verify_certificate

    try:
        report = verify_certificate(load(text), log)
    except DsrError as e:
        assert_quotes_nothing(e)
        return
    assert report.ok or report.problems
    assert not any(MARKER in problem for problem in report.problems), report.problems


def test_the_certificate_under_fuzz_verifies_untouched(certified: tuple[Any, dict[str, Any]]) -> None:
    from airflow_aisec.dsr.certificate import dumps, load, verify_certificate

    log, document = certified
    report = verify_certificate(load(dumps(document)), log)
    assert report.ok, report.problems


@FUZZ
@given(data=st.data())
def test_a_damaged_certificate_file_is_refused_or_fails_verification(
    certified: tuple[Any, dict[str, Any]], data: st.DataObject
) -> None:
    from airflow_aisec.dsr.certificate import dumps

    log, document = certified
    damaged = data.draw(mutated(dumps(document).encode()), label="certificate")
    _verify(damaged.decode("utf-8", errors="replace"), log)


@FUZZ
@given(data=st.data())
def test_a_certificate_with_values_of_any_shape_fails_verification_cleanly(
    certified: tuple[Any, dict[str, Any]], data: st.DataObject
) -> None:
    log, document = certified
    reshaped_document = data.draw(reshaped(document), label="certificate")
    _verify(json.dumps(reshaped_document), log)
