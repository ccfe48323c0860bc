"""A dataset's share of a request split into parts that separate tasks carry out, and their outcomes merged.

The files of a dataset that hold or mention the subject (the registered ``DatasetMatch.files``), sorted by
URI, are grouped by the fan-out's own rule (``airflow_aisec.io.groups.group_files``: at most
``max_files_per_task`` files or ``target_bytes_per_task`` bytes a part, at most ``max_groups`` parts). A
dataset within the limits is one part, carried out exactly as an unsplit dataset. The *plan*
(``plan_parts``) names the files of each part of the datasets split in two or more; it is made once, when
the request is registered, and every task reads it from there, so all agree on who does what.

A ``Part`` owns its own files; part 0 also owns every file of the dataset in no part (files that did not
hold the subject when it was registered: those a whole-request rerun finds changed by a killed run, and new
ones). A part rescans, changes and settles the open intents (``rewrite.recover``) of the files it owns only,
so two parts never touch, nor settle, the same file. Its summary entry is keyed with its part
(``part-2-of-3``); a dataset of one part keeps the key it always had.

``merge_outcomes`` turns the parts' outcomes into one ``DatasetOutcome`` per dataset before verification,
shredding and the certificate: failed if a part failed or is missing (a missing part counts as failed, like a
missing dataset), else held if a part is held, changed if a part changed. Each part decides on the dataset's
hold when it runs (the catalog, the holds and the date as that task sees them), so a hold that came into
force, or ended, between two parts leaves some parts changed and others held: the dataset is then failed, its
error naming the parts of each, and nothing is reported as done that was not. Rows are counted per what
happened to them: ``rows_affected`` the rows the parts changed (or, for a dataset held whole, the rows held),
``rows_held`` the rows the parts held; files and mentions summed. The merged outcome keeps each part's own
(``part_summary``) in ``part_outcomes``, which the certificate lists.

Access requests are not split: the export package holds one pair of files per dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.dsr.context import DatasetOutcome
from airflow_aisec.dsr.resolve import DatasetMatch
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import FileInfo
from airflow_aisec.io.groups import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_GROUPS,
    DEFAULT_TARGET_BYTES,
    group_files,
    part_owns,
)

Plan = dict[str, list[list[str]]]
"""Dataset → the file URIs of each of its parts, for the datasets split in two parts or more."""

# The order in which one part's status prevails over another's in the dataset's merged outcome.
_PRECEDENCE = ("failed", "held", "changed", "dry_run", "exported", "no_data")


@dataclasses.dataclass(frozen=True)
class PartLimits:
    """How large a part may be (None: no limit); the fan-out's defaults."""

    max_files_per_task: int | None = DEFAULT_MAX_FILES
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES
    max_groups: int | None = DEFAULT_MAX_GROUPS


@dataclasses.dataclass(frozen=True)
class Part:
    """Part ``index`` of ``count`` of a dataset: ``files`` its own, ``others`` those of the other parts."""

    dataset: str
    index: int = 0
    count: int = 1
    files: frozenset[str] = frozenset()
    others: frozenset[str] = frozenset()

    @property
    def whole(self) -> bool:
        """Whether the dataset is one part (carried out as an unsplit dataset)."""
        return self.count == 1

    @property
    def label(self) -> str:
        """``customers 2/3``, or ``customers`` for a dataset of one part."""
        return self.dataset if self.whole else f"{self.dataset} {self.index + 1}/{self.count}"

    @property
    def key(self) -> tuple[str, ...]:
        """What tells this part's entries apart from the other parts' (nothing for a single part)."""
        return () if self.whole else (f"part-{self.index + 1}-of-{self.count}",)

    def owns(self, uri: str) -> bool:
        """Whether this part carries the request out on ``uri`` (and settles its open intents)."""
        return part_owns(uri, self.index, self.files, self.others)


def split_match(
    match: DatasetMatch, listed: Sequence[FileInfo], limits: PartLimits | None = None
) -> list[list[str]]:
    """The URIs of ``match.files`` in parts: sorted by URI, grouped within ``limits`` (sizes from ``listed``,
    the dataset's files as the resolution listed them). At least one part, possibly empty."""
    limits = limits or PartLimits()
    sizes = {info.uri: info for info in listed}
    missing = sorted({f.uri for f in match.files} - set(sizes))
    if missing:
        raise DsrError(f"dataset {match.dataset}: {missing[0]} was not in the dataset's listing; run again")
    files = [sizes[uri] for uri in sorted({f.uri for f in match.files})]
    groups = group_files(
        files, max_files_per_task=limits.max_files_per_task,
        target_bytes_per_task=limits.target_bytes_per_task, max_groups=limits.max_groups,
    )  # fmt: skip
    return [[info.uri for info in group] for group in groups] or [[]]


def plan_parts(
    matches: Mapping[str, DatasetMatch],
    listed: Mapping[str, Sequence[FileInfo]],
    limits: PartLimits | None = None,
) -> Plan:
    """The plan of a registered resolution: the parts of each dataset that the limits split in two or more."""
    plan: Plan = {}
    for name, match in matches.items():
        parts = split_match(match, listed.get(name, ()), limits) if len(match.files) > 1 else [[]]
        if len(parts) > 1:
            plan[name] = parts
    return plan


def part_count(plan: Mapping[str, Sequence[Sequence[str]]], dataset: str) -> int:
    """How many parts ``dataset`` has in ``plan``."""
    return max(1, len(plan.get(dataset) or ()))


def mapped_parts(
    datasets: Sequence[str], plan: Mapping[str, Sequence[Sequence[str]]]
) -> list[dict[str, Any]]:
    """One ``{"dataset", "part", "parts"}`` per part of each dataset, in order: what the DAG maps over."""
    return [
        {"dataset": name, "part": index, "parts": part_count(plan, name)}
        for name in datasets
        for index in range(part_count(plan, name))
    ]


