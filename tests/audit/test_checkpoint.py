"""Signed checkpoints follow C2SP tlog-checkpoint and signed-note, and reject every forgery."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from airflow_aisec.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    key_id,
    open_checkpoint,
    sign_checkpoint,
)
from airflow_aisec.audit.merkle import MerkleTree

ORIGIN = "example.com/aisec-audit"
ROOT = MerkleTree.from_leaves([b"a", b"b", b"c"]).root()

# The example key and note of the Go reference implementation (golang.org/x/mod/sumdb/note).
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_SIGNATURE_LINE = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def make_key(seed: int = 7) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def make_signer(name: str = ORIGIN, seed: int = 7) -> Signer:
    return Signer(name, make_key(seed))


def spec_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public_key).digest()[:4]


@pytest.fixture
def signer() -> Signer:
    return make_signer()


@pytest.fixture
def checkpoint() -> Checkpoint:
    return Checkpoint(ORIGIN, 3, ROOT)


@pytest.fixture
def note(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_checkpoint(checkpoint, signer)


def test_a_signed_checkpoint_opens_to_the_same_checkpoint(
    checkpoint: Checkpoint, signer: Signer, note: str
) -> None:
    verifier = Verifier.from_key(signer.verifier_key())
    assert open_checkpoint(note, verifier) == checkpoint
    assert verifier.verify(note.encode()) == checkpoint
    assert open_checkpoint(note, verifier, origin=ORIGIN) == checkpoint


def test_the_note_text_has_body_lines_a_blank_line_and_an_em_dash_signature_line(
    signer: Signer, note: str
) -> None:
    lines = note.split("\n")
    assert lines[:3] == [ORIGIN, "3", base64.b64encode(ROOT).decode()]
    assert lines[3] == ""
    assert lines[5] == "" and len(lines) == 6, "the note ends with the signature line's newline"
    prefix = f"\u2014 {ORIGIN} "
    assert lines[4].startswith(prefix)
    blob = base64.b64decode(lines[4][len(prefix) :], validate=True)
    assert len(blob) == 4 + 64
    public_key = make_key().public_key()
    raw_public = public_key.public_bytes_raw()
    assert blob[:4] == spec_key_id(ORIGIN, raw_public) == key_id(ORIGIN, raw_public) == signer.key_id
    body = f"{ORIGIN}\n3\n{base64.b64encode(ROOT).decode()}\n".encode()
    public_key.verify(blob[4:], body)  # raises if the signature is not over exactly the body bytes


def test_signing_reproduces_the_go_reference_note_byte_for_byte() -> None:
    go_signer = Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(GO_SEED))
    assert go_signer.verifier_key() == GO_VKEY
    assert go_signer.sign(GO_TEXT) == GO_SIGNATURE_LINE
    note = GO_TEXT.decode() + "\n" + GO_SIGNATURE_LINE
    assert Verifier.from_key(GO_VKEY).open(note) == GO_TEXT
    with pytest.raises(CheckpointError):
        Verifier.from_key(GO_VKEY).open(note.replace("cryptography", "cryptographY"))


def test_the_verifier_key_string_round_trips(signer: Signer) -> None:
    vkey = signer.verifier_key()
    name, id_hex, encoded = vkey.split("+", 2)
    raw = base64.b64decode(encoded)
    assert name == ORIGIN
    assert raw[0] == 0x01 and len(raw) == 33
    assert bytes.fromhex(id_hex) == spec_key_id(ORIGIN, raw[1:])
    assert re.fullmatch(r"[0-9a-f]{8}", id_hex)
    verifier = Verifier.from_key(vkey)
    assert verifier.verifier_key() == vkey == signer.verifier().verifier_key()
    assert verifier.name == ORIGIN and verifier.key_id == signer.key_id


def test_a_note_checked_with_another_key_is_rejected(note: str) -> None:
    impostor = make_signer(seed=8).verifier()
    with pytest.raises(CheckpointError, match="no signature by the known key"):
        open_checkpoint(note, impostor)
    renamed = make_signer(name="example.com/other", seed=7).verifier()
    with pytest.raises(CheckpointError):
        open_checkpoint(note, renamed)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n3\n", "\n4\n"),
        (ORIGIN, "example.com/aisec-audiT"),
        (base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),
    ],
    ids=["size", "origin", "root"],
)
def test_a_modified_size_origin_or_root_is_rejected(signer: Signer, note: str, old: str, new: str) -> None:
    forged = note.replace(old, new, 1)
    assert forged != note
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(forged, signer.verifier())


def test_a_corrupted_signature_is_rejected(signer: Signer, note: str) -> None:
    body, line = note[: note.index("\u2014")], note[note.index("\u2014") :]
    prefix = f"\u2014 {ORIGIN} "
    blob = bytearray(base64.b64decode(line[len(prefix) :]))
    blob[-1] ^= 0x01
    forged = body + prefix + base64.b64encode(bytes(blob)).decode() + "\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(forged, signer.verifier())
    truncated = body + prefix + base64.b64encode(bytes(blob[:20])).decode() + "\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        open_checkpoint(truncated, signer.verifier())


def test_a_note_signed_only_by_an_unknown_key_name_is_rejected(
    checkpoint: Checkpoint, signer: Signer
) -> None:
    stranger = make_signer(name="witness.example/w1", seed=9)
    note = sign_checkpoint(checkpoint, stranger)
    with pytest.raises(CheckpointError, match="no signature by the known key"):
        open_checkpoint(note, signer.verifier())


def test_signatures_by_unknown_keys_are_ignored_next_to_a_valid_one(
    checkpoint: Checkpoint, signer: Signer, note: str
) -> None:
    witness = make_signer(name="witness.example/w1", seed=9)
    cosigned = note + witness.sign(checkpoint.body())
    assert open_checkpoint(cosigned, signer.verifier()) == checkpoint
    assert open_checkpoint(cosigned, witness.verifier()) == checkpoint


def test_an_unexpected_origin_is_rejected(note: str, signer: Signer) -> None:
    with pytest.raises(CheckpointError, match="expected"):
        open_checkpoint(note, signer.verifier(), origin="example.com/other-log")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n"),
        lambda n: n.replace("\u2014 ", "- "),
        lambda n: n.replace("\u2014 ", "\u2014"),
        lambda n: n[:-1],
        lambda n: n + "\n",
        lambda n: n[: n.index("\u2014")],
        lambda n: n.replace("=\n", "\n"),
        lambda n: n.replace("=\n", "!=\n"),
        lambda n: n.replace("\n3\n", "\n03\n"),
        lambda n: n.replace("\n3\n", "\n+3\n"),
        lambda n: n.replace("\n3\n", "\n\u0663\n"),
        lambda n: n.replace("\n3\n", "\n3\r\n"),
        lambda n: n.replace("\n3\n", "\n3\t\n"),
        lambda n: n.split("\n", 1)[1],
        lambda n: "\n" + n,
        lambda n: n.replace("\n\n", "\n\n\u2014 x\n"),
        lambda n: n.encode()[:-3] + b"\xff\n",
    ],
    ids=[
        "no blank line",
        "hyphen instead of em dash",
        "no space after em dash",
        "no final newline",
        "trailing blank line",
        "no signature lines",
        "bad base64 padding",
        "base64 alphabet",
        "leading zero size",
        "signed size",
        "non-ascii digit",
        "carriage return",
        "tab",
        "missing origin",
        "empty origin",
        "signature line without signature",
        "invalid utf-8",
    ],
)
def test_malformed_notes_raise_checkpoint_error(note: str, signer: Signer, mangle: object) -> None:
    forged = mangle(note)  # type: ignore[operator]
    with pytest.raises(CheckpointError):
        open_checkpoint(forged, signer.verifier())


def test_too_many_signature_lines_are_rejected(note: str, signer: Signer) -> None:
    stranger = make_signer(name="witness.example/w1", seed=9).sign(b"x\n")
    with pytest.raises(CheckpointError, match="at most"):
        open_checkpoint(note + stranger * 100, signer.verifier())


def test_checkpoint_bodies_parse_back_including_extension_lines() -> None:
    plain = Checkpoint(ORIGIN, 0, ROOT)
    assert plain.body() == f"{ORIGIN}\n0\n{base64.b64encode(ROOT).decode()}\n".encode()
    assert Checkpoint.parse(plain.body()) == plain
    extended = Checkpoint(ORIGIN, 2**64 - 1, ROOT, ("ext one", "ext-two"))
    assert extended.body().decode().endswith("\next one\next-two\n")
    assert Checkpoint.parse(extended.body().decode()) == extended


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"origin\n1\n",
        f"origin\n1\n{base64.b64encode(ROOT).decode()}".encode(),
        f"origin\n1\n{base64.b64encode(ROOT[:31]).decode()}\n".encode(),
        f"origin\n{2**64}\n{base64.b64encode(ROOT).decode()}\n".encode(),
        f"origin\n1\n{base64.b64encode(ROOT).decode()}\n\n".encode(),
        f"origin\n-1\n{base64.b64encode(ROOT).decode()}\n".encode(),
        f"origin\n01\n{base64.b64encode(ROOT).decode()}\n".encode(),
        f"origin\n\u0661\n{base64.b64encode(ROOT).decode()}\n".encode(),
        f"origin\n1\n{base64.b64encode(ROOT).decode().rstrip('=')}\n".encode(),
        f"\n1\n{base64.b64encode(ROOT).decode()}\n".encode(),
    ],
    ids=[
        "empty",
        "no root",
        "no final newline",
        "short root",
        "size over 2^64",
        "empty extension",
        "negative",
        "leading zero",
        "non-ascii digit",
        "unpadded root",
        "empty origin",
    ],
)
def test_malformed_checkpoint_bodies_are_rejected_even_when_validly_signed(body: bytes) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.parse(body)
    if body.endswith(b"\n"):
        signer = make_signer()
        note = body.decode() + "\n" + signer.sign(body)
        assert signer.verifier().open(note) == body
        with pytest.raises(CheckpointError):
            open_checkpoint(note, signer.verifier())


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0name", "new\nline"])
def test_invalid_key_names_are_rejected(name: str) -> None:
    with pytest.raises(CheckpointError):
        make_signer(name=name)
    with pytest.raises(CheckpointError):
        Verifier(name, make_key().public_key())


def test_invalid_checkpoints_cannot_be_built() -> None:
    for args in [("", 1, ROOT), ("a\nb", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 1, ROOT[:31])]:
        with pytest.raises(CheckpointError):
            Checkpoint(*args)
    with pytest.raises(CheckpointError):
        Checkpoint(ORIGIN, 1, ROOT, ("",))


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
    ids=[
        "missing key",
        "wrong key id",
        "short key id",
        "wrong name",
        "wrong type",
        "short key",
        "junk",
        "space",
    ],
)
def test_malformed_verifier_keys_are_rejected(vkey: str) -> None:
    assert Verifier.from_key(GO_VKEY).name == "PeterNeumann"
    with pytest.raises(CheckpointError):
        Verifier.from_key(vkey)


def test_only_note_text_ending_in_a_newline_can_be_signed(signer: Signer) -> None:
    with pytest.raises(CheckpointError):
        signer.sign(b"no newline")
    with pytest.raises(CheckpointError):
        signer.sign(b"control \x07 char\n")
    with pytest.raises(TypeError):
        signer.sign("text\n")  # type: ignore[arg-type]


def test_checkpoint_error_is_a_value_error() -> None:
    assert issubclass(CheckpointError, ValueError)


def test_signers_and_verifiers_need_ed25519_keys() -> None:
    with pytest.raises(TypeError):
        Signer(ORIGIN, make_key().public_key())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Verifier(ORIGIN, make_key())  # type: ignore[arg-type]
    assert isinstance(Signer.generate(ORIGIN).verifier(), Verifier)
