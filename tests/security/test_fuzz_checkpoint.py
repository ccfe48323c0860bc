"""Bounded fuzzing of the signed-note and checkpoint parsers, which read notes from untrusted storage.

Malformed input only ever raises :class:`CheckpointError`, never another exception and never a hang, and no
error message repeats a value of the input (each input carries a distinctive marker that must not show).
``AISEC_FUZZ_EXAMPLES`` sets the number of examples per test (default 200) for longer runs.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    open_checkpoint,
    sign_checkpoint,
)

MARKER = "Qzv7MarkXw"
ORIGIN = "example.com/audit"
SIGNER = Signer(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
VERIFIER = SIGNER.verifier()
VALID = sign_checkpoint(Checkpoint(ORIGIN, 42, bytes(range(32))), SIGNER)

FUZZ = settings(
    max_examples=int(os.environ.get("AISEC_FUZZ_EXAMPLES", "200")),
    deadline=dt.timedelta(seconds=1),
    suppress_health_check=[HealthCheck.too_slow],
)

# Text with the marker somewhere inside: any character, including newlines, em dashes and controls.
_pieces = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
marked = st.builds(lambda a, b: a + MARKER + b, _pieces, _pieces)


def only_own_errors(call: Callable[[], object]) -> None:
    """``call`` succeeds or raises a CheckpointError whose message does not repeat the input."""
    try:
        call()
    except CheckpointError as e:
        assert MARKER not in str(e), str(e)


def _mutate(note: str, line: int, piece: str, mode: int) -> str:
    lines = note.split("\n")
    at = line % len(lines)
    if mode == 0:
        lines[at] = piece
    elif mode == 1:
        lines.insert(at, piece)
    else:
        lines[at] = lines[at] + piece
    return "\n".join(lines)


@FUZZ
@given(text=marked)
def test_arbitrary_text_is_refused_with_the_projects_error(text: str) -> None:
    only_own_errors(lambda: open_checkpoint(text, VERIFIER, origin=ORIGIN))
    only_own_errors(lambda: VERIFIER.verify(text))
    only_own_errors(lambda: Checkpoint.parse(text))


@FUZZ
@given(data=st.binary(max_size=400), at=st.integers(min_value=0, max_value=400))
def test_arbitrary_bytes_are_refused_with_the_projects_error(data: bytes, at: int) -> None:
    raw = data[:at] + MARKER.encode() + data[at:]
    only_own_errors(lambda: open_checkpoint(raw, VERIFIER))
    only_own_errors(lambda: Checkpoint.parse(raw))


@FUZZ
@given(line=st.integers(min_value=0, max_value=10), piece=marked, mode=st.integers(0, 2))
def test_mutated_signed_notes_are_refused(line: int, piece: str, mode: int) -> None:
    note = _mutate(VALID, line, piece, mode)
    only_own_errors(lambda: open_checkpoint(note, VERIFIER, origin=ORIGIN))


@FUZZ
@given(line=st.integers(min_value=0, max_value=4), piece=marked, mode=st.integers(0, 2))
def test_validly_signed_but_malformed_checkpoints_are_refused(line: int, piece: str, mode: int) -> None:
    # The signer's own key signs a mangled body: parsing must still refuse it without echoing it.
    body = _mutate(Checkpoint(ORIGIN, 7, bytes(32)).body().decode(), line, piece, mode)
    try:
        note = body + "\n" + SIGNER.sign(body.encode())
    except CheckpointError:
        return  # not signable at all (no final newline, control characters)
    only_own_errors(lambda: open_checkpoint(note, VERIFIER, origin=ORIGIN))


@FUZZ
@given(origin=marked.filter(lambda o: "\n" not in o))
def test_a_note_for_another_origin_does_not_repeat_it(origin: str) -> None:
    try:
        signer = Signer(origin.replace(" ", "").replace("+", "") or "x", Ed25519PrivateKey.generate())
        note = sign_checkpoint(Checkpoint(signer.name, 1, bytes(32)), signer)
    except CheckpointError:
        return
    only_own_errors(lambda: open_checkpoint(note, signer.verifier(), origin=ORIGIN))


@FUZZ
@given(
    digits=st.text(alphabet="0123456789", min_size=15, max_size=60)
    | st.integers(min_value=19, max_value=6000).map(lambda n: "9" * n)
)
def test_huge_sizes_are_refused_with_the_projects_error(digits: str) -> None:
    body = f"{ORIGIN}\n{digits}\n{VALID.split(chr(10))[2]}\n"
    only_own_errors(lambda: Checkpoint.parse(body))


@FUZZ
@given(key=marked)
def test_malformed_verifier_keys_are_refused(key: str) -> None:
    only_own_errors(lambda: Verifier.from_key(key))
    name, _, rest = VERIFIER.verifier_key().partition("+")
    only_own_errors(lambda: Verifier.from_key(f"{key}+{rest}"))
    only_own_errors(lambda: Verifier.from_key(f"{name}+{key}+{rest.partition('+')[2]}"))


def test_a_huge_note_is_refused_quickly() -> None:
    started = time.monotonic()
    lines = [f"\u2014 {ORIGIN}{MARKER} AAAA" for _ in range(200_000)]
    for note in ("\n" * 500_000, VALID + "\n".join(lines) + "\n", MARKER * 200_000 + "\n\n"):
        only_own_errors(lambda note=note: open_checkpoint(note, VERIFIER))  # type: ignore[misc]
    assert time.monotonic() - started < 5
