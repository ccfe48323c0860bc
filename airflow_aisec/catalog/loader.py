"""Load a privacy catalog from YAML and report every problem at once.

Each problem names the file, the dotted path of the field and the bad value, plus the YAML line where the
field was written, so a privacy officer can fix a catalog in one pass instead of one error per run.

A catalog is read by every DAG parse and every task, so its cost is bounded before it is built: at most
``MAX_CATALOG_BYTES``, nesting at most ``MAX_DEPTH`` deep, at most ``MAX_ALIASES`` alias references repeating
at most ``MAX_ALIAS_NODES`` nodes in all. A few kilobytes of aliases of aliases ("billion laughs") would
otherwise expand to billions of nodes when the document is walked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_aisec.catalog.checks import check_catalog
from airflow_aisec.catalog.models import (
    Catalog,
    ConsentSource,
    Controller,
    Dataset,
    KeySpec,
    PurposeSpec,
    RecognizerSpec,
    Subjects,
)
from airflow_aisec.catalog.problems import FieldPath, Report
from airflow_aisec.catalog.roles import PrivacyOffice
from airflow_aisec.exceptions import CatalogError

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

MAX_CATALOG_BYTES: Final = 10 << 20
MAX_DEPTH: Final = 64
MAX_ALIASES: Final = 100
MAX_ALIAS_NODES: Final = 10_000


class _Refused(yaml.MarkedYAMLError):
    """The document would cost more to build than any catalog needs; nothing of it was built."""


def _refused(event: yaml.Event, problem: str) -> _Refused:
    return _Refused(problem=f"refused: {problem}", problem_mark=event.start_mark)  # type: ignore[arg-type]


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that keeps impossible dates (``2027-02-30``) as text so validation can name them,
    and refuses documents nested too deeply or repeating too much through aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._repeated = 0  # nodes repeated by aliases so far
        self._nodes = 0  # nodes of the document with every alias expanded, so far
        self._sizes: dict[str, int] = {}  # anchor -> nodes of its value, aliases in it expanded
        self._open: set[str] = set()  # anchors whose value is being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            raise _refused(event, f"nested more than {MAX_DEPTH} levels deep")
        anchor = event.anchor
        start = self._nodes
        self._nodes += 1
        self._depth += 1
        if anchor is not None:
            self._open.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)
        if anchor is not None:
            self._sizes[anchor] = self._nodes - start
        return node

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise _refused(event, f"more than {MAX_ALIASES} aliases (*name)")
        if event.anchor in self._open:
            raise _refused(event, f"alias *{event.anchor} refers to a value that contains it")
        size = self._sizes.get(str(event.anchor), 0)
        self._nodes += size
        self._repeated += size
        if self._repeated > MAX_ALIAS_NODES:
            raise _refused(event, f"aliases repeat more than {MAX_ALIAS_NODES} values in all")

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_catalog(
    path: str | Path, variables: Mapping[str, str] | None = None, *, max_bytes: int = MAX_CATALOG_BYTES
) -> Catalog:
    """Load and validate a catalog; raise ``CatalogError`` listing every error (warnings are ignored)."""
    report = validate_catalog(path, variables, max_bytes=max_bytes)
    if report.catalog is None or report.errors:
        raise CatalogError([str(p) for p in report.errors])
    return report.catalog


def validate_catalog(
    path: str | Path, variables: Mapping[str, str] | None = None, *, max_bytes: int = MAX_CATALOG_BYTES
) -> Report:
    """Validate a catalog file and return the catalog (if it could be built), errors and warnings.

    A file larger than ``max_bytes`` is refused unread.
    """
    source = str(path)
    report = Report(source=source)
    text = _read_text(Path(path), max_bytes, report)
    if text is None:
        return report
    parsed = _parse_yaml(text, report)
    if parsed is None:
        return report
    data, lines = parsed
    report.lines = lines
    data = _substitute(data, dict(variables or {}), (), report)
    report.catalog = _build(data, report)
    if report.catalog is not None:
        check_catalog(report.catalog, report)
    return report


def _read_text(path: Path, max_bytes: int, report: Report) -> str | None:
    try:
        with path.open("rb") as handle:
            # One byte more than allowed tells a file at the limit from a larger one, without reading it all.
            data = handle.read(max_bytes + 1)
    except OSError as e:
        report.error((), f"cannot read catalog: {e.__class__.__name__}: {e.strerror or e}")
        return None
    if len(data) > max_bytes:
        report.error((), f"refused: the catalog is larger than {_size(max_bytes)}")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        report.error((), f"cannot read catalog: not UTF-8 text (byte {e.start})")
        return None


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 and not count % (1 << 20) else f"{count} bytes"


def _parse_yaml(text: str, report: Report) -> tuple[dict[str, Any], dict[FieldPath, int]] | None:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as e:
        report.error((), _unacceptable(text, e))
        return None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        report.error((), f"{where}{e.problem}")
        return None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        report.error((), f"{where}YAML syntax error: {e.problem or e.context}")
        return None
    except yaml.reader.ReaderError as e:
        report.error((), _unacceptable(text, e))
        return None
    except yaml.YAMLError as e:
        report.error((), f"YAML syntax error: {e}")
        return None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        report.error((), f"the catalog must be a mapping, got {type(data).__name__}")
        return None
    lines: dict[FieldPath, int] = {}
    _record_lines(node, (), lines)
    return data, lines


def _unacceptable(text: str, error: yaml.reader.ReaderError) -> str:
    line = text.count("\n", 0, error.position) + 1
    return f"line {line}: YAML syntax error: character #x{error.character:04x} is not allowed in YAML"


def _record_lines(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _record_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, str(i)), lines)


def _substitute(value: Any, variables: dict[str, str], path: FieldPath, report: Report) -> Any:
    if isinstance(value, str):
        return _substitute_text(value, variables, path, report)
    if isinstance(value, dict):
        return {k: _substitute(v, variables, (*path, str(k)), report) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, (*path, str(i)), report) for i, v in enumerate(value)]
    return value


def _substitute_text(text: str, variables: dict[str, str], path: FieldPath, report: Report) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            report.error(path, f"undefined variable {{{name}}} in {text!r} (pass --var {name}=...)")
            return match.group(0)
        return variables[name]

    return _VAR.sub(replace, text)


class _TopLevel(BaseModel):
    """Everything but the datasets, which are validated one by one."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    subjects: Subjects
    keys: dict[str, KeySpec] = Field(default_factory=dict)
    purposes: dict[str, PurposeSpec] = Field(default_factory=dict)
    recognizers: list[RecognizerSpec] = Field(default_factory=list)
    privacy_office: PrivacyOffice | None = None
    consent: ConsentSource | None = None
    controller: Controller | None = None
    datasets: Any = None


