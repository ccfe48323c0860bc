"""Retention fanned out by file: plan each dataset once, apply each of its parts in a mapped task, combine.

``retention_in_parallel`` adds the three tasks of one step to a DAG::

    <task_id>_files ──> <task_id>_part[0..n] ──> <task_id>
    (the listing)       (mapped: one per part)    (the combine: one result per dataset, its summary entries)

The listing plans the catalog's retained datasets (``as_of`` fixed once for the run: the logical date, else
now), returns their parts (``retention.parts``: dataset, part index and count, listing id, the listing's
terms, file URIs and digests, ``as_of``; never data) and pushes the plans' summaries (with each part's files)
under the XCom key ``retention_plans``. Each part refuses a dataset the step does not enforce, re-plans its
own files from their current version, refuses to run if they are now measured by other terms than the
listing's (the catalog's rule or a hold changed: rerun the step), settles the open intents it owns (its
files; part 0 also the files in no part) and changes its files, each its own journaled change; it returns
the listing id, its index and file-set digest, its changes and its files' rows with bad dates. The combine
checks that the results are every part of every dataset's listing exactly once (``retention.check_results``),
builds one ``DatasetResult`` per dataset, records the dataset-level entries (legal hold ``skipped``,
``noop``, bad dates) as the single task does, and fails naming the datasets not fully enforced. A file that
fails is recorded and reported by the combine; a part fails its own task only when it cannot run at all,
and clearing it and then the combine finishes the step. The combine runs once no part failed
(``none_failed``): datasets all under a legal hold have no part, and their skips are still recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from airflow_aisec.exceptions import FanOutError
from airflow_aisec.io.groups import DEFAULT_MAX_FILES, DEFAULT_MAX_GROUPS, DEFAULT_TARGET_BYTES
from airflow_aisec.operators.retention import RetentionBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context, TaskGroup

    from airflow_aisec.retention import PartResult, PlanSummary

PLANS_KEY: Final = "retention_plans"
PART_LABEL: Final = "{{ task.part['dataset'] }} part {{ task.part['part'] }}"


class ListRetentionPartsOperator(RetentionBaseOperator):
    """
    Plan retention of the catalog's datasets with a rule (or those named) and return their parts for
    ``.expand(part=...)``: dicts of dataset, part index and count, listing id, the listing's terms, file URIs
    and digests, and the ``as_of`` every part measures from; never data. The plans' summaries are pushed
    under the XCom key ``retention_plans``. A
    dataset within the limits is one part; one under a legal hold has none. Takes the arguments of
    ``RetentionBaseOperator``.

    :param max_files_per_task: Most files in a part.
    :param target_bytes_per_task: Most bytes in a part (a larger file is a part of its own).
    :param max_groups: Most parts of one dataset; more files are spread over this many.
    """

    def __init__(
        self,
        *,
        max_files_per_task: int | None = DEFAULT_MAX_FILES,
        target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
        max_groups: int | None = DEFAULT_MAX_GROUPS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_files_per_task = max_files_per_task
        self.target_bytes_per_task = target_bytes_per_task
        self.max_groups = max_groups

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan every dataset once; push the summaries, return the parts."""
        from airflow_aisec.retention import PlanSummary, plan_catalog, split_plan

        catalog = self._load_catalog()
        as_of = self._as_of(context)
        s3 = self._s3_options(catalog)
        keys = self._catalog_keys(catalog, self.keyring, s3)
        with self.audited(context) as log:
            plans = plan_catalog(
                catalog, as_of, holds=self._holds(as_of), pseudonymize=log.pseudonym, keys=keys, s3=s3,
                datasets=self.datasets,
            )  # fmt: skip
        if not plans:
            raise FanOutError("no catalog dataset has a retention rule: nothing to enforce")
        limits = {"max_files_per_task": self.max_files_per_task, "max_groups": self.max_groups,
                  "target_bytes_per_task": self.target_bytes_per_task}  # fmt: skip
        parts: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        for plan in plans:
            split = split_plan(plan, **limits)
            self.log.info(
                "%s: %d of %d files to change, in %d part(s)",
                plan.dataset, sum(len(p.files) for p in split), len(plan.files), len(split),
            )  # fmt: skip
            parts.extend(p.as_dict() for p in split)
            summaries.append(PlanSummary.of(plan, split).as_dict())
        context["ti"].xcom_push(key=PLANS_KEY, value=summaries)
        return parts


