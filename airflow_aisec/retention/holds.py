"""Per-subject legal holds: a small JSON file of pseudonyms whose data retention must not purge.

A hold names a data subject only by the keyed pseudonym the audit log uses (``AuditLog.pseudonym``), never
by the raw identifier, so the file can be read by operators without revealing who is under investigation.
Retention compares the pseudonym of each row's subject with the active holds.

The file is rewritten atomically (temporary file with mode 0600, fsync, rename, fsync of the folder) under
an exclusive lock, so concurrent ``aisec holds add`` calls never lose an update and a crash never leaves a
half-written file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import ConfigError
from airflow_aisec.files import locked, write_private

FORMAT = "aisec-holds"
PSEUDONYM_PREFIX = "hmac-sha256:"


@dataclasses.dataclass(frozen=True)
class Hold:
    """One subject's hold: the pseudonym, why, until when (inclusive; None = until removed), when added."""

    pseudonym: str
    reason: str
    until: dt.date | None = None
    added: str = ""

    def active(self, on: dt.date) -> bool:
        """Whether the hold still blocks deletions on the given day (``until`` is inclusive)."""
        return self.until is None or on <= self.until

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (dates as ISO text)."""
        return {
            "pseudonym": self.pseudonym,
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "added": self.added,
        }


class HoldList:
    """The per-subject holds stored in one JSON file (default ``[aisec] holds``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"HoldList({str(self.path)!r})"

    def add(self, pseudonym: str, reason: str, until: dt.date | None = None) -> Hold:
        """Add (or replace) the hold of ``pseudonym``; returns it."""
        _check_pseudonym(pseudonym)
        if not reason.strip():
            raise ConfigError("a legal hold needs a reason")
        added = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        hold = Hold(pseudonym, reason.strip(), until, added)
        with self._editing() as holds:
            holds[pseudonym] = hold
        return hold

    def remove(self, pseudonym: str) -> bool:
        """Remove the hold of ``pseudonym``; True if there was one."""
        _check_pseudonym(pseudonym)
        with self._editing() as holds:
            return holds.pop(pseudonym, None) is not None

    def list(self) -> list[Hold]:
        """Every stored hold, expired ones included, sorted by pseudonym."""
        return sorted(self._load().values(), key=lambda h: h.pseudonym)

    def active(self, on: dt.date) -> dict[str, Hold]:
        """Pseudonym → hold, for the holds still in force on ``on``."""
        return {h.pseudonym: h for h in self.list() if h.active(on)}

    # -- storage ---------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Hold]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise ConfigError(f"cannot read the holds file {self.path}: {e.strerror}") from None
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError("not a holds file")
            return {p: _hold(p, raw) for p, raw in data["holds"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"{self.path} is not a valid holds file") from None

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Hold]]:
        with locked(self.path):
            holds = self._load()
            yield holds
            body = {
                "format": FORMAT,
                "version": 1,
                "holds": {p: _stored(h) for p, h in sorted(holds.items())},
            }
            write_private(self.path, json.dumps(body, indent=2, sort_keys=True))


def _check_pseudonym(value: str) -> None:
    # Refusing anything else keeps raw subject identifiers out of the file even when a caller forgets.
    if not value.startswith(PSEUDONYM_PREFIX) or len(value) <= len(PSEUDONYM_PREFIX):
        raise ConfigError(
            f"holds store pseudonyms only ({PSEUDONYM_PREFIX}...): pseudonymize the subject id first"
        )


def _hold(pseudonym: str, raw: dict[str, Any]) -> Hold:
    _check_pseudonym(pseudonym)
    until = raw.get("until")
    return Hold(
        pseudonym,
        str(raw["reason"]),
        dt.date.fromisoformat(until) if until else None,
        str(raw.get("added", "")),
    )


def _stored(hold: Hold) -> dict[str, Any]:
    data = hold.as_dict()
    del data["pseudonym"]  # the key of the mapping
    return data
