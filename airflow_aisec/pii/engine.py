"""Offline PII detection with Presidio: spaCy NER plus pattern recognizers, never touching the network.

Presidio's defaults reach the internet in two places, and both are closed here:

* ``SpacyNlpEngine.load`` downloads a missing spaCy model. We load the model ourselves (after checking it
  is installed) and hand the loaded pipeline to Presidio, so its ``load`` never runs.
* ``EmailRecognizer`` validates matches with ``tldextract.extract``, which fetches the public-suffix list
  on first use and caches it in the user's home. It is replaced by a recognizer that uses the snapshot
  bundled with tldextract, in memory only.

presidio and spaCy are imported inside functions: importing this module stays cheap, and the classes that
extend Presidio's are built on first use by cached factories.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import logging
import math
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from airflow_aisec import config
from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.types import Span

log = logging.getLogger(__name__)

Mode = Literal["ner", "patterns"]
MODES: tuple[Mode, ...] = ("ner", "patterns")

DEFAULT_SCORE_THRESHOLD = 0.35
# Below this many distinct texts a process pool costs more (workers load the model) than it saves.
PARALLEL_MIN_TEXTS = 2000
# Texts per task sent to a worker: large enough to amortise pickling, small enough to balance the load.
CHUNK_TEXTS = 256
# Texts per nlp.pipe batch.
PIPE_BATCH_SIZE = 128
# Longer texts are analysed in overlapping windows: spaCy refuses texts over nlp.max_length, and memory
# grows with the text. The overlap exceeds any entity we detect, so each entity is whole in some window.
WINDOW_CHARS = 50_000
WINDOW_OVERLAP = 500
# Score factor for DATE_TIME spans that are bare numbers of five digits or more (see _Window.spans).
DATE_NUMBER_DISCOUNT = 0.4

# spaCy labels → Presidio entities, as in Presidio's default configuration.
NER_ENTITY_MAPPING: dict[str, str] = {
    "PER": "PERSON",
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "LOCATION": "LOCATION",
    "NORP": "NRP",
    "ORG": "ORGANIZATION",
    "ORGANIZATION": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
# Organisations are not personal data, and small models tag emails and products as ORG.
IGNORED_NER_ENTITIES = ("ORG", "ORGANIZATION")
NER_SCORE = 0.85
MODEL_RELEASES = "https://github.com/explosion/spacy-models/releases"

# Components not needed to find entities. The dependency parser is the expensive one; the tagger, attribute
# ruler and lemmatizer only feed lemmas to Presidio's context enhancer, which matches context words as
# substrings of the surrounding words, so lower-cased tokens serve it as well (see _lemmas) at half the cost.
UNNEEDED_COMPONENTS = (
    "parser",
    "senter",
    "tagger",
    "morphologizer",
    "attribute_ruler",
    "lemmatizer",
    "trainable_lemmatizer",
    "textcat",
    "textcat_multilabel",
    "spancat",
    "entity_linker",
)

# Entities whose recognizer validates a checksum or structure (Luhn, IBAN check digits, public suffix): a
# validated match is trusted over a weak one of the same text.
VALIDATED_ENTITIES = frozenset(
    {"CREDIT_CARD", "IBAN_CODE", "EMAIL_ADDRESS", "IP_ADDRESS", "CRYPTO", "MAC_ADDRESS", "UK_NHS"}
)
# Entities whose patterns match many plain numbers and words: they lose every tie.
WEAK_ENTITIES = frozenset(
    {"US_BANK_NUMBER", "US_DRIVER_LICENSE", "US_PASSPORT", "US_ITIN", "DATE_TIME", "MEDICAL_LICENSE", "NRP"}
)


def entity_rank(entity: str) -> int:
    """0 for checksum-validated entities, 2 for weak ones, 1 otherwise: lower wins a tie."""
    if entity in VALIDATED_ENTITIES:
        return 0
    return 2 if entity in WEAK_ENTITIES else 1


@dataclass(frozen=True)
class PatternSpec:
    """One regular expression of a custom recognizer; a match scores ``score`` before context."""

    name: str
    regex: str
    score: float


DEFAULT_PATTERN_SCORE = 0.5
_SPEC_KEYS = frozenset({"entity", "patterns", "context", "deny_list"})
_PATTERN_KEYS = frozenset({"name", "regex", "score"})


@dataclass(frozen=True)
class CustomRecognizerSpec:
    """A recognizer declared by configuration: patterns and/or a deny list for one entity.

    Frozen and hashable, so engines built from the same specs are shared (see ``get_engine``).
    """

    entity: str
    patterns: tuple[PatternSpec, ...] = ()
    context: tuple[str, ...] = ()
    deny_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.entity, str) or not self.entity.strip():
            raise PIIError("custom recognizer: 'entity' must be a non-empty name such as CUSTOMER_NUMBER")
        if not self.patterns and not self.deny_list:
            raise PIIError(f"custom recognizer {self.entity}: give at least one pattern or a deny_list")
        compiler = importlib.import_module("regex")  # Presidio matches with `regex`, so validate with it
        for pattern in self.patterns:
            where = f"custom recognizer {self.entity}, pattern {pattern.name!r}"
            if not isinstance(pattern.score, int | float) or not 0 <= pattern.score <= 1:
                raise PIIError(f"{where}: score must be a number between 0 and 1")
            try:
                compiler.compile(pattern.regex)
            except (compiler.error, TypeError) as exc:
                raise PIIError(f"{where}: invalid regular expression: {exc}") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CustomRecognizerSpec:
        """Build a spec from configuration: ``{"entity", "patterns": [{"name", "regex", "score"}], ...}``."""
        if not isinstance(data, Mapping):
            raise PIIError("custom recognizer: expected a mapping with 'entity' and 'patterns'")
        entity = data.get("entity")
        unknown = sorted(set(data) - _SPEC_KEYS)
        if unknown:
            raise PIIError(
                f"custom recognizer {entity}: unknown keys {unknown} (known: {sorted(_SPEC_KEYS)})"
            )
        patterns = tuple(_pattern_spec(entity, item) for item in _sequence(entity, data, "patterns"))
        return cls(
            entity=str(entity) if entity is not None else "",
            patterns=patterns,
            context=tuple(str(word) for word in _sequence(entity, data, "context")),
            deny_list=tuple(str(word) for word in _sequence(entity, data, "deny_list")),
        )


def _sequence(entity: object, data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise PIIError(f"custom recognizer {entity}: {key!r} must be a list")
    return list(value)


def _pattern_spec(entity: object, item: object) -> PatternSpec:
    if not isinstance(item, Mapping) or "regex" not in item or set(item) - _PATTERN_KEYS:
        raise PIIError(
            f"custom recognizer {entity}: each pattern needs a 'regex' (and may have 'name', 'score')"
        )
    # The catalog's default score, so a pattern means the same in the catalog and in a recognizers file.
    score = item.get("score", DEFAULT_PATTERN_SCORE)
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise PIIError(f"custom recognizer {entity}: pattern score must be a number between 0 and 1")
    return PatternSpec(name=str(item.get("name") or entity), regex=str(item["regex"]), score=float(score))


# ---------------------------------------------------------------------------------------------------------
# spaCy pipelines


def _missing_model_message(name: str) -> str:
    import spacy

    installed = ", ".join(sorted(spacy.util.get_installed_models())) or "none"
    return (
        f"spaCy model {name!r} is not installed (installed spaCy models: {installed}); "
        f"install it with `pip install {name}` (from spaCy's model releases, {MODEL_RELEASES}) "
        "or set [aisec] spacy_model / AIRFLOW__AISEC__SPACY_MODEL to an installed model; "
        "it is never downloaded at run time"
    )


def load_ner_pipeline(name: str) -> Any:
    """Load the installed spaCy model ``name`` with only what entity recognition needs.

    Raises ``PIIError`` naming the model and how to install it when it is missing: never downloads.
    """
    import spacy

    if not name or not (spacy.util.is_package(name) or Path(name).exists()):
        raise PIIError(_missing_model_message(name))
    try:
        nlp = spacy.load(name, exclude=list(UNNEEDED_COMPONENTS))
    except (OSError, ImportError, ValueError, KeyError) as exc:
        raise PIIError(f"spaCy model {name!r} could not be loaded: {exc}") from exc
    if "ner" not in nlp.pipe_names:
        raise PIIError(f"spaCy model {name!r} has no 'ner' component; use a model with named entities")
    # The shared tok2vec only fed the excluded tagger and parser (NER has its own in the core models);
    # running it would waste half the time. Kept when something still listens to it.
    if "tok2vec" in nlp.pipe_names and not getattr(nlp.get_pipe("tok2vec"), "listeners", True):
        nlp.remove_pipe("tok2vec")
    return nlp


def blank_pipeline(language: str) -> Any:
    """A tokenizer-only pipeline: tokens let context words raise pattern scores, with no model at all."""
    import spacy

    try:
        return spacy.blank(language)
    except (ImportError, KeyError, ValueError) as exc:
        raise PIIError(f"spaCy has no language {language!r}: {exc}") from None


@functools.cache
def _nlp_engine_class() -> type[Any]:
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class PreloadedSpacyNlpEngine(SpacyNlpEngine):
        """A ``SpacyNlpEngine`` around a pipeline loaded by us: its ``load`` never downloads."""

        def __init__(self, nlp: Any, language: str, ner_model_configuration: Any) -> None:
            name = str(nlp.meta.get("name") or "blank")
            super().__init__(
                models=[{"lang_code": language, "model_name": name}],
                ner_model_configuration=ner_model_configuration,
            )
            self._pipeline = nlp
            self.load()

        def load(self) -> None:
            # Presidio declares nlp as None until loaded.
            self.nlp = {self.models[0]["lang_code"]: self._pipeline}  # type: ignore[assignment]

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
            # Same as Presidio's, with lower-cased tokens standing in for lemmas when there is no lemmatizer.
            entities, scores = self._get_updated_entities(
                self._get_entities(doc), self._get_scores_for_entities(doc)
            )
            return NlpArtifacts(
                entities=entities,
                tokens=doc,
                tokens_indices=[token.idx for token in doc],
                lemmas=[token.lemma_ or token.lower_ for token in doc],
                nlp_engine=self,
                language=language,
                scores=scores,
            )

    return PreloadedSpacyNlpEngine


def _nlp_engine(nlp: Any, language: str) -> Any:
    from presidio_analyzer.nlp_engine import NerModelConfiguration

    labels = set(nlp.get_pipe("ner").labels) if "ner" in nlp.pipe_names else set()
    # Unmapped labels (CARDINAL, MONEY, ...) are ignored outright: Presidio would warn on each occurrence.
    ignored = sorted((labels - set(NER_ENTITY_MAPPING)) | set(IGNORED_NER_ENTITIES))
    ner_config = NerModelConfiguration(
        model_to_presidio_entity_mapping=dict(NER_ENTITY_MAPPING),
        labels_to_ignore=ignored,
        low_score_entity_names=[],
        default_score=NER_SCORE,
    )
    return _nlp_engine_class()(nlp, language, ner_config)


# ---------------------------------------------------------------------------------------------------------
# Recognizers


@functools.cache
def _offline_email_class() -> type[Any]:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # The snapshot of the public-suffix list bundled with tldextract; no cache directory, no fetch. Built
    # once per process (parsing the list takes a moment) and warmed so the first email is not slower.
    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
    extractor("warm-up@example.com")

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's email recognizer, validating domains against the bundled public-suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(extractor(pattern_text).fqdn)

    return OfflineEmailRecognizer


def _replacement(recognizer: Any) -> Any:
    """Our offline stand-in for a predefined recognizer, or the recognizer itself."""
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    if type(recognizer) is EmailRecognizer:
        return _offline_email_class()(
            context=list(recognizer.context) or None, supported_language=recognizer.supported_language
        )
    return recognizer


@functools.cache
def _context_enhancer_class() -> type[Any]:
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class ContextWordsEnhancer(LemmaContextAwareEnhancer):
        """Presidio's context enhancer, given only the results of recognizers that have context words.

        It deep-copies every result of every text before looking at any; most results (the model's, ours,
        which weigh their own context) have no context words to look for.
        """

        def enhance_using_context(
            self,
            text: str,
            raw_results: list[Any],
            nlp_artifacts: Any,
            recognizers: list[Any],
            context: list[str] | None = None,
        ) -> list[Any]:
            with_context = {r.id for r in recognizers if r.context}
            wanted: list[Any] = []
            rest: list[Any] = []
            for result in raw_results:
                identifier = (result.recognition_metadata or {}).get("recognizer_identifier")
                (wanted if identifier in with_context or context else rest).append(result)
            if not wanted:
                return rest
            enhanced = super().enhance_using_context(text, wanted, nlp_artifacts, recognizers, context)
            return cast(list[Any], enhanced) + rest

    return ContextWordsEnhancer


def _custom_recognizer(spec: CustomRecognizerSpec, language: str) -> Any:
    from presidio_analyzer import Pattern, PatternRecognizer

    return PatternRecognizer(
        supported_entity=spec.entity,
        name=f"Custom{spec.entity.title().replace('_', '')}Recognizer",
        patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns],
        context=list(spec.context),
        deny_list=list(spec.deny_list),
        supported_language=language,
    )


class _PresidioLogGuard(logging.Filter):
    """Keeps PII out of Presidio's logs.

    Presidio logs analysed text: at DEBUG the words around each match ("Context list is: ..."), at ERROR a
    value its IBAN check failed on. Its DEBUG and INFO records are dropped, and the arguments of the others
    (where those values go) are withheld. Its warning for each predefined recognizer of another language,
    a dozen per engine, is dropped as noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        if str(record.msg).startswith("Recognizer not added to registry because language"):
            return False
        if record.args:
            record.msg = f"{record.msg} [arguments withheld: they may hold PII]"
            record.args = None
        return True