def part_of(
    plan: Mapping[str, Sequence[Sequence[str]]], dataset: str, index: int = 0, count: int = 1
) -> Part:
    """Part ``index`` of ``count`` of ``dataset`` in ``plan``; ``DsrError`` when the plan has another count
    (the task belongs to another registration of the request)."""
    parts = [list(p) for p in plan.get(dataset) or ()]
    if part_count(plan, dataset) != count or not 0 <= index < count:
        raise DsrError(
            f"dataset {dataset}: part {index + 1}/{count} is not a part of the request's registration, which "
            f"splits it in {part_count(plan, dataset)}; run the request again"
        )
    if count == 1:
        return Part(dataset)
    others = frozenset(uri for i, p in enumerate(parts) if i != index for uri in p)
    return Part(dataset, index, count, frozenset(parts[index]), others)


def merge_outcomes(
    datasets: Sequence[str],
    outcomes: Sequence[DatasetOutcome],
    plan: Mapping[str, Sequence[Sequence[str]]] | None = None,
) -> list[DatasetOutcome]:
    """One outcome per dataset: those of ``datasets`` without any (their tasks never ran) and those missing a
    part of the ``plan`` are failed; datasets in the order of their first outcome, then the missing."""
    plan = plan or {}
    grouped: dict[str, list[DatasetOutcome]] = {}
    for outcome in outcomes:
        grouped.setdefault(outcome.dataset, []).append(outcome)
    merged = [_merged(name, found, part_count(plan, name)) for name, found in grouped.items()]
    missing = [name for name in datasets if name not in grouped]
    return [*merged, *(DatasetOutcome(name, "-", "failed", error="not processed") for name in missing)]


def _merged(name: str, found: Sequence[DatasetOutcome], count: int) -> DatasetOutcome:
    found = sorted(found, key=lambda o: o.part)
    if count == 1 and len(found) == 1 and found[0].parts == 1:
        return found[0]  # one part: the dataset's outcome as it always was
    errors = [o.error for o in found if o.error]
    status = min((o.status for o in found), key=_rank)
    wrong = [why for why in (_unplanned(found, count), _hold_changed(found)) if why]
    if wrong:
        status = "failed"
        errors += [f"dataset {name}: {why}" for why in wrong]
    held_whole = status == "held"  # else rows_affected counts only the rows changed, never the rows held
    missing = [
        DatasetOutcome(name, found[0].strategy, "failed", error="not processed", part=i, parts=count)
        for i in range(count)
        if i not in {o.part for o in found}
    ]
    return DatasetOutcome(
        name, found[0].strategy, status,
        rows_affected=sum(o.rows_affected for o in found if held_whole or o.status != "held"),
        mentions_masked=sum(o.mentions_masked for o in found if held_whole or o.status != "held"),
        files=[f for o in found for f in o.files],
        legal_hold=next((o.legal_hold for o in found if o.legal_hold), None),
        error="; ".join(errors) or None, export=found[0].export, parts=count,
        rows_held=sum(o.rows_affected for o in found if o.status == "held"),
        part_outcomes=[part_summary(o) for o in sorted([*found, *missing], key=lambda o: o.part)],
    )  # fmt: skip


def _unplanned(found: Sequence[DatasetOutcome], count: int) -> str | None:
    """What makes ``found`` not the outcomes of the ``count`` parts of the registration, if anything."""
    indices = [o.part for o in found]
    claimed = sorted({o.parts for o in found} - {count})
    missing = [f"{i + 1}/{count}" for i in range(count) if i not in indices]
    if claimed:
        return f"outcomes of {claimed[0]} parts, where the registration has {count}"
    if missing:
        return f"part(s) {', '.join(missing)} not processed"
    if len(indices) != count:
        return "a part reported more than once"
    return None


def _hold_changed(found: Sequence[DatasetOutcome]) -> str | None:
    """Why the parts disagree on the dataset's hold, if they do: some held their rows while others, which had
    rows to change, found no hold and changed them (or, in a dry run, would; or failed changing them)."""
    held = [o for o in found if o.status == "held"]
    # A part with rows or mentions to change decided on the hold; one with none (no_data, or only settling
    # a killed run's change) never asked.
    acted = [o for o in found if o.status != "held" and (o.rows_affected or o.mentions_masked)]
    if not held or not acted:
        return None
    statuses = sorted({o.status for o in acted}, key=_rank)
    groups = [(status, [o for o in acted if o.status == status]) for status in statuses] + [("held", held)]
    told = "; ".join(
        f"{status}: part(s) {_labels(group)}, {sum(o.rows_affected for o in group)} row(s)"
        for status, group in groups
    )
    return (
        f"the dataset's hold changed during the request: parts {' and '.join(statuses)} and held ({told}); "
        "run the request again"
    )


def _labels(outcomes: Sequence[DatasetOutcome]) -> str:
    return ", ".join(f"{o.part + 1}/{o.parts}" for o in outcomes)


def part_summary(outcome: DatasetOutcome) -> dict[str, Any]:
    """What one part (or a dataset of one part) did, as the certificate lists it and the summary counts it."""
    return {
        "part": f"{outcome.part + 1}/{outcome.parts}",
        "status": outcome.status,
        "rows_affected": outcome.rows_affected,
        "rows_held": outcome.rows_held,
        "mentions_masked": outcome.mentions_masked,
        "files_changed": sum(1 for f in outcome.files if f.action != "none"),
        "legal_hold": outcome.legal_hold,
        "error": outcome.error,
    }


def _rank(status: str) -> int:
    return _PRECEDENCE.index(status) if status in _PRECEDENCE else 0  # an unknown status is a failure
