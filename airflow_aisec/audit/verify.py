"""Verification of an audit log from its raw rows, trusting nothing the database says about itself.

Every entry's leaf hash is recomputed from its bytes, every checkpoint's signature is checked against the
signing key, and the root at each checkpoint's size is recomputed and compared with the signed one. A
trusted checkpoint kept elsewhere catches a truncated tail or a rewritten history even when an attacker
also removed or re-signed nothing in the database. A non-empty log without any signed checkpoint fails: its
checkpoints were deleted, or it was never signed, and either way nothing vouches for its entries.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_aisec.audit.checkpoint import Checkpoint, CheckpointError, Verifier
from airflow_aisec.audit.entry import ADDED_KINDS, entry_terms
from airflow_aisec.audit.merkle import CompactRange, TileBuilder, leaf_hash
from airflow_aisec.audit.query import TIME_SKEW
from airflow_aisec.audit.store import Store, StoredCheckpoint


class Failure(enum.IntEnum):
    """What verification found, as the distinct exit code of ``aisec audit verify``."""

    MODIFIED = 10
    DELETED = 11
    REORDERED = 12
    TRUNCATED = 13
    FORKED = 14
    BAD_SIGNATURE = 15
    UNCHECKPOINTED = 16


@dataclass(frozen=True)
class Finding:
    """One problem, naming the entry index (or checkpoint size) where it shows."""

    failure: Failure
    index: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.failure.name.lower()}: {self.message}"


@dataclass
class VerifyReport:
    """The outcome of a verification; ``exit_code`` is 0 or the first finding's code."""

    size: int = 0
    root: bytes = b""
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    @property
    def exit_code(self) -> int:
        """0 when verified, else the code of the earliest problem in the log."""
        if self.ok:
            return 0
        first = min(self.findings, key=lambda f: (f.index if f.index is not None else 1 << 62, f.failure))
        return int(first.failure)

    def add(self, failure: Failure, index: int | None, message: str) -> None:
        """Record a finding."""
        self.findings.append(Finding(failure, index, message))


class _EntryScan:
    """Walks the rows once, checking each against its neighbours and recording roots at checkpoint sizes."""

    def __init__(self, report: VerifyReport, sizes: set[int]) -> None:
        self.report = report
        self.sizes = sizes
        self.roots: dict[int, bytes] = {0: CompactRange().root()} if 0 in sizes else {}
        self.range = CompactRange()
        self.expected = 0
        self.prev: bytes | None = None
        self.tile_builder = TileBuilder()
        self.tiles: dict[int, list[bytes]] = {}  # stored level -> the hashes recomputed for it, in order

    def feed(self, index: int, body: bytes, stored_hash: bytes) -> None:
        if index != self.expected:
            missing = f"{self.expected}" if index == self.expected + 1 else f"{self.expected}-{index - 1}"
            self.report.add(Failure.DELETED, self.expected, f"entry {missing} is missing")
            self.expected = index
            self.prev = None  # the gap is the finding; the next entry's back-link is not a second one
        computed = leaf_hash(body)
        self._check_body(index, body, computed, stored_hash)
        self.range.append_hash(computed)
        for level, _, node in self.tile_builder.feed(computed):
            self.tiles.setdefault(level, []).append(node)
        self.prev = computed
        self.expected = index + 1
        if self.range.size in self.sizes:
            self.roots[self.range.size] = self.range.root()

    def _check_body(self, index: int, body: bytes, computed: bytes, stored_hash: bytes) -> None:
        try:
            entry = json.loads(body)
            claimed, prev = int(entry["index"]), entry.get("prev")
        except (ValueError, KeyError, TypeError):
            self.report.add(Failure.MODIFIED, index, f"entry {index} is not a valid audit entry")
            return
        if computed != stored_hash:
            self.report.add(Failure.MODIFIED, index, f"entry {index} was modified (its hash changed)")
        elif claimed != index:
            self.report.add(
                Failure.REORDERED, index, f"entry {index} holds entry {claimed}: entries were reordered"
            )
        elif (self.prev is not None and prev != self.prev.hex()) or (index == 0 and prev is not None):
            self.report.add(
                Failure.MODIFIED,
                max(index - 1, 0),
                f"entry {index} does not follow entry {index - 1} as written",
            )


