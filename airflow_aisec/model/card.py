"""A model card gathered from what the product knows: the audit log's lineage, the catalog, and the user.

``gather_card`` follows the model's lineage node (``model://<name>``) upstream through the audit log, entry
searches only (dataset by dataset, never the whole log), to every dataset it was trained on, directly or
through earlier steps (a masked copy of a landing copy); for each it takes the PII categories, masking,
encryption, purposes and retention the catalog declares, and the masking and encryption the log recorded on
the way. Then the newest signature and verification of the model, the newest drift and bias checks (those of
the signing's DAG run first) and the metrics and notes the user supplies. Everything comes from catalog
declarations and audit entries, which hold names, digests and aggregates: a card never holds a data value.
Rendering is ``card_render``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aisec.audit.lineage import LineageGraph
from airflow_aisec.audit.query import EntryQuery
from airflow_aisec.exceptions import ModelCardError
from airflow_aisec.model.results import model_node

if TYPE_CHECKING:
    from airflow_aisec.audit import AuditLog, Entry
    from airflow_aisec.catalog.models import Catalog, Dataset

MAX_ENTRIES = 1000  # entries read per dataset when following lineage
MAX_DATASETS = 100  # datasets followed upstream of one model
PROTECTING_ACTIONS = ("pii.mask", "dataset.encrypt", "key.rotate")
Scalar = str | int | float | bool | None


@dataclasses.dataclass(frozen=True)
class Step:
    """A recorded masking or encryption on the way to a training dataset: the action and its entry."""

    action: str
    index: int
    source: str | None = None  # the dataset it read, when it wrote a new one

    def label(self) -> str:
        """``pii.mask #12 (from support_tickets_landing)``."""
        return f"{self.action} #{self.index}" + (f" (from {self.source})" if self.source else "")


@dataclasses.dataclass(frozen=True)
class TrainingDataset:
    """A dataset upstream of the model: what the catalog declares of it and what the log recorded."""

    name: str
    direct: bool  # the model was trained on it (not only on a dataset made from it)
    feeds: tuple[str, ...]  # the nodes it feeds on the way to the model
    in_catalog: bool
    pii: dict[str, str] = dataclasses.field(default_factory=dict)  # column -> entity
    masking: dict[str, str] = dataclasses.field(default_factory=dict)  # column -> declared strategy
    encrypted: dict[str, str] = dataclasses.field(default_factory=dict)  # column -> catalog key name
    purposes: tuple[str, ...] = ()
    retention: str | None = None
    applied: tuple[Step, ...] = ()


@dataclasses.dataclass(frozen=True)
class Recorded:
    """One audit entry the card cites: its index, time, outcome and the details the card shows."""

    action: str
    index: int
    time: str
    outcome: str
    details: dict[str, Any]
    run_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """Everything a model card says, as plain data (``as_dict``) for rendering, XCom and JSON."""

    name: str
    node: str
    catalog: str
    datasets: tuple[TrainingDataset, ...]
    signature: Recorded | None
    verification: Recorded | None
    drift: Recorded | None
    bias: Recorded | None
    metrics: dict[str, Scalar]
    notes: str = ""
    log_size: int = 0

    @property
    def verified(self) -> bool:
        """Whether the newest verification, made after the newest signature, succeeded on the model where it
        was signed and against the manifest it signed (a verified copy elsewhere says nothing of this one)."""
        sig, ver = self.signature, self.verification
        return bool(
            sig
            and ver
            and ver.index > sig.index
            and ver.outcome == "success"
            and ver.details.get("manifest_sha256") == sig.details.get("manifest_sha256")
            and ver.details.get("path") == sig.details.get("path")
        )

    def as_dict(self) -> dict[str, Any]:
        """The card as plain JSON data."""
        data = dataclasses.asdict(self)
        data["verified"] = self.verified
        return data