def _build(data: dict[str, Any], report: Report) -> Catalog | None:
    """Validate each part on its own so one broken dataset does not hide the problems of the others."""
    top = _validate(_TopLevel, data, (), report)
    raw_datasets = data.get("datasets")
    datasets: dict[str, Dataset] = {}
    if not isinstance(raw_datasets, dict) or not raw_datasets:
        report.error(("datasets",), f"must be a non-empty mapping of dataset names, got {raw_datasets!r}")
        return None
    report.dataset_names = {str(name) for name in raw_datasets}
    for name, raw in raw_datasets.items():
        dataset = _validate(Dataset, raw, ("datasets", str(name)), report) or _salvage(str(name), raw, report)
        if isinstance(dataset, Dataset):
            datasets[str(name)] = dataset.model_copy(update={"name": str(name)})
    if not isinstance(top, _TopLevel):
        return None
    return Catalog.model_construct(
        version=top.version,
        subjects=top.subjects,
        keys=top.keys,
        purposes=top.purposes,
        datasets=datasets,
        recognizers=top.recognizers,
        privacy_office=top.privacy_office,
        consent=top.consent,
        controller=top.controller,
        source=report.source,
    )


def _salvage(name: str, raw: Any, report: Report) -> Dataset | None:
    """The dataset without its invalid fields, so the cross-field checks still run on the rest."""
    if not isinstance(raw, dict):
        return None
    bad = {p.path[2] for p in report.errors if len(p.path) > 2 and p.path[:2] == ("datasets", name)}
    # Placeholders for required fields already reported as broken; they are never used for I/O.
    kept = {"format": "parquet", "uri": "", **{k: v for k, v in raw.items() if k not in bad}}
    try:
        dataset = Dataset.model_validate(kept)
    except ValidationError:
        return None
    report.dropped[name] = bad
    return dataset


def _validate(model: type[BaseModel], raw: Any, prefix: FieldPath, report: Report) -> BaseModel | None:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(str(part) for part in err["loc"])
            report.error((*prefix, *loc), _message(err))
        return None


def _message(err: Mapping[str, Any]) -> str:
    kind, value = err["type"], err.get("input")
    extra = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field missing"
    if kind == "literal_error":
        return f"unknown value {value!r} (expected {extra.get('expected')})"
    if kind == "value_error":
        return str(extra.get("error", err["msg"]))
    if kind.startswith("date"):
        return f"invalid date {value!r} (expected YYYY-MM-DD)"
    return f"{err['msg']} (got {value!r})"
