"""Column classification: which columns of a dataset hold which PII, judged from names and sampled values.

A scan streams the dataset once and keeps a uniform sample (a reservoir) of at most ``sample`` non-null
values per column, so the sample covers every file and batch while memory stays bounded. Nested fields are
reported by path: ``address.city`` for a struct field, ``phones[]`` for list elements.

Values decide, names help: a column named ``col_7`` holding emails is ``EMAIL_ADDRESS``; a column named
``email`` holding integers is not PII. A name only decides when the values are compatible but ambiguous
(single first names that NER does not recognise, street addresses) and raises the confidence otherwise.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_aisec.exceptions import DatasetIOError, PIIError
from airflow_aisec.io import FileInfo, Location, list_files, read_dataset
from airflow_aisec.pii.engine import PIIEngine, entity_rank
from airflow_aisec.pii.hints import Hint, date_hint, name_hint
from airflow_aisec.pii.sampling import Kind, SampledColumn, Sampler
from airflow_aisec.pii.types import FREE_TEXT, Span

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Dataset

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = 500
# A value is "wholly" an entity when that entity's spans cover this share of its letters and digits.
WHOLE_VALUE_COVERAGE = 0.8
# A column is an entity when this share of its sampled values wholly are that entity.
ENTITY_MIN_SHARE = 0.5
# A column is free text when its values are this long (median words) and this share of them hold entities.
FREE_TEXT_MIN_WORDS = 5
FREE_TEXT_MIN_SHARE = 0.2
# A name hint that needs evidence from values is taken when at least this share of values support it.
HINT_MIN_SUPPORT = 0.2
# Confidence of a column decided by its name alone (values compatible but silent), before any support.
NAME_ONLY_CONFIDENCE = 0.55
# Confidence of date columns: birth dates are personal; other dates may be (a visit, a hire) or not.
BIRTH_DATE_CONFIDENCE = 0.95
OTHER_DATE_CONFIDENCE = 0.3

# Entities worth looking for in plain numbers: phone and card numbers stored as integers. Names, places
# and dates are not, and the weak numeric patterns (bank account, licence numbers) match any long number.
NUMERIC_ENTITIES = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "UK_NHS", "US_ITIN"})


@dataclass(frozen=True)
class ColumnFinding:
    """What a scan concluded about one column.

    ``entity`` is an entity type, ``"free_text"`` or None (no PII found); ``confidence`` in [0, 1] is how
    sure the scan is that the column holds ``entity`` (0.0 when None); ``sampled`` non-null values were
    examined, ``matches`` of them supported the conclusion.
    """

    column: str
    entity: str | None
    confidence: float
    sampled: int
    matches: int


# ---------------------------------------------------------------------------------------------------------
# Evidence from values


@dataclass
class _Evidence:
    """What the sampled values of one column say."""

    sampled: int = 0
    whole: Counter[str] = field(default_factory=Counter)  # entity → values wholly that entity
    partial: Counter[str] = field(default_factory=Counter)  # entity → values containing that entity
    with_entities: int = 0  # values containing any entity
    lettered: int = 0  # values containing a letter
    words: list[int] = field(default_factory=list)

    def add(self, value: str, spans: Sequence[Span]) -> None:
        self.sampled += 1
        self.words.append(len(value.split()))
        self.lettered += any(char.isalpha() for char in value)
        if spans:
            self.with_entities += 1
            self.partial.update({span.entity for span in spans})
        entity = _whole_value_entity(value, spans)
        if entity is not None:
            self.whole[entity] += 1

    def top(self) -> tuple[str | None, int]:
        """The entity most values wholly are; ties go to the better-validated entity."""
        if not self.whole:
            return None, 0
        entity = min(self.whole, key=lambda e: (-self.whole[e], entity_rank(e), e))
        return entity, self.whole[entity]

    def share(self, count: int) -> float:
        return count / self.sampled if self.sampled else 0.0


def _alnum(text: str) -> int:
    return sum(1 for char in text if char.isalnum())


def _whole_value_entity(value: str, spans: Sequence[Span]) -> str | None:
    """The entity whose spans cover most of the value's letters and digits, if they cover enough."""
    total = _alnum(value)
    if not total or not spans:
        return None
    covered: Counter[str] = Counter()
    best_score: dict[str, float] = {}
    for span in spans:  # spans never overlap, so per-entity sums are unions
        covered[span.entity] += _alnum(value[span.start : span.end])
        best_score[span.entity] = max(best_score.get(span.entity, 0.0), span.score)
    entity = min(covered, key=lambda e: (-covered[e], entity_rank(e), -best_score[e], e))
    return entity if covered[entity] / total >= WHOLE_VALUE_COVERAGE else None


