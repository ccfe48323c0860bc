"""Per-subject keys for crypto-shredding: destroy one subject's key and their encrypted data is unreadable.

A subject's key is named ``subject/<pseudonym>``, where the pseudonym is the keyed HMAC under which the audit
log records that subject, so neither the keyring nor the log ever holds a raw subject identifier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.exceptions import KeyringError

SUBJECT_KEY_PREFIX = "subject/"
_PSEUDONYM_PREFIX = "hmac-sha256:"


class _HasPseudonym(Protocol):
    def pseudonym(self, subject_id: str) -> str: ...


def subject_key_name(pseudonymizer: _HasPseudonym | Callable[[str], str], subject_id: str) -> str:
    """``subject/<hex pseudonym>`` of ``subject_id``, from an ``AuditLog`` or a ``Pseudonymizer``."""
    if not subject_id:
        raise KeyringError("an empty subject id has no per-subject key")
    # A Pseudonymizer is called; an AuditLog (not callable) is asked for its pseudonym.
    pseudonym = pseudonymizer(subject_id) if callable(pseudonymizer) else pseudonymizer.pseudonym(subject_id)
    return SUBJECT_KEY_PREFIX + pseudonym.removeprefix(_PSEUDONYM_PREFIX)


def subject_key(keyring: LocalKeyring, name: str, create: bool = True) -> KeyVersion:
    """The active version of the per-subject key ``name``, created on first use when ``create``.

    A shredded key is never re-created here: data of an erased subject must not silently become
    encryptable (and then decryptable) again. Re-creating it is a deliberate ``keyring.rotate(name)``.
    """
    if not name.startswith(SUBJECT_KEY_PREFIX):
        raise KeyringError(
            f"{name!r} is not a per-subject key name (expected {SUBJECT_KEY_PREFIX}<pseudonym>)"
        )
    if name not in keyring.names():
        if not create:
            raise KeyringError(f"no per-subject key {name!r} in keyring {keyring.path}")
        return keyring.create(name, "symmetric", exist_ok=True)
    if all(v.state == "destroyed" for v in keyring.versions(name)):
        raise KeyringError(
            f"per-subject key {name!r} was shredded: data encrypted with it can never be decrypted"
        )
    return keyring.get(name)
