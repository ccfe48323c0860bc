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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_aisec.catalog.models import DEFAULT_PSEUDONYM_KEY, MASK_STRATEGIES
from airflow_aisec.crypto.keyring import KeyVersion, LocalKeyring
from airflow_aisec.exceptions import KeyringError, PIIError
from airflow_aisec.pii import row_context
from airflow_aisec.pii.row_context import RowNeedles
from airflow_aisec.pii.types import FREE_TEXT, Span, SpanFinder

# An Arrow column: ``pa.Array`` or ``pa.ChunkedArray`` (pyarrow has no type stubs, so this is ``Any``).
Values = Any

STRATEGIES: Final = (*MASK_STRATEGIES, FREE_TEXT)
PSEUDONYM_KEY: Final = DEFAULT_PSEUDONYM_KEY  # a catalog dataset is masked with its subjects.pseudonym_key
ENCRYPTION_KEY: Final = "aisec-mask-encryption"
PSEUDONYM_PREFIX: Final = "pseu_"
ENCRYPTED_PREFIX: Final = "enc:v"

# The options each strategy accepts: a misspelt option must fail loudly, not leave data unmasked.
OPTIONS: Final[Mapping[str, frozenset[str]]] = {
    "redact": frozenset(),
    "replace": frozenset({"value"}),
    "partial": frozenset({"keep_last", "mask_char"}),
    "pseudonymize": frozenset({"key"}),
    "encrypt": frozenset({"key"}),
    "generalize": frozenset({"to", "bucket", "prefix", "mask_char"}),
    "drop": frozenset(),
    FREE_TEXT: frozenset({"entities"}),
}

_PSEUDONYM_INFO: Final = b"aisec/pseudonymize/v1"
_ENCRYPTION_INFO: Final = b"aisec/mask-encryption/aes-siv/v1"
_ENCRYPTED = re.compile(r"enc:v([0-9]{1,9}):([A-Za-z0-9_-]+)")
_TEMPORAL_UNITS: Final = ("year", "month", "day", "hour")
_INT63: Final = (1 << 63) - 1


class Drop:
    """The marker a strategy returns when its column must be removed from the output."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Drop()


@dataclass(frozen=True)
class MaskRule:
    """A strategy and its options, like the catalog's ``MaskSpec`` (which cannot name ``free_text``)."""

    strategy: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Masked:
    """A masked column (or ``DROP``) and how many values were masked per entity type."""

    values: Values
    counts: dict[str, int]


# -- defaults -------------------------------------------------------------------------------------------

# Identifiers are pseudonymized: they are what joins are made on, and a token keeps joins working.
# IP addresses too: ``partial`` would keep the last octets, the part that identifies the host.
IDENTIFIER_ENTITIES: Final = frozenset(
    {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "CRYPTO",
        "MEDICAL_LICENSE",
        "US_SSN",
        "US_ITIN",
        "US_PASSPORT",
        "US_DRIVER_LICENSE",
        "US_BANK_NUMBER",
        "UK_NHS",
        "UK_NINO",
        "ES_NIF",
        "ES_NIE",
        "IT_FISCAL_CODE",
        "IT_PASSPORT",
        "IT_IDENTITY_CARD",
        "IT_DRIVER_LICENSE",
        "IT_VAT_CODE",
        "PL_PESEL",
        "SG_NRIC_FIN",
        "AU_ABN",
        "AU_ACN",
        "AU_TFN",
        "AU_MEDICARE",
        "IN_PAN",
        "IN_AADHAAR",
        "IN_PASSPORT",
        "IN_VOTER",
        "IN_VEHICLE_REGISTRATION",
        "FI_PERSONAL_IDENTITY_CODE",
    }
)


# Record identifiers and keys: not about a person by themselves, but what rows are joined on. A constant
# (``<UUID>``) would merge every row into one key; a pseudonym keeps the join. Kept apart from
# IDENTIFIER_ENTITIES, which also says which values single a person out in free text.
KEY_ENTITIES: Final = frozenset({"UUID", "GUID", "MAC_ADDRESS"})
# Entity names of custom recognizers that say they are identifiers: CUSTOMER_ID, ACCOUNT_NUMBER, API_KEY.
KEY_ENTITY_SUFFIXES: Final = ("_ID", "_KEY", "_NUMBER", "_UUID", "_GUID")


