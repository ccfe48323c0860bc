"""Fan-out by file: list a dataset's files in groups, process each group in a mapped task, combine once.

``mask_in_parallel`` and ``encrypt_in_parallel`` add the three tasks of one step to a DAG::

    <task_id>_files ──> <task_id>_group[0..n] ──> <task_id>
    (the listing)       (mapped: one per group)    (the combine: commit, one audit entry, lineage)

The groups write their files to a staging folder hidden below the output (``io.groups``); the combine task
checks that every group of one listing is there, promotes the staged files into place (``io.promote``) and
records the step's one entry with its lineage, as the single task would have. A failed group leaves nothing
committed; clearing it and then the combine task finishes the step. An in-place encryption stages nothing:
each group encrypts its own files where they are, and the combine task checks that they are still what the
groups wrote before it records the step (``crypto.in_place_groups``).

``retention_in_parallel`` (``fanout_retention``, re-exported here) fans retention out by file too, with no
staging: each file is its own journaled change, and each part settles only the open intents on its own files
(part 0 also those on files in no part), so no two tasks settle the same intent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import FanOutError
from airflow_aisec.io.abandoned import DEFAULT_STAGING_GRACE
from airflow_aisec.io.groups import DEFAULT_MAX_FILES, DEFAULT_MAX_GROUPS, DEFAULT_TARGET_BYTES
from airflow_aisec.operators.base import AisecCatalogOperator, task_actor
from airflow_aisec.operators.crypto import EncryptDatasetOperator
from airflow_aisec.operators.fanout_retention import retention_in_parallel
from airflow_aisec.operators.pii import PIIMaskOperator

__all__ = [
    "EncryptCombineOperator",
    "ListFileGroupsOperator",
    "MaskCombineOperator",
    "encrypt_in_parallel",
    "mask_in_parallel",
    "retention_in_parallel",
]

if TYPE_CHECKING:
    from airflow.sdk import Context, TaskGroup

    from airflow_aisec.io import Location


class ListFileGroupsOperator(AisecCatalogOperator):
    """
    List the files of a catalog dataset (or of ``input_uri``) and return them in groups for ``.expand()``:
    dicts of file URIs, sizes and versions, never data. A dataset within the limits is one group.

    :param dataset: Catalog dataset whose files are listed (its format too). (templated)
    :param input_uri: Where the files are, when not at the dataset's ``uri``. (templated)
    :param max_files_per_task: Most files in a group.
    :param target_bytes_per_task: Most bytes in a group (a larger file is a group of its own).
    :param max_groups: Most groups (mapped tasks); more files are spread over this many.
    :param output_uri: Where the step writes: the staging folders other runs left there (never this run's)
        are removed once their newest file is older than ``staging_grace``. (templated)
    :param staging_grace: How long another run's staging is kept (default one day); None keeps it.
    """

    template_fields: Sequence[str] = ("dataset", "input_uri", "output_uri", "catalog", "variables")
    ui_color = "#eef6e8"

    def __init__(
        self,
        *,
        dataset: str | None = None,
        input_uri: str | None = None,
        max_files_per_task: int | None = DEFAULT_MAX_FILES,
        target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
        max_groups: int | None = DEFAULT_MAX_GROUPS,
        output_uri: str | None = None,
        staging_grace: dt.timedelta | None = DEFAULT_STAGING_GRACE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.input_uri = input_uri
        self.output_uri = output_uri
        self.staging_grace = staging_grace
        self.max_files_per_task = max_files_per_task
        self.target_bytes_per_task = target_bytes_per_task
        self.max_groups = max_groups

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """List and group; the run id names the staging folder, so runs never share staged files."""
        from airflow_aisec.io import guess_format, list_dataset_files, list_files
        from airflow_aisec.io.groups import plan_groups

        if self.dataset:
            spec = self._load_catalog().dataset(self.dataset)
            location = self._location(self.input_uri or spec.uri)
            files = list_dataset_files(location, spec.format, dataset=spec.name)
            fmt: str = spec.format
        elif self.input_uri:
            location = self._location(self.input_uri)
            fmt = guess_format(location)
            files = list_files(location, fmt)
        else:
            raise FanOutError(f"task {self.task_id}: name the dataset= or the input_uri= whose files to list")
        actor = task_actor(context)
        run = "/".join(str(actor.get(k, "")) for k in ("dag_id", "run_id", "task_id"))
        groups = plan_groups(
            files, location, fmt, run=run, max_files_per_task=self.max_files_per_task,
            target_bytes_per_task=self.target_bytes_per_task, max_groups=self.max_groups,
        )  # fmt: skip
        self.log.info("%s: %d files in %d groups", location.uri, len(files), len(groups))
        self._remove_abandoned(str(groups[0]["staging"]))
        return groups

    def _remove_abandoned(self, token: str) -> None:
        """Remove the staging other runs left below the output, past the grace (names logged, no data)."""
        from airflow_aisec.io.abandoned import remove_abandoned_staging

        if not self.output_uri or self.staging_grace is None:
            return
        target = self._location(self.output_uri)
        removed = remove_abandoned_staging(target, token, self.staging_grace)
        if removed:
            self.log.info("%s: removed abandoned staging %s", target.uri, ", ".join(removed))


def _commit(
    results: Any, target: Location, fmt: str, sse_kms_key_id: str | None = None
) -> list[dict[str, Any]]:
    """Every group of one listing there, each staged file as written: promote them all (a Parquet file's
    key material before any data file), drop the staging."""
    from airflow_aisec.crypto.staged import promote_staged
    from airflow_aisec.io.groups import check_complete, staging_root
    from airflow_aisec.io.promote import remove_staging

    complete = [dict(r) for r in check_complete(_group_results(results))]
    records = [f for r in complete for f in r["files"]]
    promoted = iter(promote_staged(records, fmt, target.s3, sse_kms_key_id))
    remove_staging(staging_root(target, complete[0]))
    # What is recorded names each file where it now is, as the single task's entry does.
    return [{**r, "files": [next(promoted) for _ in r["files"]]} for r in complete]


def _group_results(results: Any) -> list[dict[str, Any]]:
    """The mapped tasks' return values. Airflow's lazy sequence of them is read by index up to its length:
    iterating it asks for one value past the end, which the task SDK logs as an error."""
    if not results:
        return []
    return [dict(results[i]) for i in range(len(results))]


def _group_counts(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"group": r["group"], "files": len(r["files"]), **({"rows": r["rows"]} if "rows" in r else {})}
        for r in results
    ]


class MaskCombineOperator(PIIMaskOperator):
    """
    Commit a fanned-out masking: check the groups' results (``PIIMaskOperator`` with ``files=``), promote
    their staged files into ``output_uri`` and record one ``pii.mask`` entry (per-group counts in its
    details) with the lineage of the whole step. Takes the arguments of the mask tasks.

    :param results: The mapped mask tasks' return values (their ``.output``). (templated)
    """

    template_fields: Sequence[str] = (*PIIMaskOperator.template_fields, "results")

    def __init__(self, *, results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def execute(self, context: Context) -> dict[str, Any]:
        """Commit; return files, rows and counts per column as the single task does."""
        from airflow_aisec.io import guess_format
        from airflow_aisec.pii.mask import plan_from_catalog, plan_from_rules
        from airflow_aisec.pii.pipeline import MaskResult

        target = self._location(self.output_uri)
        names: tuple[str | None, str | None]
        name: str | None
        output: str | None
        if self.dataset:
            catalog, spec = self._catalog_dataset()
            plans = plan_from_catalog(spec, catalog.subjects.pseudonym_key)
            source = self._location(self.input_uri or spec.uri)
            complete = _commit(self.results, target, spec.format)
            names = (self._dataset_at(catalog, source.uri), self._dataset_at(catalog, target.uri))
            name, output = spec.name, self.output_name or names[1] or f"{spec.name}_masked"
        else:
            source = self._location(self.input_uri or "")
            plans = plan_from_rules(self.columns or {})
            complete = _commit(self.results, target, guess_format(source))
            names, name, output = (None, None), None, self.output_name
        result = MaskResult.from_groups(complete)
        details = {"groups": _group_counts(complete)}
        return self._report(context, name, output, result, plans, (names[0], source.uri, target.uri), details)


class EncryptCombineOperator(EncryptDatasetOperator):
    """
    Commit a fanned-out encryption: check the groups' results (``EncryptDatasetOperator`` with ``files=``),
    promote their staged files into ``output_uri`` and record one ``dataset.encrypt`` entry with the
    lineage of the whole step. In place (no ``output_uri``, or the input's location), nothing is staged:
    every group of the one listing must be there once and every file it reports must still be what it wrote
    (``crypto.in_place_groups.check_in_place``) before the entry is recorded. Takes the arguments of the
    encrypt tasks.

    :param results: The mapped encrypt tasks' return values (their ``.output``). (templated)
    """

    template_fields: Sequence[str] = (*EncryptDatasetOperator.template_fields, "results")

    def __init__(self, *, results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def execute(self, context: Context) -> dict[str, Any]:
        """Commit; return the files written, as the single task does."""
        from airflow_aisec.crypto.datasets import CryptoFile, sse_kms_key

        catalog, spec = self._catalog_dataset()
        key = self._key_name(spec)
        source = self._location(self.input_uri or spec.uri)
        target = self._location(self.output_uri) if self.output_uri else source
        if target.path == source.path:
            complete = _check_in_place(self.results, source)
        else:
            fmt = "parquet" if spec.format == "parquet" else "envelope"
            complete = _commit(self.results, target, fmt, sse_kms_key(catalog, key))
        files = [CryptoFile(**f) for r in complete for f in r["files"]]
        columns = self.columns or (spec.encryption.columns if spec.encryption else None)
        where = self._named(catalog, spec, source.uri), self._named(catalog, spec, target.uri)
        counts = _group_counts(complete)
        self._record_files(
            context, "dataset.encrypt", spec, files, where, columns=columns, key=key, groups=counts
        )
        if target.path == source.path:  # the groups' ledger, once the step is recorded
            from airflow_aisec.io.groups import staging_root
            from airflow_aisec.io.promote import remove_staging

            remove_staging(staging_root(source, complete[0]))
        return {"files": [f.target for f in files]}


def _check_in_place(results: Any, source: Location) -> list[dict[str, Any]]:
    """Every group of one listing there once, each file still what its group wrote: the groups' results."""
    from airflow_aisec.crypto.in_place_groups import check_in_place
    from airflow_aisec.io.groups import check_complete

    complete = [dict(r) for r in check_complete(_group_results(results))]
    check_in_place([f for r in complete for f in r["files"]], source.s3)
    return complete


def _in_parallel(
    task_id: str,
    operator: type[AisecCatalogOperator],
    combine: type[AisecCatalogOperator],
    limits: dict[str, Any],
    kwargs: dict[str, Any],
) -> TaskGroup:
    from airflow.sdk import TaskGroup

    outlets = kwargs.pop("outlets", None)
    listing_args = {
        k: kwargs[k]
        for k in ("dataset", "input_uri", "output_uri", "catalog", "variables", "aws_conn_id")
        if k in kwargs
    }
    with TaskGroup(group_id=f"{task_id}_fanout", prefix_group_id=False) as group:
        listing = ListFileGroupsOperator(task_id=f"{task_id}_files", **listing_args, **limits)
        parts = operator.partial(task_id=f"{task_id}_group", **kwargs).expand(files=listing.output)
        extra = {"outlets": outlets} if outlets is not None else {}
        combine(task_id=task_id, results=parts.output, **kwargs, **extra)
    return group


def mask_in_parallel(
    task_id: str,
    *,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
    staging_grace: dt.timedelta | None = DEFAULT_STAGING_GRACE,
    **kwargs: Any,
) -> TaskGroup:
    """``PIIMaskOperator(task_id=..., **kwargs)`` fanned out by file: the listing ``<task_id>_files``, the
    mapped ``<task_id>_group`` and the combine ``<task_id>``, which records the step (and carries
    ``outlets``). The listing removes staging other runs left in ``output_uri`` past ``staging_grace``.
    Chain the returned task group like the single task."""
    limits = {"max_files_per_task": max_files_per_task, "target_bytes_per_task": target_bytes_per_task,
              "max_groups": max_groups, "staging_grace": staging_grace}  # fmt: skip
    return _in_parallel(task_id, PIIMaskOperator, MaskCombineOperator, limits, kwargs)


def encrypt_in_parallel(
    task_id: str,
    *,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
    staging_grace: dt.timedelta | None = DEFAULT_STAGING_GRACE,
    **kwargs: Any,
) -> TaskGroup:
    """``EncryptDatasetOperator(task_id=..., **kwargs)`` fanned out by file (envelopes, or Parquet files with
    their key material, into ``output_uri``; in place without it, or with ``output_uri`` at the input, which
    also lets the listing remove another run's abandoned ledger); tasks named as by ``mask_in_parallel``."""
    limits = {"max_files_per_task": max_files_per_task, "target_bytes_per_task": target_bytes_per_task,
              "max_groups": max_groups, "staging_grace": staging_grace}  # fmt: skip
    return _in_parallel(task_id, EncryptDatasetOperator, EncryptCombineOperator, limits, kwargs)