@functools.cache
def _guard_presidio_logs() -> None:
    # Once per process; Presidio logs through these two loggers only.
    for name in ("presidio-analyzer", "decision_process"):
        logging.getLogger(name).addFilter(_PresidioLogGuard())


def _registry(
    nlp_engine: Any,
    mode: Mode,
    language: str,
    custom: Sequence[CustomRecognizerSpec],
    spacy_model: str | None = None,
) -> Any:
    from presidio_analyzer import RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    from airflow_aisec.pii import recognizers as ours

    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
    recognizers = [
        _replacement(recognizer)
        for recognizer in registry.recognizers
        # A blank pipeline finds no entities: do not advertise PERSON and friends in patterns mode.
        if not (mode == "patterns" and isinstance(recognizer, SpacyRecognizer))
        # Presidio's phone and card recognizers miss common formats; ours cover theirs (see recognizers).
        and not ours.superseded(recognizer)
    ]
    # Names in context only with NER: patterns mode does not promise names (see PIIEngine).
    # Names after person cues read the model's dictionary; patterns mode has no model, so none.
    lookups = ours.lookups_path(spacy_model) if mode == "ner" else None
    recognizers.extend(ours.build_recognizers(language, with_names=mode == "ner", lookups=lookups))
    recognizers.extend(_custom_recognizer(spec, language) for spec in custom)
    registry.recognizers = recognizers
    return registry