def is_identifier(entity: str | None) -> bool:
    """Whether ``entity`` is an identifier or a key, masked by default with a pseudonym (joins survive)."""
    if not entity:
        return False
    return entity in IDENTIFIER_ENTITIES or entity in KEY_ENTITIES or entity.endswith(KEY_ENTITY_SUFFIXES)


def default_strategy(entity: str | None) -> MaskRule:
    """How a column holding ``entity`` is masked when the catalog gives no ``mask:``.

    Identifiers (e-mail, phone, card, IBAN, SSN, national IDs, IP address) and keys (UUIDs, MAC addresses,
    custom entities named ``*_ID``, ``*_KEY``, ``*_NUMBER``) → ``pseudonymize``, so the same value gets the
    same token and joins still work; ``DATE_TIME`` → ``generalize`` to the year; ``free_text`` →
    ``free_text``; names, places, ``NRP`` and every other or unknown entity → ``replace`` by the entity tag,
    the safe choice.
    """
    if entity == FREE_TEXT:
        return MaskRule(FREE_TEXT)
    if is_identifier(entity):
        return MaskRule("pseudonymize")
    if entity == "DATE_TIME":
        return MaskRule("generalize", {"to": "year"})
    return MaskRule("replace")


def check_options(strategy: str, options: Mapping[str, Any], column: str) -> None:
    """Refuse an unknown strategy, or an option the strategy does not know (a typo would mask nothing)."""
    if strategy not in OPTIONS:
        raise PIIError(
            f"column {column!r}: unknown masking strategy {strategy!r} (known: {', '.join(STRATEGIES)})"
        )
    unknown = sorted(set(options) - OPTIONS[strategy])
    if unknown:
        allowed = ", ".join(sorted(OPTIONS[strategy])) or "none"
        raise PIIError(
            f"column {column!r}: unknown option(s) {', '.join(unknown)} for strategy {strategy} "
            f"(allowed: {allowed})"
        )


def tag(entity: str | None) -> str:
    """The text that replaces a value or a span of free text: ``<EMAIL_ADDRESS>``."""
    return f"<{entity}>" if entity else "<REDACTED>"


# -- types and plumbing ---------------------------------------------------------------------------------


def _value_type(t: Any) -> Any:
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_text(t: Any) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_bytes(t: Any) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t))


def _kernel_type(t: Any) -> Any:
    # Most string kernels (and take) lack view-type kernels: work on the large layout, cast back after.
    if pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_binary_view(t):
        return pa.large_binary()
    return t


def _non_null(values: Values) -> int:
    return int(len(values) - values.null_count)


def _require_text(values: Values, strategy: str, column: str) -> None:
    if not _is_text(_value_type(values.type)):
        raise PIIError(f"{strategy} needs a string column; column {column!r} is {values.type}")


class _Distinct:
    """A column as its distinct values plus indices, to transform each distinct value only once."""

    def __init__(self, values: Values) -> None:
        self.type = values.type
        self.chunked = isinstance(values, pa.ChunkedArray)
        self.value_type = _value_type(values.type)
        encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
        if self.chunked:
            # Chunks may carry different dictionaries; one shared dictionary is transformed once.
            encoded = encoded.unify_dictionaries()
            self._chunks = list(encoded.chunks)
        else:
            self._chunks = [encoded]
        self.dictionary = self._chunks[0].dictionary if self._chunks else pa.array([], self.value_type)

    def rebuild(self, new_dictionary: Values) -> Values:
        """The column with each value replaced by the entry of ``new_dictionary`` at its index."""
        if pa.types.is_dictionary(self.type):
            new_dictionary = new_dictionary.cast(self.value_type)
            parts = [
                pa.DictionaryArray.from_arrays(c.indices, new_dictionary, ordered=self.type.ordered)
                for c in self._chunks
            ]
        else:
            parts = [pc.take(new_dictionary, c.indices).cast(self.type) for c in self._chunks]
        return pa.chunked_array(parts, type=self.type) if self.chunked else parts[0]

    def row_indices(self) -> Any:
        """The index into the distinct values of each row (all chunks, in order), -1 for a null."""
        parts = [pc.fill_null(c.indices, -1).to_numpy(zero_copy_only=False) for c in self._chunks]
        return np.concatenate(parts).astype(np.int64) if parts else np.array([], np.int64)

    def rebuild_rows(self, new_values: Values, rows: Any) -> Values:
        """The column with row ``i`` set to ``new_values[rows[i]]`` (null where ``rows[i]`` is -1)."""
        parts, start = [], 0
        for c in self._chunks:
            chunk = rows[start : start + len(c)]
            start += len(c)
            indices = pa.array(chunk, pa.int64(), mask=chunk < 0)
            parts.append(pc.take(new_values, indices).cast(self.type))
        return pa.chunked_array(parts, type=self.type) if self.chunked else parts[0]

    def map(self, fn: Callable[[Values], Values]) -> Values:
        """Apply ``fn`` to the distinct values (an Array in, an Array of the same length out)."""
        return self.rebuild(fn(self.dictionary))

    def total(self, per_value: Values) -> int:
        """The sum over all rows of ``per_value`` (one number per distinct value)."""
        return sum(int(pc.sum(pc.take(per_value, c.indices)).as_py() or 0) for c in self._chunks)


