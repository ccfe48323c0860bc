"""The recognizers of an engine: Presidio's predefined ones made offline, ours, and the custom ones."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from airflow_aisec.catalog.models import RecognizerSpec
from airflow_aisec.pii.engine.config import Mode


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


def custom_recognizer(spec: RecognizerSpec, language: str) -> Any:
    """The Presidio pattern recognizer of a custom recognizer (catalog or ``[aisec] recognizers``)."""
    from presidio_analyzer import Pattern, PatternRecognizer

    return PatternRecognizer(
        supported_entity=spec.entity,
        name=f"Custom{spec.entity.title().replace('_', '')}Recognizer",
        patterns=[Pattern(p.name or spec.entity, p.regex, p.score) for p in spec.patterns],
        context=list(spec.context),
        deny_list=list(spec.deny_list),
        supported_language=language,
    )


def build_registry(
    nlp_engine: Any,
    mode: Mode,
    language: str,
    custom: Sequence[RecognizerSpec],
    spacy_model: str | None = None,
) -> Any:
    """A Presidio ``RecognizerRegistry`` for ``mode``: predefined, ours (``pii.recognizers``), ``custom``."""
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
    recognizers.extend(custom_recognizer(spec, language) for spec in custom)
    registry.recognizers = recognizers
    return registry