def gather_card(
    log: AuditLog,
    catalog: Catalog | None,
    model: str,
    *,
    metrics: Mapping[str, Scalar] | None = None,
    notes: str = "",
) -> ModelCard:
    """The card of ``model`` (a name or ``model://<name>``) from ``log`` and ``catalog``.

    A model the log never signed is refused: ``ModelCardError`` naming it.
    """
    node = model_node(model)
    signature = _newest(log, EntryQuery(action="model.sign", dataset=node, outcome="success"))
    if signature is None:
        raise ModelCardError(f"no model.sign entry for {node} in the audit log: sign the model first")
    graph = _lineage(log, node)
    run_id = signature.run_id
    datasets = _training_datasets(graph, node, catalog)
    names = [d.name for d in datasets] + [node]
    return ModelCard(
        name=node.removeprefix("model://"),
        node=node,
        catalog=catalog.source if catalog is not None else "",
        datasets=datasets,
        signature=_shown(signature, SIGNATURE_FIELDS),
        verification=_shown(_verification_of(log, node, signature.details.get("path")), VERIFY_FIELDS),
        drift=_shown(_check(log, "drift.check", run_id, names), DRIFT_FIELDS),
        bias=_bias(_check(log, "bias.check", run_id, names)),
        metrics=dict(metrics or {}),
        notes=notes,
        log_size=log.size(),
    )


SIGNATURE_FIELDS = (
    "path",
    "signature",
    "key",
    "key_fingerprint",
    "manifest_sha256",
    "bundle_sha256",
    "file_count",
)
VERIFY_FIELDS = ("path", "key", "manifest_sha256", "reason", "changed", "missing", "added")
DRIFT_FIELDS = (
    "reference",
    "current",
    "reference_rows",
    "current_rows",
    "drifted_share",
    "drift_share",
    "columns",
)


def _recorded(entry: Entry) -> Recorded:
    data = entry.data
    actor = data.get("actor") or {}
    details = data.get("details")
    return Recorded(
        action=entry.action,
        index=entry.index,
        time=str(data.get("time") or ""),
        outcome=str(data.get("outcome") or "success"),
        details=dict(details) if isinstance(details, dict) else {},
        run_id=str(actor["run_id"]) if isinstance(actor, dict) and actor.get("run_id") else None,
    )


def _newest(log: AuditLog, query: EntryQuery) -> Recorded | None:
    found = log.newest(query, 1)
    return _recorded(found[0]) if found else None


def _verification_of(log: AuditLog, node: str, path: object) -> Recorded | None:
    """The newest verification of the model where it was signed (copies, e.g. a published one, are verified
    at their own paths and say nothing of it); among the newest hundred verifications of ``node``."""
    for entry in log.newest(EntryQuery(action="model.verify", dataset=node), 100):
        recorded = _recorded(entry)
        if recorded.details.get("path") == path:
            return recorded
    return None


def _shown(recorded: Recorded | None, keep: tuple[str, ...]) -> Recorded | None:
    """``recorded`` with only the details the card shows (names, digests, counts)."""
    if recorded is None:
        return None
    details = {k: recorded.details[k] for k in keep if recorded.details.get(k) not in (None, [], {})}
    return dataclasses.replace(recorded, details=details)


def _check(log: AuditLog, action: str, run_id: str | None, names: list[str]) -> Recorded | None:
    """The newest ``action`` entry of the signing's DAG run, else the newest about one of ``names``."""
    if run_id:
        found = _newest(log, EntryQuery(action=action, run_id=run_id))
        if found is not None:
            return found
    candidates = [_newest(log, EntryQuery(action=action, dataset=name)) for name in names]
    known = [c for c in candidates if c is not None]
    return max(known, key=lambda c: c.index) if known else None


def _bias(recorded: Recorded | None) -> Recorded | None:
    """A bias check's totals and each attribute's metrics; group labels stay in the check's own report."""
    if recorded is None:
        return None
    d = recorded.details
    attributes = [
        {
            "attribute": a.get("attribute"),
            "compared_groups": a.get("compared_groups"),
            "small_groups": a.get("small_groups"),
            "metrics": a.get("metrics") or {},
            "passed": a.get("passed"),
        }
        for a in d.get("attributes") or []
        if isinstance(a, dict)
    ]
    keep: dict[str, Any] = {k: d[k] for k in ("dataset", "rows", "prediction", "label", "passed") if k in d}
    return dataclasses.replace(recorded, details={**keep, "attributes": attributes})


