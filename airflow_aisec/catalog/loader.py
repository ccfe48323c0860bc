"""Load a privacy catalog from YAML and report every problem at once.

Each problem names the file, the dotted path of the field and the bad value, plus the YAML line where the
field was written, so a privacy officer can fix a catalog in one pass instead of one error per run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_aisec.catalog.checks import check_catalog
from airflow_aisec.catalog.models import Catalog, Dataset, KeySpec, RecognizerSpec, Subjects
from airflow_aisec.catalog.problems import FieldPath, Report
from airflow_aisec.exceptions import CatalogError

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that keeps impossible dates (``2027-02-30``) as text so validation can name them."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_catalog(path: str | Path, variables: Mapping[str, str] | None = None) -> Catalog:
    """Load and validate a catalog; raise ``CatalogError`` listing every error (warnings are ignored)."""
    report = validate_catalog(path, variables)
    if report.catalog is None or report.errors:
        raise CatalogError([str(p) for p in report.errors])
    return report.catalog


def validate_catalog(path: str | Path, variables: Mapping[str, str] | None = None) -> Report:
    """Validate a catalog file and return the catalog (if it could be built), errors and warnings."""
    source = str(path)
    report = Report(source=source)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        report.error((), f"cannot read catalog: {e.__class__.__name__}: {getattr(e, 'strerror', e)}")
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


def _parse_yaml(text: str, report: Report) -> tuple[dict[str, Any], dict[FieldPath, int]] | None:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        report.error((), f"{where}YAML syntax error: {e.problem or e.context}")
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
    recognizers: list[RecognizerSpec] = Field(default_factory=list)
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
        datasets=datasets,
        recognizers=top.recognizers,
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
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field missing"
    if kind == "literal_error":
        return f"unknown value {value!r} (expected {ctx.get('expected')})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind.startswith("date"):
        return f"invalid date {value!r} (expected YYYY-MM-DD)"
    return f"{err['msg']} (got {value!r})"
