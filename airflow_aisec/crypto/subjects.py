"""Per-subject keys for crypto-shredding: destroy one subject's key and their encrypted data is unreadable.

A subject's key is named ``subject/<pseudonym>``, where the pseudonym is the keyed HMAC under which the audit
log records that subject, so neither a key store nor the log ever holds a raw subject identifier.

Two stores keep these keys, chosen by the catalog key a dataset is encrypted with (``KeySource.subject_keys``
in ``airflow_aisec.crypto.keysource``):

* ``KeyringSubjectKeys``: each key in the local keyring (the embedded default). Shredding erases the key's
  material from the keyring file.
* ``WrappedSubjectKeys``: each key a random 256-bit data key made by the master key's provider (AWS KMS:
  ``GenerateDataKey``) and stored only wrapped, one small file or S3 object per subject under the key's
  ``subject_keys`` location, unwrapped through the provider on use. The encryption context names the purpose
  and the subject's pseudonym, so a wrapped key copied to another subject's name does not unwrap. Shredding
  replaces the file with a tombstone and, on S3, deletes every older version of it.

A shredded key is never re-created: data of an erased subject must not silently become encryptable (and
then decryptable) again.
"""

from __future__ import annotations

import abc
import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.crypto.providers import DATA_KEY_BYTES, KeyProvider
from airflow_aisec.exceptions import AisecError, KeyringError

if TYPE_CHECKING:
    from airflow_aisec.io.storage import Location

SUBJECT_KEY_PREFIX = "subject/"
SUBJECT_KEY_PURPOSE = "aisec-subject-key"
STORE_FORMAT = "aisec-subject-key"
_PSEUDONYM_PREFIX = "hmac-sha256:"
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")  # hex HMAC-SHA256: also all a file name in the store may be


class _HasPseudonym(Protocol):
    def pseudonym(self, subject_id: str) -> str: ...


def subject_key_name(pseudonymizer: _HasPseudonym | Callable[[str], str], subject_id: str) -> str:
    """``subject/<hex pseudonym>`` of ``subject_id``, from an ``AuditLog`` or a ``Pseudonymizer``."""
    if not subject_id:
        raise KeyringError("an empty subject id has no per-subject key")
    # A Pseudonymizer is called; an AuditLog (not callable) is asked for its pseudonym.
    pseudonym = pseudonymizer(subject_id) if callable(pseudonymizer) else pseudonymizer.pseudonym(subject_id)
    return SUBJECT_KEY_PREFIX + pseudonym.removeprefix(_PSEUDONYM_PREFIX)


def _check_name(name: str) -> None:
    if not name.startswith(SUBJECT_KEY_PREFIX):
        raise KeyringError(
            f"{name!r} is not a per-subject key name (expected {SUBJECT_KEY_PREFIX}<pseudonym>)"
        )


def subject_key(keyring: LocalKeyring, name: str, create: bool = True) -> KeyVersion:
    """The active version of the per-subject key ``name``, created on first use when ``create``.

    A shredded key is never re-created here: data of an erased subject must not silently become
    encryptable (and then decryptable) again. Re-creating it is a deliberate ``keyring.rotate(name)``.
    """
    _check_name(name)
    if name not in keyring.names():
        if not create:
            raise KeyringError(f"no per-subject key {name!r} in keyring {keyring.path}")
        return keyring.create(name, "symmetric", exist_ok=True)
    if all(v.state == "destroyed" for v in keyring.versions(name)):
        raise KeyringError(
            f"per-subject key {name!r} was shredded: data encrypted with it can never be decrypted"
        )
    return keyring.get(name)


@dataclass(frozen=True)
class Shred:
    """What shredding one per-subject key did.

    ``changed`` is True when key material was destroyed now, False when it already was, None when the store
    never held the key. ``versions_purged`` counts older S3 versions deleted; ``location`` is where it lived.
    """

    key: str
    provider: str
    location: str
    changed: bool | None
    versions_purged: int = 0

    def audit_details(self) -> dict[str, Any]:
        """The ``key.shred`` audit details (names and places only, never key material)."""
        details: dict[str, Any] = {"key": self.key, "provider": self.provider, "store": self.location}
        if self.versions_purged:
            details["versions_purged"] = self.versions_purged
        return details