def verify_store(
    store: Store, verifiers: Sequence[Verifier], origin: str, trusted: Sequence[str] = ()
) -> VerifyReport:
    """Verify every entry and checkpoint of ``store``; ``trusted`` are signed notes kept elsewhere."""
    report = VerifyReport()
    stored = store.checkpoints()
    signed = [_open(note, verifiers, origin, report, f"checkpoint {row.id}") for row, note in _notes(stored)]
    trusted_cps = [_open(note, verifiers, origin, report, "trusted checkpoint") for note in trusted]
    checkpoints = [cp for cp in signed + trusted_cps if cp is not None]
    scan = _EntryScan(report, {cp.size for cp in checkpoints})
    for entry in store.entries():
        scan.feed(entry.index, entry.body, entry.leaf_hash)
    report.size, report.root, report.checkpoints = scan.expected, scan.range.root(), len(signed)
    _check_rows_match_notes(stored, signed, report)
    _check_roots(signed, scan, report, "checkpoint")
    _check_roots([cp for cp in trusted_cps if cp is not None], scan, report, "trusted checkpoint")
    _check_forks(checkpoints, report)
    _check_tiles(store, scan, report)
    if report.size and not any(cp is not None for cp in signed):
        report.add(
            Failure.UNCHECKPOINTED,
            None,
            f"the log holds {report.size} entries but no signed checkpoint: nothing shows they are the "
            "entries that were written (were the checkpoints deleted?)",
        )
    return report


def verify_terms(store: Store, report: VerifyReport, chunk: int = 50_000) -> None:
    """Compare every entry's stored search terms with those of its bytes (``aisec audit verify --index``).

    The terms only decide which entries a filter shows: a page never shows an entry its terms falsely claim
    (entries are checked against the query from their own bytes), but deleted or changed terms hide an entry
    from a filter, e.g. a subject's lookup. This pass finds that; it reads every term, so it is optional.
    """
    size = report.size
    # A kind added after the log was written is compared once a writer indexed it for every entry: until
    # then nothing reads it (the lineage page reads the whole log instead).
    skipped = {kind for kind in ADDED_KINDS if not store.indexes(kind)}
    times = _TimeOrder(report)
    for start in range(0, size, chunk):
        stored = store.terms(start, start + chunk)
        for entry in store.entries(start, min(start + chunk, size)):
            try:
                data = json.loads(entry.body)
                expected = {t for t in entry_terms(data) if t[0] not in skipped}
            except (ValueError, AttributeError):
                continue  # an entry that is no JSON object is already a finding of its own
            times.feed(entry.index, data.get("time"))
            have = {t for t in stored.get(entry.index, set()) if t[0] not in skipped}
            if have != expected and not _explained(report, entry.index + 1):
                report.add(
                    Failure.MODIFIED,
                    entry.index,
                    f"the search terms of entry {entry.index} differ from the entry: the terms table was "
                    "altered, so filters (a subject's lookup among them) would hide or misplace it",
                )


