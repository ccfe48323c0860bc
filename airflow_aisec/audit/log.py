"""``AuditLog``: append entries, sign checkpoints, verify, prove and query.

Usage::

    with AuditLog.open("sqlite:///audit.db") as log:
        index = log.append("pii.mask", dataset="customers", columns=["email"], rows=1000)
        log.checkpoint()
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec import config
from airflow_aisec.audit.checkpoint import Checkpoint, Signer, Verifier, open_checkpoint, sign_checkpoint
from airflow_aisec.audit.entry import Pseudonymizer, canonical_json, check_fields, current_actor, now
from airflow_aisec.audit.merkle import CompactRange, MerkleTree, leaf_hash
from airflow_aisec.audit.store import EntryBuilder, Store, StoredCheckpoint, open_store
from airflow_aisec.audit.verify import VerifyReport, verify_store
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import AuditLogError

log = logging.getLogger(__name__)

SIGNING_KEY = "aisec-audit-signing"
PSEUDONYM_KEY = "aisec-pseudonyms"
DEFAULT_CHECKPOINT_EVERY = 1000
_PSEUDONYM_PREFIX = "hmac-sha256:"


@dataclass(frozen=True)
class Entry:
    """A stored entry, parsed."""

    index: int
    data: dict[str, Any]
    leaf_hash: bytes

    @property
    def action(self) -> str:
        """The entry's action, e.g. ``pii.mask``."""
        return str(self.data.get("action"))