class RetentionPartOperator(RetentionBaseOperator):
    """
    Enforce retention on one part of a dataset (from ``ListRetentionPartsOperator``): re-plan its files from
    their current version, settle the open intents the part owns, rewrite or delete its files. Refuses, with
    nothing changed or settled, a dataset the step does not enforce (``datasets``), a file the dataset's
    listing would not give out, and a re-plan under other terms than the listing's (the catalog's rule or a
    hold changed since). Returns the part's result for the combine (``PartResult``); records no
    dataset-level entry. Takes the arguments of ``RetentionBaseOperator``.

    :param part: One part, as the listing returns it. (templated)
    """

    template_fields: Sequence[str] = (*RetentionBaseOperator.template_fields, "part")

    def __init__(self, *, part: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.part = part

    def execute(self, context: Context) -> dict[str, Any]:
        """Apply the part; file failures are in its result (the combine fails naming them)."""
        from airflow_aisec.crypto.datasets import reader_for
        from airflow_aisec.retention import Part, apply_part, plan_files, retained_datasets

        part = Part.from_dict(self.part)
        catalog = self._load_catalog()
        enforced = {d.name: d for d in retained_datasets(catalog, self.datasets)}
        spec = enforced.get(part.dataset)
        if spec is None:
            raise FanOutError(
                f"{part.label}: not a dataset this step enforces ({', '.join(sorted(enforced))}); "
                "nothing was done"
            )
        s3 = self._s3_options(catalog)
        keys = self._catalog_keys(catalog, self.keyring, s3)
        reader = reader_for(keys, spec) if spec.encryption else None
        with self.audited(context) as log:
            plan = plan_files(
                catalog, spec, part.as_of, list(part.files), holds=self._holds(part.as_of),
                pseudonymize=log.pseudonym, reader=reader, s3=s3,
            )  # fmt: skip
            moved = [f.uri for f in plan.files if f.sha256_before != part.files.get(f.uri)]
            if moved:
                self.log.info("%s: %d file(s) changed since the listing, planned as they are now",
                              part.dataset, len(moved))  # fmt: skip
            result = apply_part(plan, part, catalog, spec, keys=keys, audit=log)
        failed = [d.uri for d in result.changes if d.outcome == "failure"]
        if failed:
            self.log.warning("%s: %d file(s) failed: %s", part.label, len(failed), ", ".join(failed))
        if result.bad_dates:
            self.log.warning(
                "%s: %d file(s) with rows of unreadable dates", part.label, len(result.bad_dates)
            )
        return result.as_dict()


class RetentionCombineOperator(RetentionBaseOperator):
    """
    Combine a fanned-out retention: check, before anything is recorded, that the results are every part of
    every planned dataset's listing exactly once (same listing id, count and file sets:
    ``retention.check_results``); build one result per dataset, record its dataset-level entries as
    ``RetentionEnforcementOperator`` does (legal hold ``skipped``, ``noop``, rows with bad dates) and fail
    naming the datasets not fully enforced.

    :param summaries: The listing's plan summaries (its ``retention_plans`` XCom). (templated)
    :param results: The mapped part tasks' return values (their ``.output``). (templated)
    """

    template_fields: Sequence[str] = (*RetentionBaseOperator.template_fields, "summaries", "results")

    def __init__(self, *, summaries: Any, results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.summaries = summaries
        self.results = results

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Combine and record; return each dataset's result as the single task does."""
        from airflow_aisec.retention import PlanSummary, check_results, combine

        if not self.summaries:
            raise FanOutError("no retention plans to combine: the listing did not run or planned nothing")
        summaries = [PlanSummary.from_dict(s) for s in self.summaries]
        by_dataset = _results_by_dataset(summaries, _part_results(self.results))
        for summary in summaries:  # every dataset checked before anything is recorded
            check_results(summary, by_dataset.get(summary.dataset, []))
        with self.audited(context) as log:
            results = [combine(s, by_dataset.get(s.dataset, []), audit=log) for s in summaries]
        return self._report(results)


def _part_results(results: Any) -> list[dict[str, Any]]:
    """The mapped tasks' return values. Airflow's lazy sequence of them is read by index up to its length:
    iterating it asks for one value past the end, which the task SDK logs as an error."""
    if not results:
        return []
    return [dict(results[i]) for i in range(len(results))]


def _results_by_dataset(
    summaries: Sequence[PlanSummary], results: Sequence[Mapping[str, Any]]
) -> dict[str, list[PartResult]]:
    """The parts' results by dataset; ``FanOutError`` for a result of a dataset the listing did not plan."""
    from airflow_aisec.retention import PartResult

    planned = {s.dataset for s in summaries}
    by_dataset: dict[str, list[PartResult]] = {}
    for result in map(PartResult.from_dict, results):
        if result.dataset not in planned:
            raise FanOutError(
                f"dataset {result.dataset} part {result.index} comes from another listing (this one did not "
                "plan the dataset); rerun the step"
            )
        by_dataset.setdefault(result.dataset, []).append(result)
    return by_dataset


def retention_in_parallel(
    task_id: str,
    *,
    datasets: Sequence[str] | None = None,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
    **kwargs: Any,
) -> TaskGroup:
    """``RetentionEnforcementOperator(task_id=..., **kwargs)`` fanned out by file: the listing
    ``<task_id>_files``, the mapped ``<task_id>_part`` (one per part of each dataset) and the combine
    ``<task_id>``, which records the datasets' summaries (and carries ``outlets``). Chain the returned task
    group like the single task."""
    from airflow.sdk import TaskGroup, XComArg

    outlets = kwargs.pop("outlets", None)
    first = {k: kwargs.pop(k) for k in ("as_of", "trigger_rule") if k in kwargs}  # the listing's alone
    limits = {"max_files_per_task": max_files_per_task, "target_bytes_per_task": target_bytes_per_task,
              "max_groups": max_groups}  # fmt: skip
    with TaskGroup(group_id=f"{task_id}_fanout", prefix_group_id=False) as group:
        listing = ListRetentionPartsOperator(
            task_id=f"{task_id}_files", datasets=datasets, **first, **limits, **kwargs
        )
        parts = RetentionPartOperator.partial(
            task_id=f"{task_id}_part", map_index_template=PART_LABEL, datasets=datasets, **kwargs
        ).expand(part=listing.output)
        extra = {"outlets": outlets} if outlets is not None else {}
        RetentionCombineOperator(
            task_id=task_id,
            summaries=XComArg(listing, key=PLANS_KEY),
            results=parts.output,
            trigger_rule="none_failed",  # datasets all under legal hold: no part, their skips still recorded
            **kwargs,
            **extra,
        )
    return group