# ---------------------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class _EngineSpec:
    """Everything needed to rebuild an engine in a worker process."""

    mode: Mode
    spacy_model: str | None
    recognizers: tuple[CustomRecognizerSpec, ...]
    entities: tuple[str, ...] | None
    language: str


class PIIEngine:
    """Finds PII entities in texts, offline: Presidio recognizers plus (in ``ner`` mode) a spaCy model.

    ``mode="ner"`` loads ``spacy_model`` (default ``[aisec] spacy_model``), which must be installed: a
    missing model raises ``PIIError`` instead of being downloaded. ``mode="patterns"`` needs no model:
    only pattern and checksum recognizers run (emails, phones, cards, IBANs, IPs, ...), no names or
    places. ``recognizers`` adds custom pattern recognizers; ``entities`` restricts what is looked for.

    Construction takes a second or two; share engines with ``get_engine``.
    """

    def __init__(
        self,
        mode: Mode = "ner",
        spacy_model: str | None = None,
        recognizers: Sequence[CustomRecognizerSpec] = (),
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
            if not isinstance(spec, CustomRecognizerSpec):
                raise PIIError(
                    "recognizers must be CustomRecognizerSpec (see CustomRecognizerSpec.from_mapping)"
                )
        nlp = load_ner_pipeline(self.spacy_model) if self.spacy_model else blank_pipeline(language)
        if nlp.lang != language:
            raise PIIError(f"spaCy model {self.spacy_model!r} is for language {nlp.lang!r}, not {language!r}")
        self._analyzer = self._build_analyzer(nlp)
        self.supported_entities: tuple[str, ...] = tuple(
            sorted(self._analyzer.get_supported_entities(language=language))
        )
        self.entities: tuple[str, ...] = (
            self._check_entities(entities) if entities else self.supported_entities
        )
        self._spec = _EngineSpec(mode, self.spacy_model, self.recognizers, tuple(self.entities), language)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_workers = 0
        self._pool_finalizer: weakref.finalize[Any, Any] | None = None
        self._lock = threading.RLock()

    def _build_analyzer(self, nlp: Any) -> Any:
        from presidio_analyzer import AnalyzerEngine

        _guard_presidio_logs()
        nlp_engine = _nlp_engine(nlp, self.language)
        registry = _registry(nlp_engine, self.mode, self.language, self.recognizers, self.spacy_model)
        return AnalyzerEngine(
            registry=registry,
            nlp_engine=nlp_engine,
            supported_languages=[self.language],
            context_aware_enhancer=_context_enhancer_class()(),
        )

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
        workers = self._workers_for(len(texts), processes)
        # One call at a time per engine: a spaCy pipeline and its memory zones are not safe to share
        # between threads. (Forked workers call analyze_unique_local directly, never this lock's copy.)
        with self._lock:
            if workers > 1:
                try:
                    return self._analyze_in_pool(texts, entities, threshold, workers)
                except (BrokenProcessPool, OSError) as exc:
                    # A worker died (out of memory, killed) or could not start: finish here, do not fail.
                    log.warning("PII worker pool failed (%s); analysing in this process", type(exc).__name__)
                    self._close_pool()
            return self.analyze_unique_local(texts, entities, threshold)

    def _workers_for(self, count: int, processes: int | None) -> int:
        chunks = math.ceil(count / CHUNK_TEXTS)
        if processes is None:
            processes = available_cpus() if count > PARALLEL_MIN_TEXTS else 1
        # Daemonic processes (some task runners) may not have children.
        if multiprocessing.current_process().daemon:
            return 1
        return max(1, min(processes, chunks))

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
                window = _Window(offset, piece, len(texts[index]))
                spans[index].extend(window.spans(results, threshold))
        return [resolve_overlaps(found) for found in spans]

    # -- process pool ---------------------------------------------------------------------------------

    def _analyze_in_pool(
        self, texts: list[str], entities: tuple[str, ...], threshold: float, workers: int
    ) -> list[tuple[Span, ...]]:
        pool = self._get_pool(workers)
        chunks = [texts[i : i + CHUNK_TEXTS] for i in range(0, len(texts), CHUNK_TEXTS)]
        results: list[tuple[Span, ...]] = []
        for part in pool.map(_worker_analyze, chunks, [entities] * len(chunks), [threshold] * len(chunks)):
            results.extend(part)
        return results

    def _get_pool(self, workers: int) -> ProcessPoolExecutor:
        if self._pool is not None and self._pool_workers == workers:
            return self._pool
        self._close_pool()
        method = _start_method()
        # A forked worker inherits this engine, model loaded; it finds it through a weak reference, so the
        # pool does not keep the engine alive. Other start methods rebuild the engine from its spec.
        source: _EngineSource = weakref.ref(self) if method == "fork" else self._spec
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_worker,
            initargs=(source,),
        )
        self._pool, self._pool_workers = pool, workers
        # Workers hold a model each: stop them when the engine goes away, even without close().
        self._pool_finalizer = weakref.finalize(self, pool.shutdown, wait=False, cancel_futures=True)
        log.info("starting %d PII worker processes (%s)", workers, method)
        return pool

    def close(self) -> None:
        """Stop the worker processes, if any; the engine stays usable (a later call starts new ones)."""
        with self._lock:
            self._close_pool()

    def _close_pool(self) -> None:
        if self._pool_finalizer is not None:
            self._pool_finalizer.detach()
            self._pool_finalizer = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pool_workers = None, 0

    def __enter__(self) -> PIIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _start_method() -> str:
    # fork where available (Linux), as spaCy's own nlp.pipe(n_process=...) does: workers start at once with
    # the parent's loaded model (copy-on-write) and the parent's __main__ is not re-run. forkserver and spawn
    # re-import the parent's main script in every worker (a script without an `if __name__ == "__main__"`
    # guard would run again there) and load the model again, a few seconds per worker. spaCy, Presidio and
    # numpy's OpenBLAS are fork-safe; the pool is created between calls, never while a spaCy batch runs.
    methods = multiprocessing.get_all_start_methods()
    return "fork" if "fork" in methods else "spawn"