class AuditLog:
    """A tamper-evident, append-only log of every data interaction."""

    def __init__(
        self,
        store: Store,
        origin: str,
        signer: Signer | None,
        verifiers: Sequence[Verifier],
        pseudonymizer: Pseudonymizer | None,
        *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        actor: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.origin = origin
        self._signer = signer
        self.verifiers = list(verifiers)
        self._pseudonymize = pseudonymizer
        self.checkpoint_every = checkpoint_every
        self.actor = dict(actor) if actor is not None else None
        checkpoints = store.checkpoints()
        self._checkpointed = checkpoints[-1].size if checkpoints else 0

    def __repr__(self) -> str:
        return f"AuditLog({self.store.uri!r})"

    @classmethod
    def open(
        cls,
        uri: str | None = None,
        *,
        keyring: LocalKeyring | str | None = None,
        signing_key: str = SIGNING_KEY,
        pseudonym_key: str = PSEUDONYM_KEY,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        actor: Mapping[str, Any] | None = None,
    ) -> AuditLog:
        """Open the log at ``uri`` (default ``[aisec] audit_log``), with keys from the local keyring.

        ``uri`` may also be an Airflow connection id (PostgreSQL or SQLite connection).
        """
        target = uri or config.get_setting("audit_log")
        if "://" not in target:
            from airflow_aisec.hooks.audit import connection_uri

            target = connection_uri(target)
        ring = (
            keyring
            if isinstance(keyring, LocalKeyring)
            else LocalKeyring(config.get_setting("keyring", keyring))
        )
        store = open_store(target)
        try:
            origin = store.set_meta_once("origin", f"airflow-aisec.audit/{uuid.uuid4()}")
            ring.ensure(signing_key, "ed25519")
            signer = Signer(origin, ring.get(signing_key).signing_key())
            verifiers = [
                Signer(origin, v.signing_key()).verifier() for v in ring.versions(signing_key) if v.material
            ]
            pseudonymizer = Pseudonymizer(ring.ensure(pseudonym_key, "symmetric").material)
        except BaseException:
            store.close()
            raise
        return cls(
            store, origin, signer, verifiers, pseudonymizer, checkpoint_every=checkpoint_every, actor=actor
        )

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------

    def pseudonym(self, subject_id: str) -> str:
        """The keyed pseudonym under which ``subject_id`` appears in the log."""
        if subject_id.startswith(_PSEUDONYM_PREFIX):
            return subject_id
        if self._pseudonymize is None:
            raise AuditLogError("this audit log has no pseudonym key, so it cannot record subjects")
        return self._pseudonymize(subject_id)

    def append(self, action: str, *, idempotency_key: str | None = None, **fields: Any) -> int:
        """Append one entry and return its index; a known ``idempotency_key`` returns the earlier index.

        Fields: ``dataset``, ``inputs``, ``outputs`` (lists of ``{"uri", "sha256", "dataset"}``), ``rows``,
        ``columns``, ``outcome`` (success, failure, skipped, intent, noop), ``subject`` (a raw subject
        identifier: it is stored only as its pseudonym), ``details`` and ``actor``.
        """
        return self.append_many([{"action": action, "idempotency_key": idempotency_key, **fields}])[0]

    def append_many(self, records: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append several entries in one transaction (contiguous indices); returns their indices."""
        items = [self._item(dict(record)) for record in records]
        indices = self.store.append(items)
        if (
            self.checkpoint_every
            and indices
            and indices[-1] + 1 - self._checkpointed >= self.checkpoint_every
        ):
            self.checkpoint()
        return indices

    def _item(self, record: dict[str, Any]) -> tuple[str | None, EntryBuilder]:
        key = record.pop("idempotency_key", None)
        action = record.pop("action")
        check_fields(action, {"action": action, **record})
        fields = {k: v for k, v in record.items() if v is not None}
        fields.setdefault("outcome", "success")
        if "subject" in fields:
            fields["subject"] = self.pseudonym(str(fields["subject"]))
        fields["actor"] = fields.get("actor") or self.actor or current_actor()
        fields["action"] = action
        canonical_json(fields)  # reject non-JSON data before taking the appenders' lock

        def build(index: int, prev: bytes | None) -> tuple[bytes, bytes]:
            body = canonical_json(
                {**fields, "index": index, "prev": prev.hex() if prev else None, "time": now()}
            )
            return body, leaf_hash(body)

        return key, build

    def checkpoint(self) -> Checkpoint | None:
        """Sign a checkpoint of the current size (None when nothing was added since the last one).

        It extends the previous checkpoint's compact range with the entries appended since, so a checkpoint
        that is not consistent with the previous one is never signed.
        """
        if self._signer is None:
            raise AuditLogError("this audit log has no signing key")
        row = self.store.add_checkpoint(self._make_checkpoint)
        if row is None:
            return None
        self._checkpointed = row.size
        log.info("audit checkpoint signed: size %d", row.size)
        return Checkpoint(self.origin, row.size, row.root)

    def _make_checkpoint(
        self, latest: StoredCheckpoint | None, size: int
    ) -> tuple[int, bytes, str, str] | None:
        if size == 0 or (latest is not None and latest.size >= size):
            return None
        tree = CompactRange() if latest is None else self._trusted_range(latest)
        prev: bytes | None = None
        for entry in self.store.entries(tree.size, size):
            computed = leaf_hash(entry.body)
            if entry.index != tree.size or computed != entry.leaf_hash:
                raise AuditLogError(f"refusing to sign: entry {tree.size} does not match what was written")
            if prev is not None and json.loads(entry.body).get("prev") != prev.hex():
                raise AuditLogError(f"refusing to sign: entry {entry.index} does not follow its predecessor")
            tree.append_hash(computed)
            prev = computed
        if tree.size != size:
            raise AuditLogError(f"refusing to sign: entries {tree.size}-{size - 1} are missing")
        assert self._signer is not None
        note = sign_checkpoint(Checkpoint(self.origin, size, tree.root()), self._signer)
        return size, tree.root(), note, json.dumps(tree.to_list())

    def _trusted_range(self, latest: StoredCheckpoint) -> CompactRange:
        """The previous checkpoint's compact range, once it matches the root that checkpoint signed."""
        signed = self._open_note(latest.note)
        try:
            tree = CompactRange.from_list(latest.size, json.loads(latest.compact_range))
        except ValueError:  # JSONDecodeError is a ValueError too
            tree = None
        if tree is None or (signed.size, signed.root) != (latest.size, tree.root()):
            raise AuditLogError(
                f"refusing to sign: the previous checkpoint (size {latest.size}) does not match its signature"
            )
        return tree

    def _open_note(self, note: str) -> Checkpoint:
        errors = []
        for verifier in self.verifiers:
            try:
                return open_checkpoint(note, verifier, origin=self.origin)
            except ValueError as e:
                errors.append(str(e))
        raise AuditLogError(f"checkpoint signature does not verify: {errors[-1] if errors else 'no key'}")

    def close(self) -> None:
        """Sign a final checkpoint of anything appended, then release the database."""
        try:
            if self._signer is not None:
                self.checkpoint()
        finally:
            self.store.close()

    # -- reading -------------------------------------------------------------------------------------

    def size(self) -> int:
        """Number of entries."""
        return self.store.size()

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[Entry]:
        """Stored entries in index order (unverified; use ``verify`` to trust them)."""
        for row in self.store.entries(start, end):
            yield Entry(row.index, json.loads(row.body), row.leaf_hash)

    def keyed(self, prefix: str) -> list[tuple[str, int]]:
        """(idempotency key, index) of the entries whose key starts with ``prefix``, oldest first."""
        return self.store.keyed(prefix)

    def latest_checkpoint(self) -> tuple[Checkpoint, str] | None:
        """The newest signed checkpoint and its note, verified."""
        rows = self.store.checkpoints()
        if not rows:
            return None
        note = rows[-1].note
        return self._open_note(note), note

    def verify(self, trusted: Sequence[str] = ()) -> VerifyReport:
        """Recompute every leaf and root and check every checkpoint (and any ``trusted`` signed notes)."""
        return verify_store(self.store, self.verifiers, self.origin, trusted)

    def prove(self, index: int) -> dict[str, Any]:
        """An inclusion proof of entry ``index`` against the latest checkpoint that covers it."""
        latest = self.latest_checkpoint()
        if latest is None or latest[0].size <= index:
            self.checkpoint()
            latest = self.latest_checkpoint()
        if latest is None or index < 0 or latest[0].size <= index:
            raise AuditLogError(f"entry {index} is not in the log")
        checkpoint, note = latest
        tree = MerkleTree.from_leaf_hashes(leaf_hash(e.body) for e in self.store.entries(0, checkpoint.size))
        entry = self.store.entry(index)
        assert entry is not None
        return {
            "index": index,
            "size": checkpoint.size,
            "entry": base64.b64encode(entry.body).decode(),
            "leaf_hash": leaf_hash(entry.body).hex(),
            "proof": [h.hex() for h in tree.inclusion_proof(index, checkpoint.size)],
            "root": checkpoint.root.hex(),
            "checkpoint": note,
        }

    def sign_text(self, text: bytes) -> str:
        """The signature line of ``text`` (a signed-note text ending in a newline) under the signing key."""
        if self._signer is None:
            raise AuditLogError("this audit log has no signing key")
        return self._signer.sign(text)

    def open_text(self, note: str) -> bytes:
        """The text of a signed note once a signature by one of the log's keys verifies; else an error."""
        errors = []
        for verifier in self.verifiers:
            try:
                return verifier.open(note)
            except ValueError as e:
                errors.append(str(e))
        raise AuditLogError(f"the signature does not verify: {errors[-1] if errors else 'no key'}")

    def verifier_key(self) -> str:
        """The public verifier key of the current signing key (C2SP note format), safe to publish."""
        if self._signer is None:
            raise AuditLogError("this audit log has no signing key")
        return self._signer.verifier_key()
