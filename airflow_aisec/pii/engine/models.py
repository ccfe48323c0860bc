"""Installed spaCy models, loaded offline: a missing model is an error naming it, never a download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import PIIError

MODEL_RELEASES = "https://github.com/explosion/spacy-models/releases"

# Components not needed to find entities. The dependency parser is the expensive one; the tagger, attribute
# ruler and lemmatizer only feed lemmas to Presidio's context enhancer, which matches context words as
# substrings of the surrounding words, so lower-cased tokens serve it as well (see nlp_engine) at half the
# cost.
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
