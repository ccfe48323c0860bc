"""Scan and mask whole datasets: file by file, batch by batch, each output written atomically.

The CLI and the operators both call these functions; they add the audit entry and the lineage.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import yaml

from airflow_aisec import config
from airflow_aisec.exceptions import DatasetIOError, PIIError
from airflow_aisec.io import (
    FileInfo,
    Location,
    atomic_write,
    extension,
    guess_format,
    list_files,
    read_file,
    sha256_file,
)
from airflow_aisec.lineage import DatasetRef, StepLineage, classify

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.pii.engine import CustomRecognizerSpec
    from airflow_aisec.pii.mask import Masker


@dataclasses.dataclass
class MaskedFile:
    """One input file and the masked file written from it."""

    source: str
    source_sha256: str
    target: str
    target_sha256: str
    rows: int
    staged: str = ""  # fanned out: where the group wrote it, until the step's commit moves it to ``target``


@dataclasses.dataclass
class MaskResult:
    """What ``mask_dataset`` did: files, rows, and how many values were masked per column and entity."""

    files: list[MaskedFile] = dataclasses.field(default_factory=list)
    counts: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    source_columns: tuple[str, ...] = ()
    output_columns: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        """Rows written in all files."""
        return sum(f.rows for f in self.files)

    def lineage(
        self, source_name: str | None, target_name: str | None, masked: dict[str, str]
    ) -> StepLineage:
        """Inputs, outputs and column flows (``masked``: column → strategy, flagged) for audit and lineage."""
        lineage = StepLineage()
        for f in self.files:
            source = DatasetRef(f.source, source_name, f.source_sha256, self.source_columns)
            target = DatasetRef(f.target, target_name, f.target_sha256, self.output_columns)
            lineage.inputs.append(source)
            lineage.outputs.append(target)
            lineage.identity(source, target, masked)
        return lineage

    def as_group(self, group: Mapping[str, Any]) -> dict[str, Any]:
        """What one group of a fanned-out masking staged, for the step's combine (digests and counts only)."""
        return {
            **{k: group.get(k) for k in ("group", "groups", "listing", "staging")},
            "rows": self.rows,
            "files": [dataclasses.asdict(f) for f in self.files],
            "masked": self.counts,
            "source_columns": list(self.source_columns),
            "output_columns": list(self.output_columns),
        }

    @classmethod
    def from_groups(cls, results: Sequence[Mapping[str, Any]]) -> MaskResult:
        """The result of the whole step from its groups' ``as_group`` (in group order): files in order,
        counts summed, so the entry and lineage are those of one task masking every file."""
        combined = cls()
        totals: dict[str, Counter[str]] = {}
        for result in results:
            combined.files.extend(MaskedFile(**f) for f in result["files"])
            for column, by_entity in dict(result.get("masked") or {}).items():
                totals.setdefault(column, Counter()).update(by_entity)
            if result.get("source_columns"):
                combined.source_columns = tuple(result["source_columns"])
                combined.output_columns = tuple(result["output_columns"])
        combined.counts = {column: dict(counts) for column, counts in totals.items()}
        return combined

    def entry_details(self) -> dict[str, Any]:
        """Counts per entity for the audit entry (no values)."""
        per_entity: Counter[str] = Counter()
        for by_entity in self.counts.values():
            per_entity.update(by_entity)
        return {"masked_per_entity": dict(sorted(per_entity.items())), "files": len(self.files)}


def _batches_with_schema(info: FileInfo, fmt: str) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    batches = read_file(info, fmt)
    first = next(batches, None)
    if first is None:
        return None, iter(())

    def chain() -> Iterator[pa.RecordBatch]:
        yield first
        yield from batches

    return first.schema, chain()


def _target_for(info: FileInfo, source: Location, target: Location, fmt: str) -> Location:
    if info.location.path == source.path:  # a single file in, a single file out
        return target if target.name.lower().endswith(extension(fmt)) else target.join(source.name)
    return target.join(info.location.relative_to(source))


BatchTransform = Callable[[pa.RecordBatch], pa.RecordBatch]


def _rewrite_files(
    source: Location,
    target: Location,
    fmt: str,
    plan: Callable[[FileInfo, pa.Schema], tuple[pa.Schema, BatchTransform]],
    what: str,
    on_file: Callable[[MaskedFile], None] | None = None,
    new_file_mode: int | None = None,
    part: tuple[list[FileInfo], Location] | None = None,
) -> MaskResult:
    """Write every ``fmt`` file of ``source`` transformed into ``target`` (same relative names), each
    atomically and verified; ``plan`` gives each file's output schema and batch transform, ``new_file_mode``
    the permissions of local outputs (see ``atomic_write``). ``part``: only these files of ``source``,
    written below the staging folder (same relative names) for the step's commit to move into ``target``."""
    files = part[0] if part is not None else list_files(source, fmt)
    if not files:
        raise DatasetIOError(f"{source.uri}: no {fmt} files to {what}")
    result = MaskResult()
    for info in files:
        schema, batches = _batches_with_schema(info, fmt)
        if schema is None:
            continue
        output_schema, transform = plan(info, schema)
        result.source_columns, result.output_columns = tuple(schema.names), tuple(output_schema.names)
        out = _target_for(info, source, target, fmt)
        staged = part[1].join(out.relative_to(target) or out.name) if part is not None else out
        with atomic_write(staged, fmt, output_schema, overwrite=True, new_file_mode=new_file_mode) as writer:
            for batch in batches:
                writer.write(transform(batch))
        written = MaskedFile(info.uri, sha256_file(info.location), out.uri, writer.result.sha256, writer.rows)
        if part is not None:
            written.staged = staged.uri
        result.files.append(written)
        if on_file is not None:
            on_file(written)
    return result


