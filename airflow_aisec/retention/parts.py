"""Retention in parts: the files of a dataset to change, split into groups that separate tasks apply.

``split_plan`` turns the files a plan rewrites or deletes into parts, sorted by URI and grouped as the mask
fan-out groups its files (``airflow_aisec.io.groups``: ``max_files_per_task``, ``target_bytes_per_task``,
``max_groups``); a plan within the limits is one part, and a plan with nothing to change still has part 0,
which settles the intents a killed run left open. A dataset under a legal hold gets no part.

Settling open intents (``rewrite.recover``) is shared out by file: each part settles the intents on its own
files (``Part.owns``), and part 0 also those on files in no part of the plan (kept files, files gone since),
so every open intent of the dataset is settled by exactly one task, and no task takes another part's
change in flight for an abandoned one.

Evidence of one listing. Every part carries the listing's ``Terms`` (the rule, its cutoff, ``purge_versions``,
the legal-hold decision and a digest of the per-subject holds) and its *listing id* (``listing_id``: a digest
of the dataset, ``as_of``, those terms and each part's file URIs and SHA-256s), and so does the
``PlanSummary`` the combine reads, with every part's files. A part whose files, re-planned as they are now,
are measured by other terms refuses to run (``Part.check``): the catalog or the holds changed since the
listing. A part's result (``PartResult``) echoes the listing id, its index and count and the digest of its
file set, and carries its files' rows with bad dates as it found them (URIs and counts); ``check_results``
accepts the results of a summary only when they are every part of that listing exactly once, each reporting
only on the files it owns.

Parts, results and summaries travel as plain dicts (``as_dict``/``from_dict``): URIs, digests, counts and the
``as_of`` every task of one run measures from; never data. ``PlanSummary`` carries what the dataset-level
audit entries need (``apply.combine``), so they are the same however the dataset was run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_aisec.exceptions import FanOutError
from airflow_aisec.io.dataset import FileInfo
from airflow_aisec.io.groups import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_GROUPS,
    DEFAULT_TARGET_BYTES,
    group_files,
    part_owns,
)
from airflow_aisec.retention.plan import DatasetPlan
from airflow_aisec.rewrite import FileChange

Files = Mapping[str, str | None]
"""A part's files as listed: URI → SHA-256 (None when the plan has no digest of it)."""

_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def file_set_digest(files: Files) -> str:
    """The digest of a part's file set: every URI with its listed SHA-256, in URI order."""
    return _digest(sorted([uri, digest] for uri, digest in files.items()))