def _elementwise(values: Values, fn: Callable[[Values], Values]) -> Values:
    """Apply a vectorized ``fn``; on a dictionary column only the dictionary is transformed."""
    if pa.types.is_dictionary(values.type):
        return _Distinct(values).map(fn)
    return fn(values)


def _in_kernel_type(fn: Callable[[Values], Values]) -> Callable[[Values], Values]:
    """Wrap ``fn`` to run on a type Arrow kernels support and cast the result back to the input type."""

    def wrapped(values: Values) -> Values:
        kernel = _kernel_type(values.type)
        return fn(values.cast(kernel) if kernel != values.type else values).cast(values.type)

    return wrapped


# -- redact, replace, partial ---------------------------------------------------------------------------


def redact(values: Values) -> Values:
    """Every value → null, of the same type."""
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([pa.nulls(len(c), values.type) for c in values.chunks], type=values.type)
    return pa.nulls(len(values), values.type)


def replace(values: Values, *, value: Any = None, entity: str | None = None, column: str = "") -> Values:
    """Every non-null value → ``value`` (strings default to the entity tag); nulls stay null."""
    value_type = _value_type(values.type)
    if value is None:
        if not _is_text(value_type):
            raise PIIError(
                f"replace needs a string column, or a `value` of the column's type; "
                f"column {column!r} is {values.type}"
            )
        value = tag(entity)
    try:
        constant = pa.array([value]).cast(_kernel_type(value_type))[0]
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        raise PIIError(
            f"replace: the `value` set for column {column!r} cannot be converted to {value_type}"
        ) from None

    def constant_where_valid(arr: Values) -> Values:
        return pc.if_else(pc.is_valid(arr), constant, pa.scalar(None, constant.type))

    return _elementwise(values, _in_kernel_type(constant_where_valid))


def _keep_chars(arr: Values, keep: int, mask_char: str, *, at_end: bool) -> Values:
    """Keep ``keep`` characters at one end and mask the others; values not longer than ``keep`` are masked
    entirely. ``arr`` is a string or large string array; lengths are in code points."""
    length = pc.utf8_length(arr)
    reveal = pc.greater(length, keep)
    empty = pa.scalar("", arr.type)
    if keep == 0:
        kept = empty
    else:
        sliced = (
            pc.utf8_slice_codeunits(arr, start=-keep) if at_end else pc.utf8_slice_codeunits(arr, 0, keep)
        )
        kept = pc.if_else(reveal, sliced, empty)
    masked = pc.binary_repeat(
        pa.scalar(mask_char, arr.type), pc.if_else(reveal, pc.subtract(length, keep), length)
    )
    parts = (masked, kept) if at_end else (kept, masked)
    return pc.binary_join_element_wise(*parts, empty)


def _count_option(
    options: Mapping[str, Any], name: str, default: int | None, strategy: str, column: str
) -> int:
    number = options.get(name, default)
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise PIIError(f"{strategy} of column {column!r}: set `{name}` to a whole number ≥ 0")
    return number


def _mask_char(options: Mapping[str, Any], strategy: str, column: str) -> str:
    char = options.get("mask_char", "*")
    if not isinstance(char, str) or len(char) != 1:
        raise PIIError(f"{strategy} of column {column!r}: `mask_char` must be one character")
    return char


