"""Labeled corpora for the free-text PII evaluation (``benchmarks/bench_pii_eval.py``), independent of the
benchmark data of ``benchmarks/pii_data.py``: other generators, other templates, other people.

- ``faker``: customer-service messages, chats, e-mails with signatures, call notes and postal addresses with
  Faker's people of en_US, en_GB, de_DE, fr_FR and en_IN (``faker_source``);
- ``mimesis``: form-like blocks, log lines, SMS-style messages, JSON-ish snippets and lower-cased text with
  mimesis' people of en, en-gb, de and fr (``mimesis_source``);
- ``clean``: sentences without personal data, for false positives (``clean``).

Each has a ``dev`` split (to tune detection on) and a ``test`` split (to report), with different seeds and
disjoint templates. Every sample carries the exact offsets of the values it holds.
"""

from __future__ import annotations

from benchmarks.pii_corpora import clean, faker_source, mimesis_source
from benchmarks.pii_corpora.compose import ENTITIES, Label, Sample, check, has_context

SPLITS = ("dev", "test")
LABELED = (faker_source.NAME, mimesis_source.NAME)
SOURCES = (*LABELED, clean.NAME)

__all__ = ["ENTITIES", "LABELED", "SOURCES", "SPLITS", "Label", "Sample", "has_context", "load"]


def load(source: str, split: str, count: int) -> list[Sample]:
    """``count`` samples of ``source`` and ``split`` (for ``clean``: at most ``count``, all it has)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    if source == faker_source.NAME:
        samples = list(faker_source.samples(split, count))
    elif source == mimesis_source.NAME:
        samples = list(mimesis_source.samples(split, count))
    elif source == clean.NAME:
        samples = list(clean.samples(split, count))
    else:
        raise ValueError(f"unknown source {source!r} (known: {', '.join(SOURCES)})")
    check(samples)
    return samples