_EngineSource = Callable[[], "PIIEngine | None"] | _EngineSpec
_WORKER_ENGINE: PIIEngine | None = None


def _init_worker(source: _EngineSource) -> None:
    global _WORKER_ENGINE
    if isinstance(source, _EngineSpec):
        _WORKER_ENGINE = PIIEngine(
            source.mode, source.spacy_model, source.recognizers, source.entities, source.language
        )
    else:
        _WORKER_ENGINE = source()


def _worker_analyze(texts: list[str], entities: tuple[str, ...], threshold: float) -> list[tuple[Span, ...]]:
    if _WORKER_ENGINE is None:  # pragma: no cover - the initializer always runs first
        raise PIIError("PII worker process has no engine")
    return _WORKER_ENGINE.analyze_unique_local(texts, entities, threshold)


# ---------------------------------------------------------------------------------------------------------
# Spans


def windows(text: str) -> list[tuple[int, str]]:
    """``(offset, piece)`` windows covering ``text``: the text itself unless longer than ``WINDOW_CHARS``.

    Windows overlap by ``WINDOW_OVERLAP`` characters and end at whitespace where possible, so an entity cut
    by one window's end is whole in the next.
    """
    if len(text) <= WINDOW_CHARS:
        return [(0, text)]
    result: list[tuple[int, str]] = []
    start = 0
    while True:
        end = min(start + WINDOW_CHARS, len(text))
        if end < len(text):
            # End at the last whitespace of the window's tail, so fewer entities are cut at all.
            tail = end - WINDOW_OVERLAP // 2
            cut = max(text.rfind(" ", tail, end), text.rfind("\n", tail, end))
            end = cut if cut > start else end
        result.append((start, text[start:end]))
        if end >= len(text):
            return result
        start = end - WINDOW_OVERLAP


