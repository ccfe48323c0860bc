"""How a PII engine is tuned: its modes, score threshold, batch and window sizes, and the spaCy label mapping.

In code rather than a data file: they are few, and each says here why it has its value.
"""

from __future__ import annotations

from typing import Literal

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
# Score factor for DATE_TIME spans that are bare numbers of five digits or more (see spans.Window.spans).
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