class SubjectKeys(abc.ABC):
    """A store of per-subject keys."""

    provider: str = ""

    @abc.abstractmethod
    def key(self, name: str, *, create: bool) -> bytes | None:
        """The 32-byte key ``name``; None if it was shredded (sealing: ``create`` makes a missing one,
        and a shredded one is a ``KeyringError``). Any failure to read the store is an error, never None."""

    @abc.abstractmethod
    def shred(self, name: str) -> Shred:
        """Destroy key ``name`` for good (idempotent)."""

    @abc.abstractmethod
    def where(self) -> str:
        """Where the keys live (for messages and the audit log)."""


class KeyringSubjectKeys(SubjectKeys):
    """Per-subject keys in the local keyring: the embedded default, NOT for production."""

    provider = "local"

    def __init__(self, keyring: LocalKeyring) -> None:
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"KeyringSubjectKeys({self.keyring!r})"

    def where(self) -> str:
        return str(self.keyring.path)

    def key(self, name: str, *, create: bool) -> bytes | None:
        _check_name(name)
        if not create and (
            name not in self.keyring.names()
            or all(v.state == "destroyed" for v in self.keyring.versions(name))
        ):
            return None
        return subject_key(self.keyring, name, create=create).material

    def shred(self, name: str) -> Shred:
        _check_name(name)
        changed = self.keyring.destroy(name) if name in self.keyring.names() else None
        return Shred(name, self.provider, self.where(), changed)


