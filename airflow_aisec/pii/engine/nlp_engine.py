"""Presidio's spaCy NLP engine around a pipeline we loaded (see ``models``), so Presidio never loads one."""

from __future__ import annotations

import functools
from typing import Any

from airflow_aisec.pii.engine.config import IGNORED_NER_ENTITIES, NER_ENTITY_MAPPING, NER_SCORE


@functools.cache
def _preloaded_engine_class() -> type[Any]:
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


def nlp_engine(nlp: Any, language: str) -> Any:
    """A Presidio NLP engine for the loaded spaCy pipeline ``nlp``, its labels mapped to Presidio entities."""
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
    return _preloaded_engine_class()(nlp, language, ner_config)
