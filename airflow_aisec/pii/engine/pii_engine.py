"""``PIIEngine``: finds PII entities in texts, offline, in this process or in worker processes; and the
engines shared by everything that scans or masks (``get_engine``)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from airflow_aisec import config
from airflow_aisec.catalog.models import RecognizerSpec
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.engine.analyzer import build_analyzer
from airflow_aisec.pii.engine.config import DEFAULT_SCORE_THRESHOLD, MODES, PIPE_BATCH_SIZE, Mode
from airflow_aisec.pii.engine.models import blank_pipeline, load_ner_pipeline
from airflow_aisec.pii.engine.pool import WorkerPool, available_cpus, worker_count
from airflow_aisec.pii.engine.spans import Window, resolve_overlaps, windows
from airflow_aisec.pii.types import Span

log = logging.getLogger(__name__)


class PIIEngine:
    """Finds PII entities in texts, offline: Presidio recognizers plus (in ``ner`` mode) a spaCy model.

    ``mode="ner"`` loads ``spacy_model`` (default ``[aisec] spacy_model``), which must be installed: a
    missing model raises ``PIIError`` instead of being downloaded. ``mode="patterns"`` needs no model:
    only pattern and checksum recognizers run (emails, phones, cards, IBANs, IPs, ...), no names or
    places. ``recognizers`` adds custom pattern recognizers (the catalog's ``RecognizerSpec``);
    ``entities`` restricts what is looked for.

    Construction takes a second or two; share engines with ``get_engine``.
    """

    def __init__(
        self,
        mode: Mode = "ner",
        spacy_model: str | None = None,
        recognizers: Sequence[RecognizerSpec] = (),
        entities: Sequence[str] | None = None,
        language: str = "en",
    ) -> None:
        if mode not in MODES:
            raise PIIError(f"unknown PII engine mode {mode!r} (known: {', '.join(MODES)})")
        self.mode: Mode = mode
        self.language = language
        self.spacy_model = (spacy_model or config.get_setting("spacy_model")) if mode == "ner" else None
        self.recognizers = tuple(recognizers)
        for spec in self.recognizers:
            if not isinstance(spec, RecognizerSpec):
                raise PIIError("recognizers must be RecognizerSpec (see RecognizerSpec.from_mapping)")
        nlp = load_ner_pipeline(self.spacy_model) if self.spacy_model else blank_pipeline(language)
        if nlp.lang != language:
            raise PIIError(f"spaCy model {self.spacy_model!r} is for language {nlp.lang!r}, not {language!r}")
        self._analyzer = build_analyzer(nlp, mode, language, self.recognizers, self.spacy_model)
        self.supported_entities: tuple[str, ...] = tuple(
            sorted(self._analyzer.get_supported_entities(language=language))
        )
        self.entities: tuple[str, ...] = (
            self._check_entities(entities) if entities else self.supported_entities
        )
        # What a worker process that is not forked calls to build an equal engine (it pickles).
        self._rebuild = functools.partial(
            PIIEngine, mode, self.spacy_model, self.recognizers, tuple(self.entities), language
        )
        self._pool: WorkerPool | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"PIIEngine(mode={self.mode!r}, spacy_model={self.spacy_model!r}, language={self.language!r})"

    def _check_entities(self, entities: Iterable[str]) -> tuple[str, ...]:
        wanted = tuple(dict.fromkeys(entities))
        unknown = [e for e in wanted if e not in self.supported_entities]
        if unknown:
            raise PIIError(
                f"the {self.mode} PII engine cannot detect {', '.join(unknown)} "
                f"(it detects: {', '.join(self.supported_entities)})"
            )
        return wanted

    # -- analysis -------------------------------------------------------------------------------------

    def analyze_value(
        self,
        text: str | None,
        entities: Sequence[str] | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    ) -> list[Span]:
        """The entities of one text (see ``analyze_texts``)."""
        return self.analyze_texts([text], entities, score_threshold, processes=1)[0]

    def analyze_texts(
        self,
        texts: Sequence[str | None],
        entities: Sequence[str] | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        processes: int | None = None,
    ) -> list[list[Span]]:
        """The entities of each text, in order, sorted by position and never overlapping.

        Each distinct text is analysed once, in batches through spaCy. Where spans overlap, the one with the
        highest score wins, then the longest, then the better-validated entity. ``None`` and blank texts
        give ``[]``; any other non-string raises ``PIIError``.

        ``processes``: 1 analyses in this process; N > 1 uses a pool of N worker processes (kept for later
        calls until ``close``); ``None`` uses one worker per available CPU when there are more than
        ``PARALLEL_MIN_TEXTS`` distinct texts. Results are the same either way.
        """
        wanted = self._check_entities(entities) if entities else self.entities
        if processes is not None and processes < 1:
            raise PIIError(f"processes must be at least 1, got {processes}")
        unique: dict[str, int] = {}
        positions: list[int] = []
        for i, text in enumerate(texts):
            if text is None or (isinstance(text, str) and not text.strip()):
                positions.append(-1)
            elif isinstance(text, str):
                positions.append(unique.setdefault(text, len(unique)))
            else:
                raise PIIError(f"analyze_texts takes strings or None; item {i} is a {type(text).__name__}")
        found = self._analyze_unique(list(unique), wanted, float(score_threshold), processes)
        return [list(found[p]) if p >= 0 else [] for p in positions]

    def find_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """``SpanFinder`` for masking: ``analyze_texts`` with the engine's entities and default threshold."""
        return self.analyze_texts(texts)

    def spans_in_parallel(
        self, texts: Sequence[str | None], processes: int | None = None, **options: Any
    ) -> list[list[Span]]:
        """``analyze_texts`` on a process pool of ``processes`` workers (default: one per available CPU)."""
        return self.analyze_texts(texts, processes=max(2, processes or available_cpus()), **options)

    def _analyze_unique(
        self, texts: list[str], entities: tuple[str, ...], threshold: float, processes: int | None
    ) -> list[tuple[Span, ...]]:
        if not texts:
            return []
        workers = worker_count(len(texts), processes)
        # One call at a time per engine: a spaCy pipeline and its memory zones are not safe to share
        # between threads. (Forked workers call analyze_unique_local directly, never this lock's copy.)
        with self._lock:
            if workers > 1:
                try:
                    return self._get_pool(workers).analyze(texts, entities, threshold)
                except (BrokenProcessPool, OSError) as exc:
                    # A worker died (out of memory, killed) or could not start: finish here, do not fail.
                    log.warning("PII worker pool failed (%s); analysing in this process", type(exc).__name__)
                    self._close_pool()
            return self.analyze_unique_local(texts, entities, threshold)

    def analyze_unique_local(
        self, texts: Sequence[str], entities: Sequence[str], threshold: float
    ) -> list[tuple[Span, ...]]:
        """Analyse distinct non-blank ``texts`` in this process; one tuple of resolved spans per text."""
        pieces = [
            (index, offset, piece) for index, text in enumerate(texts) for offset, piece in windows(text)
        ]
        spans: list[list[Span]] = [[] for _ in texts]
        nlp_engine = self._analyzer.nlp_engine
        # A memory zone frees the strings spaCy interns for each text (every email, every name): without it
        # a long-running scan keeps all of them, in memory, for good.
        with nlp_engine.get_nlp(self.language).memory_zone():
            artifacts = nlp_engine.process_batch(
                [piece for _, _, piece in pieces], self.language, batch_size=PIPE_BATCH_SIZE
            )
            for (index, offset, piece), (_, nlp_artifacts) in zip(pieces, artifacts, strict=True):
                results = self._analyzer.analyze(
                    piece,
                    self.language,
                    entities=list(entities),
                    score_threshold=threshold,
                    nlp_artifacts=nlp_artifacts,
                )
                window = Window(offset, piece, len(texts[index]))
                spans[index].extend(window.spans(results, threshold))
        return [resolve_overlaps(found) for found in spans]

    # -- worker processes -----------------------------------------------------------------------------

    def _get_pool(self, workers: int) -> WorkerPool:
        if self._pool is not None and self._pool.workers == workers:
            return self._pool
        self._close_pool()
        self._pool = WorkerPool(self, self._rebuild, workers)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any; the engine stays usable (a later call starts new ones)."""
        with self._lock:
            self._close_pool()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> PIIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------------------
# Shared engines


@functools.lru_cache(maxsize=8)
def _cached_engine(
    mode: Mode, spacy_model: str | None, recognizers: tuple[RecognizerSpec, ...], language: str
) -> PIIEngine:
    return PIIEngine(mode, spacy_model, recognizers, None, language)


def get_engine(
    mode: Mode = "ner",
    spacy_model: str | None = None,
    recognizers: Sequence[RecognizerSpec] = (),
    language: str = "en",
) -> PIIEngine:
    """A shared engine for these arguments, built on first use (loading a model takes a second or two)."""
    model = (spacy_model or config.get_setting("spacy_model")) if mode == "ner" else None
    return _cached_engine(mode, model, tuple(recognizers), language)