def _number_text(value: Any) -> str:
    """A number as the digits someone would have typed: 2125550101.0 → "2125550101"."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------------------------------------
# Classification


def _blend(share: float, hint: Hint | None, entity: str) -> float:
    """Confidence from the share of matching values, raised by an agreeing name, lowered by another."""
    if hint is None:
        return share
    if hint.entity == entity:
        return share + (1.0 - share) * 0.5
    return share * 0.9


def _hint_fits(hint: Hint, evidence: _Evidence, kind: Kind) -> bool:
    """Whether the values leave room for what the name says."""
    if kind == "number" and not hint.numeric:
        return False
    if hint.needs_values:
        return evidence.share(evidence.partial[hint.entity]) >= HINT_MIN_SUPPORT
    if kind == "number" or hint.numeric:
        return True  # postcodes: digits or letters, both fine
    if evidence.share(evidence.lettered) < 0.8:
        return False
    return hint.entity != "PERSON" or statistics.median(evidence.words) <= 5


def _classify_date_values(path: str, share: float, count: int) -> tuple[str | None, float, int]:
    hint = date_hint(path)
    if hint == "event":
        return None, 0.0, 0
    if hint == "birth":
        return "DATE_TIME", share + (1.0 - share) * 0.5, count
    return "DATE_TIME", OTHER_DATE_CONFIDENCE * share, count


def _classify(path: str, kind: Kind, evidence: _Evidence) -> tuple[str | None, float, int]:
    """``(entity, confidence, matches)`` of a text or number column from its name and sampled values."""
    if not evidence.sampled:
        return None, 0.0, 0
    hint = name_hint(path)
    entity, count = evidence.top()
    share = evidence.share(count)
    if entity is not None and share >= ENTITY_MIN_SHARE:
        if entity == "DATE_TIME":
            return _classify_date_values(path, share, count)
        return entity, _blend(share, hint, entity), count
    if hint is not None and _hint_fits(hint, evidence, kind):
        support = evidence.partial[hint.entity]
        return (
            hint.entity,
            NAME_ONLY_CONFIDENCE + (1 - NAME_ONLY_CONFIDENCE) * evidence.share(support),
            support,
        )
    mentions = evidence.share(evidence.with_entities)
    if statistics.median(evidence.words) >= FREE_TEXT_MIN_WORDS and mentions >= FREE_TEXT_MIN_SHARE:
        return FREE_TEXT, min(1.0, 0.5 + mentions / 2), evidence.with_entities
    return None, 0.0, 0


def _classify_dates(column: SampledColumn) -> tuple[str | None, float, int]:
    hint = date_hint(column.path)
    if not column.non_null or hint == "event":
        return None, 0.0, 0
    confidence = BIRTH_DATE_CONFIDENCE if hint == "birth" else OTHER_DATE_CONFIDENCE
    return "DATE_TIME", confidence, min(column.non_null, column.reservoir.size)


def _column_kind(column: SampledColumn) -> Kind:
    """One kind per column; a column whose type changed between files is judged as text."""
    kinds = column.kinds - {"other"} or column.kinds
    if len(kinds) == 1:
        return next(iter(kinds))
    return "text" if kinds else "other"


def _analyse(
    columns: Iterable[SampledColumn], engine: PIIEngine, entities: Sequence[str] | None
) -> dict[str, _Evidence]:
    """Evidence for each column, from one ``analyze_texts`` call over all their samples."""
    chosen = list(columns)
    texts = [
        [v if isinstance(v, str) else _number_text(v) for v in column.reservoir.values] for column in chosen
    ]
    flat = [text for values in texts for text in values]
    spans = engine.analyze_texts(flat, entities=entities) if flat and entities != () else [[] for _ in flat]
    result: dict[str, _Evidence] = {}
    position = 0
    for column, values in zip(chosen, texts, strict=True):
        evidence = result[column.path] = _Evidence()
        for value in values:
            evidence.add(value, spans[position])
            position += 1
    return result


def _numeric_entities(engine: PIIEngine) -> tuple[str, ...]:
    custom = {spec.entity for spec in engine.recognizers}
    return tuple(e for e in engine.entities if e in NUMERIC_ENTITIES or e in custom)


def _findings(sampler: Sampler, engine: PIIEngine) -> dict[str, ColumnFinding]:
    kinds = {path: _column_kind(column) for path, column in sampler.columns.items()}
    evidence = _analyse((c for c in sampler.columns.values() if kinds[c.path] == "text"), engine, None)
    evidence |= _analyse(
        (c for c in sampler.columns.values() if kinds[c.path] == "number"),
        engine,
        _numeric_entities(engine),
    )
    findings: dict[str, ColumnFinding] = {}
    for path, column in sampler.columns.items():
        kind = kinds[path]
        if kind == "date":
            entity, confidence, matches = _classify_dates(column)
            sampled = min(column.non_null, sampler.sample)
        elif path in evidence:
            entity, confidence, matches = _classify(path, kind, evidence[path])
            sampled = evidence[path].sampled
        else:
            entity, confidence, matches, sampled = None, 0.0, 0, 0
        confidence = round(min(1.0, max(0.0, confidence)), 4) if entity else 0.0
        findings[path] = ColumnFinding(path, entity, confidence, sampled, matches)
    return findings


def scan_batches(
    batches: Iterable[pa.RecordBatch], engine: PIIEngine, sample: int = DEFAULT_SAMPLE, seed: int = 0
) -> dict[str, ColumnFinding]:
    """Classify every column (and nested field) of a stream of record batches.

    Up to ``sample`` non-null values per column are sampled uniformly across all batches (the same
    ``seed`` gives the same sample), then judged together with the column's name; see ``ColumnFinding``.
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise PIIError(f"sample must be a positive number of values, got {sample!r}")
    sampler = Sampler(sample, seed)
    batch_count = 0
    for batch in batches:
        if not isinstance(batch, pa.RecordBatch):
            raise PIIError(f"scan_batches takes pyarrow RecordBatches; got a {type(batch).__name__}")
        sampler.add(batch)
        batch_count += 1
    findings = _findings(sampler, engine)
    found = sum(1 for finding in findings.values() if finding.entity)
    log.info(
        "PII scan: %d rows in %d batches, %d columns, %d with PII",
        sampler.rows,
        batch_count,
        len(findings),
        found,
    )
    for finding in findings.values():
        log.debug(
            "column %s: %s (confidence %.2f, %d of %d sampled values)",
            finding.column,
            finding.entity,
            finding.confidence,
            finding.matches,
            finding.sampled,
        )
    return findings


