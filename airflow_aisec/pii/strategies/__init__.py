"""Vectorized masking strategies: each transforms one Arrow column, keeping its type, length and nulls.

Every strategy takes an ``Array`` or a ``ChunkedArray`` and returns the same kind, of the same type (a string
column stays a string column, a date a date, an ``int64`` an ``int64``, a dictionary column a dictionary
column with the same index type). Nulls stay null. Work is done by Arrow compute kernels; where per-value
Python is unavoidable (HMAC, AES-SIV, free text) the column is dictionary-encoded, each DISTINCT value is
transformed once and the result is taken back by index.

Strategies and their options (the ``mask:`` mapping of the catalog):

``redact``
    Every value becomes null. Any type, nested ones included.
``replace`` — ``value``
    String columns: every non-null value becomes ``value`` (default: the entity tag, e.g.
    ``<EMAIL_ADDRESS>``, or ``<REDACTED>`` without an entity). Other columns need a ``value`` of (or
    castable to) the column's type; there is no sensible default constant for a date or a number.
``partial`` — ``keep_last`` (default 4), ``mask_char`` (default ``*``)
    String columns: every character but the last ``keep_last`` becomes ``mask_char``, so the length is
    kept. A value of ``keep_last`` characters or fewer is masked entirely: it would otherwise be revealed.
``pseudonymize`` — ``key`` (default ``aisec-pseudonyms``)
    Keyed, irreversible, deterministic: the same value gives the same token in every dataset and run, so
    joins on pseudonymized columns still work (until the key is rotated). With ``K`` = HKDF-SHA256 of the
    keyring key (info ``aisec/pseudonymize/v1``, 32 bytes) and ``H`` = HMAC-SHA256 with ``K``:

    * strings → ``"pseu_"`` + the first 32 lowercase hex digits (128 bits) of ``H(UTF-8 value)``;
    * 64-bit integers → the first 8 bytes of ``H(decimal text of the value)``, big-endian, top bit
      cleared: a non-negative integer of the same type (narrower integer types are refused: their
      pseudonyms would collide and silently merge subjects in joins);
    * binary → the 32-byte digest ``H(value)``.

    The key is derived (not used as is) so that these tokens cannot be matched against the HMAC subject
    pseudonyms of the audit log, which are made with the same keyring key.
``encrypt`` — ``key`` (default ``aisec-mask-encryption``)
    Deterministic and reversible (``decrypt_values``): AES-SIV with a 512-bit key derived by HKDF-SHA256 from
    the keyring key (info ``aisec/mask-encryption/aes-siv/v1``), the column name as associated data, so a
    value cannot be moved to another column. Output: ``"enc:v<key version>:"`` + URL-safe base64 without
    padding of the SIV and ciphertext. String columns only. Renaming the column breaks decryption.
``generalize`` — ``to`` | ``bucket`` | ``prefix`` (+ ``mask_char``)
    Dates and timestamps: ``to: year|month|day`` (``hour`` for timestamps) truncates, e.g. 1987-06-15 →
    1987-01-01 (timestamps with a time zone are truncated in that zone). Integers and floats:
    ``bucket: <size>`` floors to a multiple of the size (float buckets are subject to binary rounding).
    Strings: ``prefix: N`` keeps the first N characters and masks each other one with ``mask_char``; as
    for ``partial``, a value of N characters or fewer is masked entirely.
``drop``
    The column is removed from the output: the strategy returns the ``DROP`` marker.
``free_text`` — ``entities`` (optional list)
    Not a catalog ``mask`` strategy: the one of ``pii: free_text`` columns. Every entity a ``SpanFinder``
    finds is replaced in place by its tag (``<PERSON>``), the rest of the text is kept. Overlapping spans
    are merged into one, tagged with the entity of the highest score. ``entities`` restricts which are
    replaced. With row context (see ``row_context``), a row's own PII values found in its text are spans
    too, tagged with their column's entity.

Error messages name the column, the strategy and the option to fix; never a value of the data.

Each strategy is declared once, as a ``Strategy`` (name, options with their defaults, function on Arrow
columns) in the module that implements it: ``hide`` (redact, replace, partial, drop), ``generalize``,
``keyed`` (pseudonymize, encrypt) and ``free_text``. ``registry`` finds them by name and applies them;
``entities`` picks the default strategy of an entity; ``arrow`` holds the column plumbing they share.
"""

from __future__ import annotations

from airflow_aisec.pii.strategies.base import DROP, Drop, Masked, MaskRule, Strategy, Target, Values
from airflow_aisec.pii.strategies.entities import (
    IDENTIFIER_ENTITIES,
    KEY_ENTITIES,
    KEY_ENTITY_SUFFIXES,
    default_strategy,
    is_identifier,
    tag,
)
from airflow_aisec.pii.strategies.free_text import mask_free_text
from airflow_aisec.pii.strategies.generalize import generalize
from airflow_aisec.pii.strategies.hide import drop, partial, redact, replace
from airflow_aisec.pii.strategies.keyed import (
    ENCRYPTED_PREFIX,
    ENCRYPTION_KEY,
    PSEUDONYM_KEY,
    PSEUDONYM_PREFIX,
    decrypt_values,
    encrypt,
    pseudonym,
    pseudonymize,
)
from airflow_aisec.pii.strategies.registry import (
    REGISTRY,
    STRATEGIES,
    apply_strategy,
    check_options,
    strategy_named,
)

__all__ = [
    "DROP",
    "ENCRYPTED_PREFIX",
    "ENCRYPTION_KEY",
    "IDENTIFIER_ENTITIES",
    "KEY_ENTITIES",
    "KEY_ENTITY_SUFFIXES",
    "PSEUDONYM_KEY",
    "PSEUDONYM_PREFIX",
    "REGISTRY",
    "STRATEGIES",
    "Drop",
    "MaskRule",
    "Masked",
    "Strategy",
    "Target",
    "Values",
    "apply_strategy",
    "check_options",
    "decrypt_values",
    "default_strategy",
    "drop",
    "encrypt",
    "generalize",
    "is_identifier",
    "mask_free_text",
    "partial",
    "pseudonym",
    "pseudonymize",
    "redact",
    "replace",
    "strategy_named",
    "tag",
]