@dataclass(frozen=True)
class _Window:
    """``piece`` is ``text[offset:offset + len(piece)]`` of a text ``total`` characters long."""

    offset: int
    piece: str
    total: int

    def spans(self, results: Iterable[Any], threshold: float) -> Iterator[Span]:
        """Presidio's results as spans of the whole text, less truncated, implausible and discounted ones."""
        from airflow_aisec.pii import recognizers

        cut_before = self.offset > 0
        cut_after = self.offset + len(self.piece) < self.total
        for result in results:
            start, end = int(result.start), int(result.end)
            # A span touching a cut edge may be a truncated entity; the overlapping window holds it whole.
            if (cut_before and start == 0) or (cut_after and end == len(self.piece)):
                continue
            if not 0 <= start < end <= len(self.piece):
                continue
            entity = str(result.entity_type)
            if not recognizers.from_ours(result) and not recognizers.plausible(
                entity, self.piece, start, end
            ):
                continue
            score = min(1.0, max(0.0, float(result.score)))
            if entity == "DATE_TIME" and _bare_number(self.piece[start:end]):
                # spaCy tags long bare numbers (phone, account, card numbers) as DATE: keep them only when
                # nothing better claims them, and not at all below the threshold.
                score *= DATE_NUMBER_DISCOUNT
                if score < threshold:
                    continue
            yield Span(entity, start + self.offset, end + self.offset, score)