def scan_dataset(
    location: Location,
    fmt: str,
    engine: PIIEngine,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    reader: Callable[[FileInfo, str], Iterator[pa.RecordBatch]] | None = None,
) -> dict[str, ColumnFinding]:
    """``scan_batches`` over every file of a dataset, streamed (see ``airflow_aisec.io.read_dataset``).

    A location without any file of ``fmt`` is an error: an empty scan must not pass as "no PII found".
    """
    files = list_files(location, fmt)
    if not files:
        raise DatasetIOError(f"{location.uri}: no {fmt} files to scan")
    if reader is None:
        return scan_batches(read_dataset(location, fmt), engine, sample=sample, seed=seed)
    batches = (batch for info in files for batch in reader(info, fmt))
    return scan_batches(batches, engine, sample=sample, seed=seed)


def as_json(findings: dict[str, ColumnFinding]) -> dict[str, Any]:
    """``{"columns": {column: {"entity": ..., "confidence": ...}}}``, for reports and XCom."""
    return {
        "columns": {
            path: {"entity": finding.entity, "confidence": float(finding.confidence)}
            for path, finding in findings.items()
        }
    }


def _enclosing(path: str) -> list[str]:
    """The paths that hold ``path``, innermost first: ``a.b[].c`` → ``a.b[]``, ``a.b``, ``a``."""
    cuts = [m.start() for m in re.finditer(r"\.|\[\]", path) if m.start() > 0]
    return [path[:cut] for cut in reversed(cuts)]


# What a review (``pii: none``) cannot vouch for: values whose shape is checked (a domain, a checksum) and
# that single out a person wherever they are. Found in a reviewed column, they contradict the review.
CONTRADICT_REVIEW = frozenset({"EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN"})


def undeclared(
    findings: dict[str, ColumnFinding], dataset: Dataset, min_confidence: float = 0.5
) -> list[ColumnFinding]:
    """PII the catalog does not declare: columns found to hold PII (at ``min_confidence`` or more) that are
    missing from ``dataset.columns`` or declared without ``pii``. A nested field counts as declared when its
    own path, or a declared path holding it (``items[]``, ``items``), is declared as PII. A column declared
    ``pii: none`` (reviewed, not personal) counts as declared, for its own path only: it vouches for no field
    found inside it, nor for e-mail addresses, card numbers, IBANs or SSNs found in it
    (``CONTRADICT_REVIEW``), which say the review got it wrong.
    """
    result = []
    for path, finding in findings.items():
        if finding.entity is None or finding.confidence < min_confidence:
            continue
        own = dataset.columns.get(path)
        if own is not None and own.reviewed and finding.entity not in CONTRADICT_REVIEW:
            continue
        holders = [dataset.columns[p] for p in _enclosing(path) if p in dataset.columns]
        if not any(c.pii for c in [*([own] if own is not None else []), *holders]):
            result.append(finding)
    return result