@dataclasses.dataclass(frozen=True)
class Terms:
    """What a listing measured a dataset's files by, and each of its parts must measure them by too: the rule
    (``column``, ``keep_for``), its ``cutoff``, ``purge_versions``, whether a legal hold was in force
    (``held``) and the per-subject holds (``holds``: a digest of the held pseudonyms)."""

    column: str
    keep_for: str
    cutoff: dt.datetime
    purge_versions: bool = False
    held: bool = False
    holds: str = ""

    @classmethod
    def of(cls, plan: DatasetPlan) -> Terms:
        """The terms ``plan`` was made under."""
        return cls(
            plan.column, plan.keep_for, plan.cutoff, plan.purge_versions, plan.legal_hold is not None,
            _digest(sorted(plan.held_subjects)),
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (a digest of the held pseudonyms, not the pseudonyms)."""
        return {**dataclasses.asdict(self), "cutoff": self.cutoff.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Terms:
        """The inverse of ``as_dict``."""
        return cls(
            str(data["column"]), str(data["keep_for"]), dt.datetime.fromisoformat(str(data["cutoff"])),
            bool(data["purge_versions"]), bool(data["held"]), str(data["holds"]),
        )  # fmt: skip


def listing_id(dataset: str, as_of: dt.datetime, terms: Terms, parts: Sequence[Files]) -> str:
    """The id of one listing of ``dataset``: its ``as_of``, terms and each part's file set, in part order."""
    return _digest({"dataset": dataset, "as_of": as_of.isoformat(), "terms": terms.as_dict(),
                    "parts": [file_set_digest(files) for files in parts]})  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Part:
    """Part ``index`` of ``count`` of one dataset's retention: its files as listed (URI → SHA-256), and for
    part 0 the URIs of the other parts' files (``others``), so it can tell which files are in no part; the
    listing's ``terms`` and ``listing`` id (a part without them is refused)."""

    dataset: str
    index: int
    count: int
    as_of: dt.datetime
    files: Files = dataclasses.field(default_factory=dict)
    others: frozenset[str] = frozenset()
    terms: Terms | None = None
    listing: str = ""

    @property
    def label(self) -> str:
        """``dataset <name> part <index>``, for messages."""
        return f"dataset {self.dataset} part {self.index}"

    def owns(self, uri: str) -> bool:
        """Whether this part settles an open intent on ``uri``: its own files, and for part 0 every file
        in no part of the plan."""
        return part_owns(uri, self.index, self.files, self.others)

    def check(self, plan: DatasetPlan) -> None:
        """``FanOutError`` unless ``plan`` (this part's files planned again) is of this part's dataset and
        measures them as the listing did (same ``as_of`` and ``Terms``)."""
        if plan.dataset != self.dataset:
            raise FanOutError(f"{self.label} is not part of the plan of dataset {plan.dataset}")
        if self.terms is None or not self.listing:
            raise FanOutError(f"{self.label} carries no listing id or terms: it is not a listing's part")
        if plan.as_of != self.as_of or Terms.of(plan) != self.terms:
            raise FanOutError(
                f"{self.label}: the catalog or the holds changed since the listing: rerun the step "
                "(nothing of this part was changed or settled)"
            )

    def as_dict(self) -> dict[str, Any]:
        """The dict a mapped task gets (JSON-friendly)."""
        return {
            "dataset": self.dataset,
            "part": self.index,
            "parts": self.count,
            "listing": self.listing,
            "as_of": self.as_of.isoformat(),
            "terms": self.terms.as_dict() if self.terms is not None else None,
            "files": [{"uri": uri, "sha256": digest} for uri, digest in self.files.items()],
            "others": sorted(self.others),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Part:
        """The inverse of ``as_dict``; ``FanOutError`` for anything else."""
        try:
            files = {str(f["uri"]): (str(f["sha256"]) if f.get("sha256") else None) for f in data["files"]}
            return cls(
                str(data["dataset"]), int(data["part"]), int(data["parts"]),
                dt.datetime.fromisoformat(str(data["as_of"])), files,
                frozenset(str(uri) for uri in data.get("others") or ()), Terms.from_dict(data["terms"]),
                str(data["listing"]),
            )  # fmt: skip
        except _MALFORMED as exc:
            raise FanOutError(
                "a retention part is a dict of dataset, part, parts, listing, as_of, terms and files (uri, "
                f"sha256), as the listing gives ({type(exc).__name__})"
            ) from exc


def split_plan(
    plan: DatasetPlan,
    *,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
) -> list[Part]:
    """The parts of ``plan`` (see the module docstring): none under a legal hold, else at least part 0."""
    if plan.legal_hold is not None:
        return []
    changed = sorted((f for f in plan.files if f.action != "keep"), key=lambda f: f.uri)
    by_uri = {f.uri: f for f in changed}
    # Grouping reads only each file's size; the listing's own time stands in for the modification time.
    infos = [FileInfo(f.location, f.size, f.etag or "", plan.as_of) for f in changed]
    limits = {"max_files_per_task": max_files_per_task, "target_bytes_per_task": target_bytes_per_task,
              "max_groups": max_groups}  # fmt: skip
    groups = group_files(infos, **limits) or [[]]
    parts = [{i.uri: by_uri[i.uri].sha256_before for i in group} for group in groups]
    others = frozenset(uri for files in parts[1:] for uri in files)
    terms = Terms.of(plan)
    listing = listing_id(plan.dataset, plan.as_of, terms, parts)
    make = functools.partial(
        Part, plan.dataset, count=len(parts), as_of=plan.as_of, terms=terms, listing=listing
    )
    return [
        make(index=0, files=parts[0], others=others),
        *(make(index=i, files=f) for i, f in enumerate(parts) if i),
    ]


def in_listing_order(bad_dates: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """Files with bad dates (URI, count) in the order the dataset's listing gives them (by path: a local
    file's URI unquoted), so the bad-dates entry and its key do not depend on how the dataset was run."""
    return tuple(
        sorted(bad_dates, key=lambda b: urllib.parse.unquote(b[0]) if b[0].startswith("file:") else b[0])
    )


def _bad_dates(data: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    return in_listing_order((str(b["uri"]), int(b["bad_dates"])) for b in data.get("bad_dates") or ())


def _bad_dates_dicts(bad_dates: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"uri": uri, "bad_dates": count} for uri, count in bad_dates]


@dataclasses.dataclass(frozen=True)
class PlanSummary:
    """What the dataset-level entries of a plan need, without its rows: its terms, file count, the legal hold
    in force, the files with bad dates (URI and count, in listing order), and the listing: its id and each
    part's files (``parts``; none under a legal hold)."""

    dataset: str
    as_of: dt.datetime
    terms: Terms
    files: int
    listing: str
    parts: tuple[Files, ...] = ()
    legal_hold: Mapping[str, str] | None = None
    bad_dates: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, plan: DatasetPlan, parts: Sequence[Part]) -> PlanSummary:
        """The summary of ``plan`` split into ``parts`` (``split_plan``); ``FanOutError`` for parts of
        another plan or split."""
        terms, files = Terms.of(plan), tuple(dict(p.files) for p in parts)
        listing = listing_id(plan.dataset, plan.as_of, terms, files)
        if [(p.dataset, p.index, p.count, p.listing) for p in parts] != [
            (plan.dataset, i, len(parts), listing) for i in range(len(parts))
        ]:
            raise FanOutError(f"dataset {plan.dataset}: the parts given are not the split of its plan")
        hold = plan.legal_hold
        return cls(
            plan.dataset, plan.as_of, terms, len(plan.files), listing, files,
            {"reason": hold.reason, "until": hold.until.isoformat()} if hold is not None else None,
            in_listing_order((f.uri, f.bad_dates) for f in plan.files if f.bad_dates),
        )  # fmt: skip

    @property
    def column(self) -> str:
        """The retention column."""
        return self.terms.column

    @property
    def keep_for(self) -> str:
        """How long rows may be kept (ISO 8601 duration)."""
        return self.terms.keep_for

    @property
    def cutoff(self) -> dt.datetime:
        """Rows dated before this have expired."""
        return self.terms.cutoff

    @property
    def count(self) -> int:
        """How many parts the listing gave out."""
        return len(self.parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (URIs, digests and counts, no values)."""
        return {
            "dataset": self.dataset,
            "as_of": self.as_of.isoformat(),
            "terms": self.terms.as_dict(),
            "files": self.files,
            "listing": self.listing,
            "parts": [[{"uri": uri, "sha256": digest} for uri, digest in p.items()] for p in self.parts],
            "legal_hold": dict(self.legal_hold) if self.legal_hold is not None else None,
            "bad_dates": _bad_dates_dicts(self.bad_dates),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanSummary:
        """The inverse of ``as_dict``; ``FanOutError`` for anything else, or a summary whose listing id is
        not the one of its own content."""
        try:
            hold = data.get("legal_hold")
            summary = cls(
                str(data["dataset"]), dt.datetime.fromisoformat(str(data["as_of"])),
                Terms.from_dict(data["terms"]), int(data["files"]), str(data["listing"]),
                tuple({str(f["uri"]): (str(f["sha256"]) if f.get("sha256") else None) for f in p}
                      for p in data["parts"]),
                {str(k): str(v) for k, v in hold.items()} if hold else None, _bad_dates(data),
            )  # fmt: skip
        except _MALFORMED as exc:
            raise FanOutError(
                f"a retention plan summary is a dict as the listing gives ({type(exc).__name__})"
            ) from exc
        if listing_id(summary.dataset, summary.as_of, summary.terms, summary.parts) != summary.listing:
            raise FanOutError(f"dataset {summary.dataset}: the plan summary does not match its listing id")
        return summary

    @property
    def bad_rows(self) -> int:
        """Rows kept because their retention value is missing or unparseable."""
        return sum(count for _, count in self.bad_dates)


@dataclasses.dataclass(frozen=True)
class PartResult:
    """What one part did: the listing id, index and count it echoes, the digest of its file set
    (``fileset``), its file changes (recovered ones first) and its files' rows with bad dates as its own
    plan found them (URI → count, no values)."""

    dataset: str
    index: int
    count: int
    listing: str
    fileset: str
    changes: tuple[FileChange, ...] = ()
    bad_dates: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, part: Part, plan: DatasetPlan, changes: Sequence[FileChange]) -> PartResult:
        """The result of ``part``, planned as ``plan``, having done ``changes``."""
        bad = in_listing_order(
            (f.uri, f.bad_dates) for f in plan.files if f.bad_dates and f.uri in part.files
        )
        return cls(
            part.dataset, part.index, part.count, part.listing, file_set_digest(part.files), tuple(changes),
            bad,
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the mapped task's return value)."""
        return {
            "dataset": self.dataset,
            "part": self.index,
            "parts": self.count,
            "listing": self.listing,
            "fileset": self.fileset,
            "changes": [c.as_dict() for c in self.changes],
            "bad_dates": _bad_dates_dicts(self.bad_dates),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartResult:
        """The inverse of ``as_dict``; ``FanOutError`` for anything else."""
        try:
            return cls(
                str(data["dataset"]), int(data["part"]), int(data["parts"]), str(data["listing"]),
                str(data["fileset"]), tuple(FileChange.from_dict(c) for c in data["changes"]),
                _bad_dates(data),
            )  # fmt: skip
        except _MALFORMED as exc:
            raise FanOutError(
                "a retention part's result is a dict of dataset, part, parts, listing, fileset, changes and "
                f"bad_dates, as the part task returns ({type(exc).__name__})"
            ) from exc


def check_results(summary: PlanSummary, results: Sequence[PartResult]) -> list[PartResult]:
    """``results`` in part order, once they are every part of ``summary``'s listing exactly once (same
    listing id and count, each its own file set) and each reports changes and bad dates only on files it
    owns; else ``FanOutError`` naming the dataset and the part."""
    name, count = summary.dataset, summary.count
    for result in results:
        label = f"dataset {name} part {result.index}"
        if result.dataset != name or result.listing != summary.listing or result.count != count:
            raise FanOutError(f"{label} comes from another listing (or another split); rerun the step")
    indexes = sorted(r.index for r in results)
    if indexes != list(range(count)):
        got = f"parts {indexes}" if indexes else "no part"
        raise FanOutError(
            f"dataset {name}: {got} of {count}: not every part of the listing exactly once; rerun the step"
        )
    ordered = sorted(results, key=lambda r: r.index)
    for result in ordered:
        _check_own_files(summary, result)
    return ordered


def _check_own_files(summary: PlanSummary, result: PartResult) -> None:
    """``FanOutError`` unless ``result`` was made on the file set the listing gave its part and names no
    other part's file (a recovered change may be on a file in no part, for part 0)."""
    label, files = f"dataset {summary.dataset} part {result.index}", summary.parts[result.index]
    if result.fileset != file_set_digest(files):
        raise FanOutError(f"{label} reports on another file set than the listing gave it; rerun the step")
    others = frozenset(uri for i, p in enumerate(summary.parts) if i != result.index for uri in p)
    named = [*((c.uri, c.recovered) for c in result.changes), *((uri, False) for uri, _ in result.bad_dates)]
    for uri, recovered in named:
        if not (uri in files or (recovered and part_owns(uri, result.index, files, others))):
            raise FanOutError(f"{label} reports on {uri}, a file it does not own; rerun the step")