class WrappedSubjectKeys(SubjectKeys):
    """Per-subject keys made and wrapped by ``provider`` under ``key_name``, one file each below ``location``.

    :param provider: the master key's provider (AWS KMS in production).
    :param key_name: the catalog key that wraps them.
    :param location: a folder or ``s3://`` prefix owned by aisec (``<pseudonym>.json`` per subject).
    """

    def __init__(self, provider: KeyProvider, key_name: str, location: Location) -> None:
        self.key_provider = provider
        self.provider = provider.kind
        self.key_name = key_name
        self.location = location

    def __repr__(self) -> str:
        return f"WrappedSubjectKeys({self.provider}:{self.key_name}, {self.location.uri!r})"

    def where(self) -> str:
        return self.location.uri

    def context(self, name: str) -> dict[str, str]:
        """The encryption context of ``name``'s wrapped key: the purpose and the subject's pseudonym."""
        return {"aisec:purpose": SUBJECT_KEY_PURPOSE, "aisec:subject": self._pseudonym(name)}

    def _pseudonym(self, name: str) -> str:
        _check_name(name)
        pseudonym = name.removeprefix(SUBJECT_KEY_PREFIX)
        if not _PSEUDONYM.fullmatch(pseudonym):  # it also names a file: nothing but 64 hex digits
            raise KeyringError("a per-subject key name must end in a 64-digit hex pseudonym")
        return pseudonym

    def _entry(self, name: str) -> Location:
        return self.location.join(self._pseudonym(name) + ".json")

    # -- use -------------------------------------------------------------------------------------------

    def key(self, name: str, *, create: bool) -> bytes | None:
        entry = self._entry(name)
        stored = self._read(entry)
        if stored is None and create:
            created, stored = self._create(name, entry)
            if created is not None:
                return created
        if stored is None:
            raise KeyringError(
                f"no per-subject key {name!r} in {self.where()}, though a value sealed with it was found: "
                "a wrong subject_keys location, or the key was removed outside aisec"
            )
        if stored.get("state") == "shredded":
            if create:
                raise KeyringError(
                    f"per-subject key {name!r} was shredded: data encrypted with it can never be decrypted"
                )
            return None
        return self._unwrap(name, entry, stored)

    def _create(self, name: str, entry: Location) -> tuple[bytes | None, dict[str, Any] | None]:
        """(a new key, None), stored only if no one stored one first; else (None, their stored record)."""
        from airflow_aisec.exceptions import ConcurrentModificationError
        from airflow_aisec.io import put_small_file

        data_key = self.key_provider.generate_data_key(self.key_name, self.context(name))
        record = {
            "format": STORE_FORMAT,
            "version": 1,
            "state": "active",
            "key": name,
            "provider": self.provider,
            "key_name": self.key_name,
            "key_version": data_key.key_version,
            "wrapped_key": base64.b64encode(data_key.wrapped).decode("ascii"),
            "created": _now(),
        }
        try:
            put_small_file(entry, _dumps(record), exclusive=True)
        except ConcurrentModificationError:
            # A concurrent task created it first: every value of a subject must be sealed with one key.
            return None, self._read(entry)
        return data_key.plaintext, None

    def _unwrap(self, name: str, entry: Location, stored: Mapping[str, Any]) -> bytes:
        if stored.get("key") != name or stored.get("key_name") != self.key_name:
            raise KeyringError(
                f"{entry.uri} does not hold per-subject key {name!r} wrapped by {self.key_name!r}"
            )
        try:
            wrapped = base64.b64decode(str(stored.get("wrapped_key")), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"{entry.uri}: the wrapped per-subject key is not base64") from None
        plaintext = self.key_provider.unwrap(self.key_name, wrapped, self.context(name))
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyringError(f"{entry.uri}: the per-subject key has an unexpected length")
        return plaintext

    # -- shredding -------------------------------------------------------------------------------------

    def shred(self, name: str) -> Shred:
        """Replace the wrapped key by a tombstone, then delete every older S3 version of it.

        The stored key is unwrapped first: the provider confirms it is this subject's key under our master
        key, and a provider failure leaves everything as it was (run again later). Idempotent: a tombstone
        is left alone, and older versions still present are deleted again.
        """
        from airflow_aisec.io import put_small_file

        entry = self._entry(name)
        stored = self._read(entry)
        changed: bool | None = None
        if stored is not None and stored.get("state") != "shredded":
            self._unwrap(name, entry, stored)  # the plaintext is dropped at once: only the check matters
            tombstone = {"format": STORE_FORMAT, "version": 1, "state": "shredded", "key": name,
                         "key_name": self.key_name, "shredded": _now()}  # fmt: skip
            put_small_file(entry, _dumps(tombstone))
            changed = True
        elif stored is not None:
            changed = False
        purged = self._purge(entry)
        if purged and changed is None:
            changed = True  # only old versions held it (the current one was deleted outside aisec)
        return Shred(name, self.provider, entry.uri, changed, purged)

    def _purge(self, entry: Location) -> int:
        if not entry.is_s3:
            return 0
        from airflow_aisec.io import purge_versions

        return purge_versions(entry, gone=False)

    # -- storage ---------------------------------------------------------------------------------------

    def _read(self, entry: Location) -> dict[str, Any] | None:
        raw = _read_bytes(entry)
        if raw is None:
            return None
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise KeyringError(f"{entry.uri} is not a per-subject key file (corrupt)") from None
        if not isinstance(record, dict) or record.get("format") != STORE_FORMAT or record.get("version") != 1:
            raise KeyringError(f"{entry.uri} is not a per-subject key file")
        return record


def _read_bytes(location: Location) -> bytes | None:
    """The bytes of a small owned file, or None when it does not exist; other failures are errors."""
    if not location.is_s3:
        try:
            with open(location.path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyringError(f"cannot read {location.uri}: {exc.strerror}") from None
    from botocore.exceptions import BotoCoreError, ClientError

    from airflow_aisec.io.storage import s3_error

    try:
        response = location.s3_client().get_object(Bucket=location.bucket, Key=location.key)
        return bytes(response["Body"].read())
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise _store_error(s3_error(exc, location.uri, "read")) from None
    except BotoCoreError as exc:
        raise _store_error(s3_error(exc, location.uri, "read")) from None


def _store_error(error: AisecError) -> KeyringError:
    return KeyringError(f"per-subject key store: {error}")


def _dumps(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode("ascii")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
