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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_aisec import config
from airflow_aisec.audit.checkpoint import Checkpoint, Signer, Verifier, open_checkpoint, sign_checkpoint
from airflow_aisec.audit.entry import canonical_json, check_fields, current_actor, now
from airflow_aisec.audit.keys import open_keys
from airflow_aisec.audit.merkle import CompactRange, MerkleTree, MissingTilesError, TiledTree, leaf_hash
from airflow_aisec.audit.query import MAX_LIMIT, EntryPage, EntryQuery, search
from airflow_aisec.audit.store import EntryBuilder, Store, StoredCheckpoint, open_store
from airflow_aisec.audit.verify import VerifyReport, verify_store, verify_terms
from airflow_aisec.audit.witness import Witness, Witnessed
from airflow_aisec.catalog.models import DEFAULT_PSEUDONYM_KEY
from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.crypto.pseudonyms import Pseudonymizer
from airflow_aisec.exceptions import AuditLogError

log = logging.getLogger(__name__)

SIGNING_KEY = "aisec-audit-signing"
PSEUDONYM_KEY = DEFAULT_PSEUDONYM_KEY
"""The pseudonym key used when no catalog is at hand; callers with a catalog pass its
``subjects.pseudonym_key``."""
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
        witness: Witness | None = None,
        trusted_checkpoint: Path | None = None,
        read_only: bool = False,
        adopt: bool = False,
    ) -> None:
        self.store = store
        self.origin = origin
        self._signer = signer
        self.verifiers = list(verifiers)
        self._pseudonymize = pseudonymizer
        self.checkpoint_every = checkpoint_every
        self.actor = dict(actor) if actor is not None else None
        self.witness = witness
        self.trusted_checkpoint = trusted_checkpoint
        self.read_only = read_only
        self._adopt = adopt
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
        create: bool = True,
        adopt: bool = False,
    ) -> AuditLog:
        """Open the log at ``uri`` (default ``[aisec] audit_log``), with keys from the local keyring.

        ``uri`` is a ``sqlite:///`` or ``postgresql://`` URI; an Airflow connection id is resolved to one by
        the adapters (``AuditLogHook``, the ``aisec`` CLI, the listener), never here. With
        ``create=False`` the log is only read: a missing database, keyring or signing key is an
        :class:`AuditLogError` naming it, and nothing is created, written or signed (not even on close).
        ``adopt`` lets this log sign the first checkpoint of entries it finds without any checkpoint, which
        it otherwise refuses unless the log was created with this keyring.
        """
        target = uri or config.get_setting("audit_log")
        if "://" not in target:
            raise AuditLogError(
                f"audit log {target!r} is not a URI (sqlite:///path or postgresql://...): an Airflow "
                "connection id is resolved by AuditLogHook and the aisec command line, not by AuditLog.open"
            )
        ring = (
            keyring
            if isinstance(keyring, LocalKeyring)
            else LocalKeyring(config.get_setting("keyring", keyring))
        )
        store = open_store(target, create=create)
        try:
            opened = open_keys(store, ring, signing_key, pseudonym_key, create=create)
        except BaseException:
            store.close()
            raise
        origin, signer, verifiers, pseudonymizer = opened
        trusted = config.get_setting("trusted_checkpoint")
        return cls(
            store,
            origin,
            signer,
            verifiers,
            pseudonymizer,
            checkpoint_every=checkpoint_every,
            actor=actor,
            witness=Witness.beside(ring.path),
            trusted_checkpoint=Path(trusted) if trusted else None,
            read_only=not create,
            adopt=adopt,
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
        actor = self.actor or current_actor()  # the same for every entry of one call
        items = [self._item(dict(record), actor) for record in records]
        indices = self.store.append(items)
        if (
            self.checkpoint_every
            and indices
            and indices[-1] + 1 - self._checkpointed >= self.checkpoint_every
        ):
            self.checkpoint()
        return indices

    def _item(self, record: dict[str, Any], actor: dict[str, Any]) -> tuple[str | None, EntryBuilder]:
        key = record.pop("idempotency_key", None)
        action = record.pop("action")
        check_fields(action, {"action": action, **record})
        fields = {k: v for k, v in record.items() if v is not None}
        fields.setdefault("outcome", "success")
        if "subject" in fields:
            fields["subject"] = self.pseudonym(str(fields["subject"]))
        fields["actor"] = fields.get("actor") or actor
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

        It signs only a history it has checked itself: the entries must extend the tree of the newest
        checkpoint this keyring signed for the log (its checkpoint record) and of the trusted checkpoint
        file, and the database must still hold a checkpoint at least as large. A log whose checkpoints
        vanished is refused, never re-signed.
        """
        if self._signer is None or self.read_only:
            raise AuditLogError(f"audit log {self.store.uri} is open read-only: it cannot sign a checkpoint")
        row = self.store.add_checkpoint(self._make_checkpoint)
        if row is None:
            return None
        self._checkpointed = row.size
        if self.witness is not None:
            self.witness.record(self.origin, row.size, row.note, json.loads(row.compact_range))
        log.info("audit checkpoint signed: size %d", row.size)
        return Checkpoint(self.origin, row.size, row.root)

    def _make_checkpoint(
        self, latest: StoredCheckpoint | None, size: int
    ) -> tuple[int, bytes, str, str] | None:
        if size == 0 or (latest is not None and latest.size >= size):
            return None
        witnessed = self._witnessed()
        known = self._known_checkpoints(witnessed)
        self._check_not_removed(latest, known, size)
        # The database's newest checkpoint must match its signature even when the record is the start.
        tree = CompactRange() if latest is None else self._trusted_range(latest)
        if latest is not None:
            known.append((self._open_note(latest.note), "the newest checkpoint in the database"))
        if witnessed is not None:
            # Start from this keyring's own record, so that the database's newest checkpoint (and any
            # trusted one beyond the record) is itself checked to extend it, over the entries as they are.
            tree = CompactRange.from_list(witnessed[0].size, witnessed[0].compact_range.to_list())
        expected = [(cp.size, cp.root, source) for cp, source in known if cp.size >= tree.size]
        self._check_roots(tree, expected)
        prev: bytes | None = None
        for entry in self.store.entries(tree.size, size):
            computed = leaf_hash(entry.body)
            if entry.index != tree.size or computed != entry.leaf_hash:
                raise AuditLogError(f"refusing to sign: entry {tree.size} does not match what was written")
            if prev is not None and json.loads(entry.body).get("prev") != prev.hex():
                raise AuditLogError(f"refusing to sign: entry {entry.index} does not follow its predecessor")
            tree.append_hash(computed)
            prev = computed
            self._check_roots(tree, expected)
        if tree.size != size:
            raise AuditLogError(f"refusing to sign: entries {tree.size}-{size - 1} are missing")
        assert self._signer is not None
        note = sign_checkpoint(Checkpoint(self.origin, size, tree.root()), self._signer)
        return size, tree.root(), note, json.dumps(tree.to_list())

    def _check_roots(self, tree: CompactRange, expected: list[tuple[int, bytes, str]]) -> None:
        """Refuse when a known checkpoint of the tree's current size signed another root."""
        for size, root, source in expected:
            if size == tree.size and root != tree.root():
                raise AuditLogError(
                    f"refusing to sign audit log {self.store.uri}: entries before {size} differ from the "
                    f"history of the checkpoint of size {size} in {source}; the database was altered: run "
                    "`aisec audit verify`"
                )

    def _known_checkpoints(
        self, witnessed: tuple[Witnessed, Checkpoint] | None
    ) -> list[tuple[Checkpoint, str]]:
        """Checkpoints of this log known outside its database, each with where it was found."""
        known: list[tuple[Checkpoint, str]] = []
        if witnessed is not None:
            known.append((witnessed[1], f"the checkpoint record {self.witness}"))
        for note in self.trusted_notes():
            try:
                known.append((self._open_note(note), f"the trusted checkpoint {self.trusted_checkpoint}"))
            except AuditLogError:
                continue  # another log's, or not signed by this keyring: `verify` reports it
        return known

    def _witnessed(self) -> tuple[Witnessed, Checkpoint] | None:
        """This keyring's record of the newest checkpoint it signed for the log, and that checkpoint."""
        witnessed = None if self.witness is None else self.witness.latest(self.origin)
        if witnessed is None:
            return None
        checkpoint = self._open_note(witnessed.note)
        tree = witnessed.compact_range
        if (checkpoint.size, checkpoint.root) != (witnessed.size, tree.root()) or tree.size != witnessed.size:
            raise AuditLogError(
                f"the checkpoint record {self.witness} does not match its signed note for audit log "
                f"{self.store.uri}: restore it from a backup of the keyring host"
            )
        return witnessed, checkpoint

    def _check_not_removed(
        self, latest: StoredCheckpoint | None, known: list[tuple[Checkpoint, str]], size: int
    ) -> None:
        """Refuse when checkpoints known outside the database are gone from it, or none ever existed."""
        largest = max(((cp.size, source) for cp, source in known), default=(0, ""))
        if largest[0] > (0 if latest is None else latest.size):
            has = "no signed checkpoint" if latest is None else f"checkpoints up to size {latest.size} only"
            raise AuditLogError(
                f"refusing to sign audit log {self.store.uri}: it holds {has}, but {largest[1]} shows a "
                f"checkpoint of size {largest[0]} was signed; checkpoints were removed from the database. "
                "Run `aisec audit verify` and restore the log from a backup"
            )
        if latest is None and not largest[0] and not self._adopt:
            if self.witness is not None and self.witness.created(self.origin):
                return
            raise AuditLogError(
                f"refusing to sign audit log {self.store.uri}: it holds {size} entries but no signed "
                f"checkpoint, and it was not created with the keyring beside {self.witness}. If you trust "
                "these entries (check them with `aisec audit show`), sign them once with "
                "`aisec audit checkpoint --adopt`"
            )

    def trusted_notes(self) -> list[str]:
        """The signed note of ``[aisec] trusted_checkpoint`` when that file exists and can be read."""
        path = self.trusted_checkpoint
        if path is None:
            return []
        try:
            return [path.read_text(encoding="utf-8")]
        except (OSError, UnicodeDecodeError):
            return []

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
        raise AuditLogError(
            f"a checkpoint of audit log {self.store.uri} does not verify with the keyring's signing key: "
            f"{errors[-1] if errors else 'no key'}"
        )

    def close(self) -> None:
        """Sign a final checkpoint of anything appended (not when read-only), then release the database."""
        try:
            if self._signer is not None and not self.read_only:
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

    def verify(self, trusted: Sequence[str] = (), *, index: bool = False) -> VerifyReport:
        """Recompute every leaf, root and tile and check every checkpoint, any ``trusted`` signed notes, and
        the newest checkpoint this keyring's record says it signed; with ``index``, every entry's search
        terms too (a second pass over the log)."""
        witnessed = self._witnessed()
        notes = [*trusted, witnessed[0].note] if witnessed is not None else list(trusted)
        report = verify_store(self.store, self.verifiers, self.origin, notes)
        if index:
            verify_terms(self.store, report)
        return report

    def prove(self, index: int) -> dict[str, Any]:
        """An inclusion proof of entry ``index`` against the latest checkpoint that covers it."""
        latest = self.latest_checkpoint()
        if (latest is None or latest[0].size <= index) and not self.read_only:
            self.checkpoint()
            latest = self.latest_checkpoint()
        if latest is None or index < 0 or latest[0].size <= index:
            if self.read_only and 0 <= index < self.size():
                raise AuditLogError(
                    f"entry {index} is not covered by a signed checkpoint yet: run `aisec audit checkpoint`"
                )
            raise AuditLogError(f"entry {index} is not in the log")
        checkpoint, note = latest
        entry = self.store.entry(index)
        assert entry is not None
        return {
            "index": index,
            "size": checkpoint.size,
            "entry": base64.b64encode(entry.body).decode(),
            "leaf_hash": leaf_hash(entry.body).hex(),
            "proof": [h.hex() for h in self.inclusion_proof(index, checkpoint.size)],
            "root": checkpoint.root.hex(),
            "checkpoint": note,
        }

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry ``index`` in the tree of the first ``size`` entries, from the stored tiles
        (O(log n) reads); a log written before tiles existed, opened read-only, is read whole instead."""
        try:
            return TiledTree(size, self.store.tiles).inclusion_proof(index)
        except MissingTilesError:
            log.info("audit log %s has no tiles yet (open it for writing once): reading every entry", self)
        hashes = (leaf_hash(e.body) for e in self.store.entries(0, size))
        return MerkleTree.from_leaf_hashes(hashes).inclusion_proof(index)

    def search(self, query: EntryQuery, *, before: int | None = None, limit: int = 50) -> EntryPage:
        """One page of the entries matching ``query``, newest first, below index ``before`` (keyset
        pagination through the search terms: the same cost on any size of log)."""
        found, next_before = search(self.store, query, before=before, limit=limit)
        return EntryPage([Entry(index, data, leaf) for index, data, leaf in found], next_before)

    def newest(self, query: EntryQuery, limit: int) -> list[Entry]:
        """Up to ``limit`` entries matching ``query``, newest first, over as many pages as it takes."""
        found: list[Entry] = []
        before: int | None = None
        while len(found) < limit:
            page = self.search(query, before=before, limit=min(MAX_LIMIT, limit - len(found)))
            found += page.entries
            if page.next_before is None:
                break
            before = page.next_before
        return found

    def sign_text(self, text: bytes) -> str:
        """The signature line of ``text`` (a signed-note text ending in a newline) under the signing key."""
        if self._signer is None or self.read_only:
            raise AuditLogError("this audit log has no signing key")
        return self._signer.sign(text)

    def verifier_key(self) -> str:
        """The public verifier key of the current signing key (C2SP note format), safe to publish."""
        if self._signer is None:
            raise AuditLogError("this audit log has no signing key")
        return self._signer.verifier_key()