def partial(values: Values, *, keep_last: int = 4, mask_char: str = "*", column: str = "") -> Values:
    """Mask all but the last ``keep_last`` characters (length kept); short values are masked entirely."""
    _require_text(values, "partial", column)
    options = {"keep_last": keep_last, "mask_char": mask_char}
    keep = _count_option(options, "keep_last", 4, "partial", column)
    char = _mask_char(options, "partial", column)
    return _elementwise(values, _in_kernel_type(lambda arr: _keep_chars(arr, keep, char, at_end=True)))


# -- pseudonymize ---------------------------------------------------------------------------------------


def _derive(key: KeyVersion, info: bytes, length: int, strategy: str) -> bytes:
    if key.kind != "symmetric" or len(key.material) < 16:
        raise PIIError(f"{strategy} needs a symmetric key of at least 16 bytes; {key!r} is not one")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key.material)


class _Hmac:
    """HMAC-SHA256 (RFC 2104) with both padded keys hashed once: about twice as fast per short value as
    ``hmac.digest``, which matters when every distinct value of a large column is hashed."""

    def __init__(self, key: bytes) -> None:
        block = key.ljust(64, b"\0")  # keys are 32 bytes, shorter than SHA-256's 64-byte block
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def _pseudonymizer(value_type: Any, mac: _Hmac, column: str) -> Callable[[Any], Any]:
    if _is_text(value_type):
        return lambda v: PSEUDONYM_PREFIX + mac(v.encode())[:16].hex()
    if pa.types.is_int64(value_type) or pa.types.is_uint64(value_type):
        return lambda v: int.from_bytes(mac(str(v).encode())[:8], "big") & _INT63
    if pa.types.is_integer(value_type):
        raise PIIError(
            f"pseudonymize of column {column!r} needs 64-bit integers ({value_type} pseudonyms would "
            f"collide); cast the column to int64 or use another strategy"
        )
    if _is_bytes(value_type):
        return mac
    raise PIIError(
        f"pseudonymize needs a string, 64-bit integer or binary column; column {column!r} is {value_type}"
    )


def pseudonymize(values: Values, key: KeyVersion, *, column: str = "") -> Values:
    """Replace each value by its keyed HMAC-SHA256 token (format in the module docstring)."""
    value_type = _value_type(values.type)
    token = _pseudonymizer(value_type, _Hmac(_derive(key, _PSEUDONYM_INFO, 32, "pseudonymize")), column)
    out_type = _kernel_type(value_type)

    def tokens(distinct: Values) -> Values:
        return pa.array([None if v is None else token(v) for v in distinct.to_pylist()], out_type)

    return _Distinct(values).map(tokens)


def pseudonym(value: str | int | bytes, key: KeyVersion) -> str | int | bytes:
    """The token ``pseudonymize`` gives one value (a ``str``, a 64-bit ``int`` or ``bytes``), e.g. to look
    a data subject up in a pseudonymized dataset."""
    if isinstance(value, str):
        value_type = pa.string()
    elif isinstance(value, bytes):
        value_type = pa.binary()
    else:
        value_type = pa.int64()
    result = pseudonymize(pa.array([value], value_type), key).to_pylist()[0]
    assert isinstance(result, str | int | bytes)
    return result


# -- encrypt --------------------------------------------------------------------------------------------


def _siv(key: KeyVersion, strategy: str) -> AESSIV:
    return AESSIV(_derive(key, _ENCRYPTION_INFO, 64, strategy))


def encrypt(values: Values, key: KeyVersion, *, column: str) -> Values:
    """Deterministic, reversible AES-SIV encryption bound to ``column`` (format in the module docstring)."""
    _require_text(values, "encrypt", column)
    siv = _siv(key, "encrypt")
    associated = [column.encode()]
    prefix = f"{ENCRYPTED_PREFIX}{key.version}:"

    def seal(text: str) -> str:
        return prefix + base64.urlsafe_b64encode(siv.encrypt(text.encode(), associated)).rstrip(b"=").decode()

    def sealed(distinct: Values) -> Values:
        return pa.array([None if v is None else seal(v) for v in distinct.to_pylist()], pa.large_string())

    return _Distinct(values).map(sealed)


