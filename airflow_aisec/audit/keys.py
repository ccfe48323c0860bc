"""The keys of an audit log: its origin, checkpoint signer and verifiers, and subject pseudonymizer, with
the checks that a keyring belongs to the log it is opened with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from airflow_aisec.audit.checkpoint import Signer, Verifier
from airflow_aisec.audit.store import Store
from airflow_aisec.audit.witness import Witness
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.exceptions import AuditLogError


def open_keys(
    store: Store, ring: LocalKeyring, signing_key: str, pseudonym_key: str, *, create: bool
) -> tuple[str, Signer, list[Verifier], Pseudonymizer | None]:
    """The log's origin, signer, verifiers and pseudonymizer. A keyring that did not sign an existing log
    is refused before any key is made in it, so a wrong keyring never gains a second signing key."""
    if create:
        origin = store.meta("origin")
        if origin is None:
            proposed = f"airflow-aisec.audit/{uuid.uuid4()}"
            origin = store.set_meta_once("origin", proposed)
            if origin == proposed:
                Witness.beside(ring.path).record_created(origin)
        _check_keyring_signed(store, ring, signing_key, origin)
        ring.ensure(signing_key, "ed25519")
    else:
        origin = store.meta("origin")
        if origin is None:
            raise AuditLogError(f"audit log {store.uri} was never written (it has no origin): no entries")
        if not ring.path.is_file():
            raise AuditLogError(
                f"keyring {ring.path} does not exist: point --keyring, AISEC_KEYRING or [aisec] keyring at "
                f"the keyring that signs audit log {store.uri}"
            )
        if signing_key not in ring.names():
            raise AuditLogError(
                f"keyring {ring.path} has no key {signing_key!r}, so it cannot check audit log {store.uri}: "
                "point --keyring, AISEC_KEYRING or [aisec] keyring at the keyring that signs this log"
            )
    signer = Signer(origin, ring.get(signing_key).signing_key())
    verifiers = [Signer(origin, v.signing_key()).verifier() for v in ring.versions(signing_key) if v.material]
    if create:
        _check_signed_by(store, ring, verifiers)
        pseudonymizer: Pseudonymizer | None = Pseudonymizer(ring.ensure(pseudonym_key, "symmetric").material)
    elif pseudonym_key in ring.names():
        pseudonymizer = Pseudonymizer(ring.get(pseudonym_key).material)
    else:
        pseudonymizer = None
    return origin, signer, verifiers, pseudonymizer


def _mismatch(store: Store, ring: LocalKeyring, found: str) -> AuditLogError:
    return AuditLogError(
        f"keyring {ring.path} and audit log {store.uri} do not belong together: {found}. Point "
        "AISEC_KEYRING, [aisec] keyring or --keyring at the keyring that signed this log, or use a new "
        "audit log ([aisec] audit_log, --log)"
    )


def _check_keyring_signed(store: Store, ring: LocalKeyring, signing_key: str, origin: str) -> None:
    """An existing log needs the keyring's signing key before anything is created in the keyring."""
    if (store.size() or store.checkpoints()) and signing_key not in ring.names():
        raise _mismatch(store, ring, f"the log already holds entries, the keyring has no key {signing_key!r}")


def _check_signed_by(store: Store, ring: LocalKeyring, verifiers: Sequence[Verifier]) -> None:
    """The newest checkpoint of the log must verify with one of the keyring's signing keys."""
    rows = store.checkpoints()
    if not rows:
        return
    for verifier in verifiers:
        try:
            verifier.open(rows[-1].note)
            return
        except ValueError:
            continue
    found = "the newest checkpoint of the log is not signed by the keyring's signing key (or was forged)"
    raise _mismatch(store, ring, found)