class _TimeOrder:
    """Finds an entry written more than ``TIME_SKEW`` before an entry ahead of it: the time filter, which
    relies on that bound, could miss it (a writer's clock is wrong)."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        self.latest: tuple[str, int] | None = None
        self.floor = ""

    def feed(self, index: int, time: object) -> None:
        if not isinstance(time, str) or not time:
            return
        if self.latest is not None and time < self.floor:
            self.report.add(
                Failure.REORDERED,
                index,
                f"entry {index} was written at {time}, more than {TIME_SKEW} before entry {self.latest[1]} "
                f"({self.latest[0]}): a time filter may miss it (is a writer's clock wrong?)",
            )
        if self.latest is None or time > self.latest[0]:
            self.latest = (time, index)
            try:
                self.floor = (dt.datetime.fromisoformat(time) - TIME_SKEW).isoformat(timespec="microseconds")
            except ValueError:
                self.floor = ""


def _check_tiles(store: Store, scan: _EntryScan, report: VerifyReport, chunk: int = 65536) -> None:
    """Compare the stored tiles with those recomputed from the entries. Proofs are read from the tiles, so an
    altered tile would make an honest entry's proof fail; tiles not stored (yet) are no finding."""
    for level, computed in sorted(scan.tiles.items()):
        for start in range(0, len(computed), chunk):
            stored = store.tiles(level, start, start + chunk)
            for offset, node in enumerate(stored):
                if node == computed[start + offset]:
                    continue
                first = (start + offset) << level
                last = first + (1 << level) - 1
                if not _explained(report, last + 1):
                    report.add(
                        Failure.MODIFIED,
                        first,
                        f"the stored tree hash of entries {first}-{last} differs from the entries: the tiles "
                        "table was altered (inclusion proofs read from it would not verify)",
                    )
                return


def _notes(rows: list[StoredCheckpoint]) -> list[tuple[StoredCheckpoint, str]]:
    return [(row, row.note) for row in rows]


def _open(
    note: str, verifiers: Sequence[Verifier], origin: str, report: VerifyReport, what: str
) -> Checkpoint | None:
    errors = []
    for verifier in verifiers:
        try:
            checkpoint = verifier.verify(note)
        except CheckpointError as e:
            errors.append(str(e))
            continue
        if checkpoint.origin != origin:
            report.add(Failure.FORKED, None, f"{what} is for another log ({checkpoint.origin!r})")
            return None
        return checkpoint
    report.add(
        Failure.BAD_SIGNATURE, None, f"{what} is not validly signed: {errors[-1] if errors else 'no key'}"
    )
    return None


def _check_rows_match_notes(
    rows: list[StoredCheckpoint], signed: list[Checkpoint | None], report: VerifyReport
) -> None:
    for row, checkpoint in zip(rows, signed, strict=True):
        if checkpoint is not None and (row.size, row.root) != (checkpoint.size, checkpoint.root):
            report.add(Failure.MODIFIED, None, f"checkpoint {row.id} row differs from its signed note")


def _check_roots(
    checkpoints: list[Checkpoint | None], scan: _EntryScan, report: VerifyReport, what: str
) -> None:
    """Compare each signed root with the recomputed one; a stored checkpoint that no longer matches means
    entries were changed after it was signed, a trusted one that does not match means another history."""
    failure = Failure.FORKED if what.startswith("trusted") else Failure.MODIFIED
    matched = 0
    for checkpoint in sorted((c for c in checkpoints if c is not None), key=lambda c: c.size):
        if checkpoint.size > scan.expected:
            report.add(
                Failure.TRUNCATED,
                scan.expected,
                f"a {what} covers {checkpoint.size} entries but the log has {scan.expected}: "
                f"entries from {scan.expected} on were removed",
            )
        elif scan.roots.get(checkpoint.size) == checkpoint.root:
            matched = checkpoint.size
        elif not _explained(report, checkpoint.size):
            report.add(
                failure,
                matched,
                f"entries {matched}-{checkpoint.size - 1} differ from the history the {what} "
                f"of size {checkpoint.size} signed",
            )


def _explained(report: VerifyReport, size: int) -> bool:
    """A root mismatch is expected once an entry below ``size`` is already reported."""
    return any(f.index is not None and f.index < size for f in report.findings)


def _check_forks(checkpoints: list[Checkpoint], report: VerifyReport) -> None:
    roots: dict[int, bytes] = {}
    for checkpoint in checkpoints:
        seen = roots.setdefault(checkpoint.size, checkpoint.root)
        if seen != checkpoint.root:
            report.add(
                Failure.FORKED,
                checkpoint.size - 1,
                f"two different roots are signed for size {checkpoint.size}: the history was forked",
            )