def mask_dataset(
    source: Location,
    target: Location,
    masker: Masker,
    *,
    fmt: str | None = None,
    on_file: Callable[[MaskedFile], None] | None = None,
    part: tuple[list[FileInfo], Location] | None = None,
) -> MaskResult:
    """Mask every file of ``source`` into ``target`` (same relative names), atomically and verified.

    An existing output file is replaced only when the whole new version verified; the input is never
    modified. Raises ``PIIError`` when a planned column is missing from a file. ``part`` (a group of a
    fanned-out step): only these files, written to the staging folder given (see ``io.groups``).
    """
    fmt = guess_format(source, fmt)
    result = _rewrite_files(
        source,
        target,
        fmt,
        lambda _, schema: (masker.output_schema(schema), masker.mask_batch),
        "mask",
        on_file,
        part=part,
    )
    result.counts = {column: dict(counts) for column, counts in masker.counts.items()}
    return result


def unmask_dataset(
    source: Location, target: Location, keyring: LocalKeyring, key: str, columns: list[str], *, fmt: str
) -> MaskResult:
    """Decrypt the ``encrypt``-masked ``columns`` of every file of ``source`` into ``target``.

    Local outputs are owner-only (0600): they hold the PII again.
    """
    from airflow_aisec.io.nested import FieldPath, leaves, parse_path, resolve, with_leaves
    from airflow_aisec.pii.strategies import decrypt_values

    paths: dict[str, FieldPath] = {}

    def decrypt(batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = list(batch.columns)
        for name, path in paths.items():  # a column, or a path into one (``payload.ip``)
            i = batch.schema.get_field_index(path.column)
            if not path.is_nested:
                arrays[i] = decrypt_values(arrays[i], keyring, key, name)
                continue
            found = leaves(arrays[i], path).values
            arrays[i] = with_leaves(arrays[i], path, decrypt_values(found, keyring, key, name))
        return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)

    def plan(info: FileInfo, schema: pa.Schema) -> tuple[pa.Schema, BatchTransform]:
        missing = []
        for name in columns:
            try:
                paths[name] = FieldPath(name) if name in schema.names else parse_path(name)
                resolve(schema, paths[name])
            except PIIError:
                missing.append(name)
        if missing:
            raise PIIError(f"{info.uri}: no column(s) {', '.join(missing)} to unmask")
        return schema, decrypt

    return _rewrite_files(source, target, fmt, plan, "unmask", new_file_mode=0o600)


def recognizer_specs(catalog: Catalog | None) -> list[CustomRecognizerSpec]:
    """Custom recognizers declared in the catalog and in the ``[aisec] recognizers`` file."""
    from airflow_aisec.pii.engine import CustomRecognizerSpec

    raw: list[dict[str, Any]] = [r.model_dump() for r in catalog.recognizers] if catalog is not None else []
    path = config.get_setting("recognizers")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
        except (OSError, yaml.YAMLError) as e:
            raise PIIError(f"[aisec] recognizers: cannot read {path}: {e.__class__.__name__}") from None
        if not isinstance(loaded, list):
            raise PIIError(f"[aisec] recognizers: {path} must hold a list of recognizers")
        raw += loaded
    return [CustomRecognizerSpec.from_mapping(item) for item in raw]


def scan_entry(dataset: str | None, uri: str, findings: dict[str, Any], drift: list[Any]) -> dict[str, Any]:
    """Audit fields of a scan: which columns hold which entity, and which the catalog does not declare."""
    return {
        "dataset": dataset,
        "inputs": [{k: v for k, v in {"uri": uri, "dataset": dataset}.items() if v}],
        "columns": sorted(name for name, f in findings.items() if f.entity),
        "outcome": "failure" if drift else "success",
        "details": {
            "entities": {name: f.entity for name, f in findings.items() if f.entity},
            "undeclared": [f.column for f in drift],
        },
    }


def mask_entry(
    dataset: str | None, target_name: str | None, result: MaskResult, plans: list[Any]
) -> tuple[StepLineage, dict[str, Any]]:
    """The lineage of a masking run and the audit fields recording it (counts per entity, digests).

    The lineage classifies the columns: each planned column holds its entity, unmasked in the input and
    masked with its strategy in the output (a dropped column is not in the output).
    """
    strategies = {p.column: p.strategy for p in plans}
    lineage = result.lineage(dataset, target_name, strategies)
    entities = {p.column: p.entity for p in plans}
    lineage.classify(
        inputs=classify(entities, present=result.source_columns or None),
        outputs=classify(entities, strategies, present=result.output_columns or None),
    )
    fields = {
        "dataset": dataset,
        "rows": result.rows,
        "details": {**result.entry_details(), "strategies": strategies},
        **lineage.entry_fields(),
    }
    return lineage, fields
