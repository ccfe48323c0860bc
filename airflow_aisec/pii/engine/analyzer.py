"""Presidio's ``AnalyzerEngine`` assembled for us: our NLP engine and registry, a lean context enhancer,
and Presidio's logs kept free of PII."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, cast

from airflow_aisec.catalog.models import RecognizerSpec
from airflow_aisec.pii.engine.config import Mode
from airflow_aisec.pii.engine.nlp_engine import nlp_engine
from airflow_aisec.pii.engine.registry import build_registry


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


def build_analyzer(
    nlp: Any, mode: Mode, language: str, custom: Sequence[RecognizerSpec], spacy_model: str | None
) -> Any:
    """A Presidio ``AnalyzerEngine`` over the loaded spaCy pipeline ``nlp``, recognizing for ``mode``."""
    from presidio_analyzer import AnalyzerEngine

    _guard_presidio_logs()
    engine = nlp_engine(nlp, language)
    return AnalyzerEngine(
        registry=build_registry(engine, mode, language, custom, spacy_model),
        nlp_engine=engine,
        supported_languages=[language],
        context_aware_enhancer=_context_enhancer_class()(),
    )