def _lineage(log: AuditLog, node: str) -> LineageGraph:
    """The graph of the entries naming ``node`` and, transitively, each dataset found upstream of it."""
    graph, seen, frontier, followed = LineageGraph(), set[int](), [node], {node}
    while frontier and len(followed) <= MAX_DATASETS:
        name = frontier.pop(0)
        for entry in log.newest(EntryQuery(dataset=name), MAX_ENTRIES):
            if entry.index not in seen:
                seen.add(entry.index)
                graph.add(entry)
        for source, target in sorted(graph.edges):
            if target == name and source not in followed:
                followed.add(source)
                frontier.append(source)
    return graph


def _training_datasets(
    graph: LineageGraph, node: str, catalog: Catalog | None
) -> tuple[TrainingDataset, ...]:
    edges = graph.upstream(node)
    feeds: dict[str, list[str]] = {}
    for source, target, _ in edges:
        feeds.setdefault(source, [])
        if target not in feeds[source]:
            feeds[source].append(target)
    found = []
    for name, targets in feeds.items():
        spec = catalog.datasets.get(name) if catalog is not None else None
        applied = _applied(graph, name)
        found.append(_described(name, node in targets, tuple(targets), spec, applied))
    return tuple(found)


def _applied(graph: LineageGraph, name: str) -> tuple[Step, ...]:
    """The masking and encryption recorded into ``name``: edges from other datasets, and steps on it."""
    steps: dict[int, Step] = {}
    for (source, target), labels in graph.edges.items():
        if target == name:
            for action, index in map(_parse_label, labels):
                if action in PROTECTING_ACTIONS:
                    steps[index] = Step(action, index, source)
    for action, index in map(_parse_label, graph.operations.get(name, [])):
        if action in PROTECTING_ACTIONS and index not in steps:
            steps[index] = Step(action, index)
    return tuple(steps[i] for i in sorted(steps))


def _parse_label(label: str) -> tuple[str, int]:
    """``("pii.mask", 12)`` from the graph's label ``"pii.mask #12"``."""
    action, _, index = label.rpartition(" #")
    return action, int(index)


def _described(
    name: str, direct: bool, feeds: tuple[str, ...], spec: Dataset | None, applied: tuple[Step, ...]
) -> TrainingDataset:
    if spec is None:
        return TrainingDataset(name, direct, feeds, in_catalog=False, applied=applied)
    encrypted = {c: spec.encryption.key for c in spec.encryption.columns} if spec.encryption else {}
    retention = spec.retention
    return TrainingDataset(
        name,
        direct,
        feeds,
        in_catalog=True,
        pii={c: col.pii for c, col in spec.columns.items() if col.pii},
        masking={c: col.mask.strategy for c, col in spec.columns.items() if col.mask},
        encrypted=encrypted,
        purposes=tuple(spec.purposes),
        retention=f"{retention.keep_for} from {retention.column}" if retention else None,
        applied=applied,
    )


def load_metrics(path: str | Path) -> dict[str, Scalar]:
    """The metrics in a JSON or YAML file: a mapping of names to numbers, text, booleans or nulls."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except OSError as e:
        raise ModelCardError(f"metrics file {file} cannot be read: {e.strerror}") from None
    except (ValueError, yaml.YAMLError):
        raise ModelCardError(f"metrics file {file} is not valid JSON or YAML") from None
    if not isinstance(data, dict):
        raise ModelCardError(f"metrics file {file} must hold a mapping of metric names to values")
    return check_metrics(data, str(file))


def check_metrics(data: Mapping[Any, Any], where: str = "metrics") -> dict[str, Scalar]:
    """``data`` as metrics; a value that is not a scalar is refused, naming the metric (not the value)."""
    metrics: dict[str, Scalar] = {}
    for key, value in data.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise ModelCardError(
                f"{where}: metric {str(key)!r} is a {type(value).__name__}; use a number or text"
            )
        metrics[str(key)] = value
    return metrics


def load_notes(path: str | Path) -> str:
    """The notes in a text or Markdown file."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ModelCardError(f"notes file {file} cannot be read as UTF-8 text") from None