def _bare_number(text: str) -> bool:
    digits = text.replace(" ", "")
    return len(digits) >= 5 and digits.isdigit()


def resolve_overlaps(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Non-overlapping spans sorted by start: highest score wins, then the longest, then ``entity_rank``."""
    ranked = sorted(
        set(spans), key=lambda s: (-s.score, s.start - s.end, entity_rank(s.entity), s.start, s.entity)
    )
    starts: list[int] = []
    kept: list[Span] = []
    for span in ranked:
        i = bisect.bisect_right(starts, span.start)
        # kept is sorted by start and non-overlapping: only the neighbours can overlap the new span.
        if i > 0 and kept[i - 1].end > span.start:
            continue
        if i < len(kept) and kept[i].start < span.end:
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return tuple(kept)


# ---------------------------------------------------------------------------------------------------------
# Shared engines


@functools.lru_cache(maxsize=8)
def _cached_engine(
    mode: Mode, spacy_model: str | None, recognizers: tuple[CustomRecognizerSpec, ...], language: str
) -> PIIEngine:
    return PIIEngine(mode, spacy_model, recognizers, None, language)


def get_engine(
    mode: Mode = "ner",
    spacy_model: str | None = None,
    recognizers: Sequence[CustomRecognizerSpec] = (),
    language: str = "en",
) -> PIIEngine:
    """A shared engine for these arguments, built on first use (loading a model takes a second or two)."""
    model = (spacy_model or config.get_setting("spacy_model")) if mode == "ner" else None
    return _cached_engine(mode, model, tuple(recognizers), language)


def clear_engines() -> None:
    """Forget the shared engines; their worker processes stop when the engines are collected."""
    _cached_engine.cache_clear()
