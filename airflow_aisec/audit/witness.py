"""The signer's own record of what it signed: the last checkpoint of each log, kept beside the keyring.

Someone with write access to the audit database can delete every checkpoint row and rewrite the entries;
the database then no longer shows that a checkpoint ever existed. The host that signs therefore keeps, next
to its keyring (``aisec_keyring.json`` → ``aisec_keyring.checkpoints.json``), for each log it writes (by
origin): that the log was created with this keyring, and the newest checkpoint it signed with its compact
range. Before signing again, the log checks that the database still holds a checkpoint at least that large
and that the entries extend exactly that tree; otherwise it refuses.

The file holds only signed notes and tree hashes (nothing secret); it is written owner-only and atomically,
under a lock, and only ever grows: a smaller checkpoint never replaces a larger one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_aisec.audit.merkle import CompactRange
from airflow_aisec.exceptions import AuditLogError
from airflow_aisec.files import locked, write_private

FORMAT = "aisec-audit-witness"


@dataclass(frozen=True)
class Witnessed:
    """The newest checkpoint signed for one log: its signed note and the compact range of its tree."""

    size: int
    note: str
    compact_range: CompactRange


class Witness:
    """The record of created logs and signed checkpoints, in one small file beside the keyring."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, keyring: Path) -> Witness:
        """The record kept next to the keyring file ``keyring``."""
        return cls(keyring.with_name(f"{keyring.stem}.checkpoints.json"))

    def __repr__(self) -> str:
        return f"Witness({str(self.path)!r})"

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"format": FORMAT, "logs": {}}
        except OSError as e:
            raise AuditLogError(f"cannot read the checkpoint record {self.path}: {e.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        logs = data.get("logs") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(logs, dict):
            raise AuditLogError(
                f"the checkpoint record {self.path} is corrupt: restore it from a backup of the keyring host"
            )
        return data

    def _log(self, origin: str) -> dict[str, Any]:
        entry = self._load()["logs"].get(origin)
        return entry if isinstance(entry, dict) else {}

    def created(self, origin: str) -> bool:
        """True when the log ``origin`` was created with this keyring."""
        return bool(self._log(origin).get("created"))

    def latest(self, origin: str) -> Witnessed | None:
        """The newest checkpoint recorded for ``origin`` (its signature is checked by the caller)."""
        entry = self._log(origin)
        if "size" not in entry:
            return None
        try:
            size = int(entry["size"])
            tree = CompactRange.from_list(size, list(entry["compact_range"]))
            return Witnessed(size, str(entry["note"]), tree)
        except (KeyError, TypeError, ValueError):
            raise AuditLogError(
                f"the checkpoint record {self.path} is corrupt for log {origin}: restore it from a backup"
            ) from None

    def record_created(self, origin: str) -> None:
        """Note that the log ``origin`` was created here, so its first checkpoint may be signed."""
        with locked(self.path):
            data = self._load()
            data["logs"].setdefault(origin, {})["created"] = True
            write_private(self.path, json.dumps(data, indent=2, sort_keys=True))

    def record(self, origin: str, size: int, note: str, compact_range: list[str]) -> None:
        """Keep the checkpoint of ``size`` unless a larger one is already recorded."""
        with locked(self.path):
            data = self._load()
            entry = data["logs"].setdefault(origin, {})
            if int(entry.get("size", -1)) >= size:
                return
            entry.update(size=size, note=note, compact_range=compact_range)
            write_private(self.path, json.dumps(data, indent=2, sort_keys=True))
