"""A request's resolved identifiers kept sealed between runs and between tasks, bound to the request.

``Binding`` is what a request id stands for (type, identity type, pseudonym); ``StateStore`` seals the
identifiers under a keyring key of the request's own, into a state file while the request is unfinished and
into the token the DAG's tasks hand each other, and destroys that key's versions when a run ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.exceptions import DsrError, KeyringError
from airflow_aisec.files import write_private

if TYPE_CHECKING:
    from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
    from airflow_aisec.dsr.context import DsrContext

REQUEST_KEY_PREFIX = "aisec-dsr-request-"
STATE_FORMAT = "dsr-state:v2"


@dataclasses.dataclass(frozen=True)
class Binding:
    """What a request id stands for: the request type, how the subject is named, and their pseudonym.

    The audit log records it the first time the id is used (``stage: binding``), and every sealed copy of the
    request's identifiers authenticates it, so a request id reused for another subject or another type of
    request is refused, and state or XCom of one request never opens for another.
    """

    request_id: str
    type: str
    identity_type: str
    subject: str  # the pseudonym

    @classmethod
    def of(cls, ctx: DsrContext) -> Binding:
        """The binding of the request of ``ctx``."""
        request = ctx.request
        return cls(request.request_id, request.type, request.identity_type, ctx.subject)

    @property
    def key(self) -> str:
        """The binding entry's idempotency key: one per request id, whatever the type."""
        return f"dsr:{self.request_id}:binding"

    def associated_data(self) -> bytes:
        """What sealed identifiers authenticate (AES-GCM associated data)."""
        parts = ["aisec-dsr-identifiers", self.request_id, self.type, self.identity_type, self.subject]
        return json.dumps(parts, separators=(",", ":")).encode("utf-8")

    def conflict(self, kind: str | None, identity_type: str | None, subject: str | None) -> str | None:
        """Why a request recorded as (``kind``, ``identity_type``, ``subject``) under the same id is not this
        one, or None when it is."""
        if kind != self.type:
            return f"it names an earlier {kind} request"
        if subject != self.subject or identity_type != self.identity_type:
            return "it names an earlier request about another subject (or by another identity type)"
        return None


class StateStore:
    """A request's resolved identifiers, sealed: in one owner-only file while the request is unfinished, and
    in transit between Airflow tasks (XCom).

    Both are sealed (AES-256-GCM, bound to the request's ``Binding``) under a keyring key of the request's
    own, ``aisec-dsr-request-<digest of the request id>``. ``finish`` destroys the versions of that key that
    sealed a run's identifiers, so once a request is done no copy of them (file, XCom in Airflow's database,
    backups of either) opens any more, even with the keyring; a request left unfinished (data held, a
    failure) keeps its identifiers in the file, sealed again under a fresh version.
    """

    def __init__(self, folder: str | Path, keyring: LocalKeyring) -> None:
        self.folder = Path(folder)
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"StateStore({str(self.folder)!r})"

    @staticmethod
    def key_name(request_id: str) -> str:
        """The keyring key of a request (from a digest of its id: never an identity)."""
        return REQUEST_KEY_PREFIX + _id_digest(request_id)

    def _path(self, request_id: str) -> Path:
        return self.folder / (_id_digest(request_id) + ".state")

    def _active(self, request_id: str) -> KeyVersion:
        name = self.key_name(request_id)
        try:
            return self.keyring.ensure(name, "symmetric")
        except KeyringError:
            if name not in self.keyring.names():
                raise
            return self.keyring.rotate(name)  # every version destroyed: the request is run again

    def seal(self, binding: Binding, ids: Identifiers) -> str:
        """``ids`` sealed for ``binding`` under the active version of the request's key (a token)."""
        key = self._active(binding.request_id)
        return f"{STATE_FORMAT}:{key.version}:{ids.seal(key.material, binding.associated_data())}"

    def open(self, binding: Binding, token: str) -> Identifiers:
        """The identifiers of a token ``seal`` made for the same request."""
        rid = binding.request_id
        head, _, rest = token.strip().partition(f"{STATE_FORMAT}:")
        version, _, sealed = rest.partition(":")
        if head or not version.isdigit() or not sealed:
            raise DsrError(
                f"request {rid}: the sealed identifiers are not in the expected format ({STATE_FORMAT}; "
                "an earlier version sealed them bound to the request id alone, which is no longer accepted)"
            )
        try:
            key = self.keyring.get(self.key_name(rid), int(version))
        except KeyringError:
            raise DsrError(
                f"request {rid}: the sealed identifiers no longer open: the request's key was destroyed when "
                "it was done (run the request again to resolve the subject afresh)"
            ) from None
        try:
            return Identifiers.unseal(sealed, key.material, binding.associated_data())
        except DsrError as exc:
            raise DsrError(f"request {rid}: {exc}") from None

    def save(self, binding: Binding, ids: Identifiers) -> None:
        """Keep ``ids`` (sealed) until the request is done."""
        write_private(self._path(binding.request_id), self.seal(binding, ids))

    def load(self, binding: Binding) -> Identifiers | None:
        """The identifiers kept by an earlier, unfinished run of the request."""
        try:
            token = self._path(binding.request_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return self.open(binding, token)

    def finish(self, binding: Binding, ids: Identifiers | None = None, *, keep: bool) -> None:
        """The end of a run: destroy every version of the request's key that sealed identifiers so far
        (file and XCom). With ``keep`` (the request is not done: data held, a failure, a rejection) the
        identifiers (``ids``, else the file's) are first sealed again into the file under a fresh version, for
        the rerun; otherwise the file goes."""
        rid, name = binding.request_id, self.key_name(binding.request_id)
        if keep and ids is None:
            ids = self.load(binding)
        spent = [v.version for v in self._versions(name) if v.state != "destroyed"]
        if keep and ids is not None:
            fresh = self.keyring.rotate(name) if spent else self._active(rid)
            token = f"{STATE_FORMAT}:{fresh.version}:{ids.seal(fresh.material, binding.associated_data())}"
            write_private(self._path(rid), token)
        else:
            self._path(rid).unlink(missing_ok=True)
        for version in spent:
            self.keyring.destroy(name, version)

    def _versions(self, name: str) -> list[KeyVersion]:
        return self.keyring.versions(name) if name in self.keyring.names() else []


def _id_digest(request_id: str) -> str:
    return hashlib.sha256(request_id.encode()).hexdigest()[:32]