class _Opener:
    """Decrypts ``enc:v<N>:...`` values, fetching each key version from the keyring once."""

    def __init__(self, keyring: LocalKeyring, key_name: str, column: str) -> None:
        self._keyring = keyring
        self._key_name = key_name
        self._column = column
        self._associated = [column.encode()]
        self._sivs: dict[int, AESSIV] = {}

    def _failed(self) -> PIIError:
        return PIIError(f"cannot decrypt column {self._column!r}: wrong key or tampered value")

    def _siv(self, version: int) -> AESSIV:
        if version not in self._sivs:
            try:
                key = self._keyring.get(self._key_name, version)
            except KeyringError as e:
                raise PIIError(
                    f"cannot decrypt column {self._column!r}: key {self._key_name!r} version {version} "
                    f"is not available ({e})"
                ) from None
            self._sivs[version] = _siv(key, "decrypt")
        return self._sivs[version]

    def __call__(self, text: str) -> str:
        match = _ENCRYPTED.fullmatch(text)
        if match is None:
            raise self._failed()
        siv = self._siv(int(match[1]))
        payload = match[2]
        try:
            sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return siv.decrypt(sealed, self._associated).decode()
        except (InvalidTag, ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
            raise self._failed() from None


def decrypt_values(values: Values, keyring: LocalKeyring, key_name: str, column: str) -> Values:
    """Reverse ``encrypt``: the original strings, same type, nulls kept; any value that does not decrypt
    with ``key_name`` for ``column`` raises ``PIIError`` (without the value)."""
    _require_text(values, "decrypt", column)
    opener = _Opener(keyring, key_name, column)

    def opened(distinct: Values) -> Values:
        return pa.array([None if v is None else opener(v) for v in distinct.to_pylist()], pa.large_string())

    return _Distinct(values).map(opened)


# -- generalize -----------------------------------------------------------------------------------------


def _inapplicable(options: Mapping[str, Any], applicable: set[str], column: str, kind: str, fix: str) -> None:
    given = ", ".join(f"`{name}`" for name in sorted(set(options) - applicable))
    if given:
        raise PIIError(
            f"generalize of column {column!r}: option(s) {given} do not apply to a {kind} column; set {fix}"
        )


def _generalize_temporal(values: Values, options: Mapping[str, Any], column: str) -> Values:
    is_timestamp = pa.types.is_timestamp(_value_type(values.type))
    units = _TEMPORAL_UNITS if is_timestamp else _TEMPORAL_UNITS[:-1]
    fix = f"`to: {'|'.join(units)}`"
    _inapplicable(options, {"to"}, column, "date or timestamp", fix)
    unit = options.get("to")
    if unit not in units:
        raise PIIError(f"generalize of column {column!r} ({_value_type(values.type)}) needs {fix}")
    return _elementwise(values, lambda arr: pc.floor_temporal(arr, unit=unit).cast(arr.type))


def _floor_int(arr: Values, step: Any) -> Values:
    # Arrow's integer division truncates toward zero; step negative remainders down to floor.
    remainder = pc.subtract(arr, pc.multiply(pc.divide(arr, step), step))
    below = pc.if_else(pc.less(remainder, pa.scalar(0, arr.type)), step, pa.scalar(0, arr.type))
    return pc.subtract_checked(pc.subtract(arr, remainder), below)


def _positive(size: object, integer: bool) -> bool:
    if isinstance(size, bool) or not isinstance(size, int | float) or (integer and isinstance(size, float)):
        return False
    return 0 < size < float("inf")


def _generalize_number(values: Values, options: Mapping[str, Any], column: str) -> Values:
    integer = pa.types.is_integer(_value_type(values.type))
    fix = "`bucket: <size>`" + (" (a whole number)" if integer else "")
    _inapplicable(options, {"bucket"}, column, "number", fix)
    size = options.get("bucket")
    if not _positive(size, integer):
        raise PIIError(f"generalize of column {column!r} ({_value_type(values.type)}) needs {fix} > 0")
    if integer:
        try:
            step = pa.scalar(size, _value_type(values.type))
        except (pa.ArrowException, OverflowError):
            raise PIIError(
                f"generalize of column {column!r}: `bucket` is too large for {_value_type(values.type)}"
            ) from None
        return _elementwise(values, lambda arr: _floor_int(arr, step).cast(arr.type))
    return _elementwise(values, lambda arr: pc.multiply(pc.floor(pc.divide(arr, size)), size).cast(arr.type))


def _generalize_text(values: Values, options: Mapping[str, Any], column: str) -> Values:
    fix = "`prefix: N` (characters kept)"
    if "to" in options:  # e.g. the DATE_TIME default applied to dates stored as text
        fix += ", as `to` needs a date or timestamp column"
    _inapplicable(options, {"prefix", "mask_char"}, column, "string", fix)
    if "prefix" not in options:
        raise PIIError(f"generalize of string column {column!r} needs {fix}")
    keep = _count_option(options, "prefix", None, "generalize", column)
    char = _mask_char(options, "generalize", column)
    return _elementwise(values, _in_kernel_type(lambda arr: _keep_chars(arr, keep, char, at_end=False)))


def generalize(values: Values, *, column: str = "", **options: Any) -> Values:
    """Coarsen values, keeping the type: ``to`` for dates/timestamps, ``bucket`` for numbers, ``prefix``
    for strings (see the module docstring)."""
    value_type = _value_type(values.type)
    if pa.types.is_date(value_type) or pa.types.is_timestamp(value_type):
        return _generalize_temporal(values, options, column)
    if pa.types.is_integer(value_type) or pa.types.is_floating(value_type):
        return _generalize_number(values, options, column)
    if _is_text(value_type):
        return _generalize_text(values, options, column)
    raise PIIError(
        f"generalize supports date, timestamp, integer, float and string columns; "
        f"column {column!r} is {values.type}"
    )


def drop(values: Values) -> Drop:
    """The column is removed from the output."""
    return DROP


# -- free text ------------------------------------------------------------------------------------------


def _merge_spans(spans: Sequence[Span], length: int, column: str) -> list[Span]:
    """Spans in text order, overlapping ones merged into one tagged with the highest-scoring entity."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, -s.score)):
        if not 0 <= span.start <= span.end <= length:
            raise PIIError(
                f"free_text of column {column!r}: the span finder returned a span outside the text"
            )
        if span.start == span.end:
            continue
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            winner = span if span.score > last.score else last
            merged[-1] = Span(winner.entity, last.start, max(last.end, span.end), max(last.score, span.score))
        else:
            merged.append(span)
    return merged


def _replace_spans(text: str, spans: Sequence[Span], column: str) -> tuple[str, Counter[str]]:
    parts: list[str] = []
    found: Counter[str] = Counter()
    position = 0
    for span in _merge_spans(spans, len(text), column):
        parts += (text[position : span.start], tag(span.entity))
        found[span.entity] += 1
        position = span.end
    parts.append(text[position:])
    return "".join(parts), found


def mask_free_text(
    values: Values,
    find_spans: SpanFinder,
    *,
    column: str = "",
    entities: Sequence[str] | None = None,
    context: RowNeedles | None = None,
) -> Masked:
    """Replace every entity found in each text by its tag, keeping the rest of the text.

    The finder is called once, with every distinct non-empty text of ``values``. ``context`` (one entry per
    row, see ``row_context``) adds, in each row, the spans where the row's own PII values occur. ``counts``
    holds, per entity type, how many entities were replaced over all rows.
    """
    _require_text(values, FREE_TEXT, column)
    if entities is not None and (isinstance(entities, str) or not all(isinstance(e, str) for e in entities)):
        raise PIIError(f"{FREE_TEXT} of column {column!r}: `entities` must be a list of entity types")
    wanted = None if entities is None else set(entities)
    distinct = _Distinct(values)
    texts: list[str | None] = distinct.dictionary.to_pylist()
    todo = [i for i, text in enumerate(texts) if text]
    found_spans = find_spans([texts[i] or "" for i in todo]) if todo else []
    if len(found_spans) != len(todo):
        raise PIIError(
            f"{FREE_TEXT} of column {column!r}: the span finder did not return one result per text"
        )
    kept: list[list[Span]] = [[] for _ in texts]
    for i, spans in zip(todo, found_spans, strict=True):
        kept[i] = [s for s in spans if wanted is None or s.entity in wanted]
    masked: list[str | None] = list(texts)
    per_text: list[Counter[str]] = [Counter() for _ in texts]
    for i in todo:
        if kept[i]:
            masked[i], per_text[i] = _replace_spans(texts[i] or "", kept[i], column)
    if context is not None and any(context):
        return _with_row_context(distinct, texts, kept, masked, per_text, context, wanted, column)
    names = sorted({entity for found in per_text for entity in found})
    counts = {e: distinct.total(pa.array([c[e] for c in per_text], pa.int64())) for e in names}
    new_values = distinct.rebuild(pa.array(masked, _kernel_type(distinct.value_type)))
    return Masked(new_values, {e: n for e, n in counts.items() if n})


def _with_row_context(
    distinct: _Distinct,
    texts: list[str | None],
    kept: list[list[Span]],
    masked: list[str | None],
    per_text: list[Counter[str]],
    context: RowNeedles,
    wanted: set[str] | None,
    column: str,
) -> Masked:
    """The masked column when rows add spans of their own: a row whose text holds one of its values gets a
    text of its own; every other row shares the masked text of its distinct value."""
    rows = distinct.row_indices()
    if len(context) != len(rows):
        raise PIIError(f"{FREE_TEXT} of column {column!r}: row context does not match the rows")
    extra: list[str | None] = []
    forms: dict[int, row_context.Forms] = {}  # a text repeated over rows is folded once
    for row, wanted_here in enumerate(context):
        index = int(rows[row])
        text = texts[index] if wanted_here and index >= 0 else None
        if not text:
            continue
        if index not in forms:
            forms[index] = row_context.Forms(text)
        found_here = row_context.find(forms[index], wanted_here)
        spans = [s for s in found_here if wanted is None or s.entity in wanted]
        if spans:
            new_text, found = _replace_spans(text, kept[index] + spans, column)
            rows[row] = len(texts) + len(extra)
            extra.append(new_text)
            per_text.append(found)
    names = sorted({entity for found in per_text for entity in found})
    present = rows[rows >= 0]
    counts = {e: int(np.array([c[e] for c in per_text], np.int64)[present].sum()) for e in names}
    new_values = distinct.rebuild_rows(pa.array(masked + extra, _kernel_type(distinct.value_type)), rows)
    return Masked(new_values, {e: n for e, n in counts.items() if n})


# -- dispatch -------------------------------------------------------------------------------------------


def _dispatch(
    values: Values,
    rule: MaskRule,
    column: str,
    entity: str | None,
    key: KeyVersion | None,
) -> Values:
    options = rule.options
    strategy = rule.strategy
    if strategy == "redact":
        return redact(values)
    if strategy == "replace":
        return replace(values, value=options.get("value"), entity=entity, column=column)
    if strategy == "partial":
        return partial(
            values,
            keep_last=options.get("keep_last", 4),
            mask_char=options.get("mask_char", "*"),
            column=column,
        )
    if strategy == "generalize":
        return generalize(values, column=column, **options)
    if strategy == "drop":
        return DROP
    if key is None:
        raise PIIError(f"{strategy} of column {column!r} needs a key")
    if strategy == "pseudonymize":
        return pseudonymize(values, key, column=column)
    return encrypt(values, key, column=column)


def apply_strategy(
    values: Values,
    rule: MaskRule,
    *,
    column: str,
    entity: str | None = None,
    key: KeyVersion | None = None,
    find_spans: SpanFinder | None = None,
    context: RowNeedles | None = None,
) -> Masked:
    """Mask ``values`` of ``column`` with ``rule``; ``key`` serves pseudonymize/encrypt, ``find_spans`` and
    ``context`` (per row, see ``mask_free_text``) free text. ``counts`` is keyed by entity (``PII`` without
    one): the non-null values masked, or for free text the entities replaced."""
    check_options(rule.strategy, rule.options, column)
    if pa.types.is_null(values.type) and rule.strategy != "drop":
        # Readers type a column with no value at all as ``null``: nothing to mask, and no type to keep.
        return Masked(values, {})
    try:
        if rule.strategy == FREE_TEXT:
            if find_spans is None:
                raise PIIError(f"column {column!r} is free text: masking it needs a span finder")
            entities = rule.options.get("entities")
            return mask_free_text(values, find_spans, column=column, entities=entities, context=context)
        masked = _dispatch(values, rule, column, entity, key)
    except pa.ArrowNotImplementedError:
        raise PIIError(f"{rule.strategy} cannot mask column {column!r} of type {values.type}") from None
    except pa.ArrowInvalid:  # e.g. an integer bucket overflowing; Arrow's message may quote a value
        raise PIIError(f"{rule.strategy} of column {column!r}: a value is out of range") from None
    return Masked(masked, {entity or "PII": _non_null(values)})
