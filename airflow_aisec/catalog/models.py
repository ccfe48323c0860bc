"""Typed models of the privacy catalog (see docs/catalog.md for every field)."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Mapping
from typing import Any, Literal

import isodate
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from airflow_aisec.catalog.roles import Contact, PrivacyOffice
from airflow_aisec.exceptions import PIIError

FORMATS = ("parquet", "csv", "jsonl")
ERASURE_STRATEGIES = ("delete_rows", "anonymize")
MASK_STRATEGIES = ("redact", "replace", "partial", "pseudonymize", "encrypt", "generalize", "drop")
KEY_PROVIDERS = ("local", "aws-kms")
FREE_TEXT = "free_text"
# GDPR Art. 9 special categories of personal data, as a column's ``special_category`` names them.
SpecialCategory = Literal[
    "health", "religion", "ethnicity", "political_opinion", "sexual_orientation", "biometric", "genetic",
    "trade_union",
]  # fmt: skip

# isodate returns a timedelta, or its own Duration when years or months are involved.
Duration = Any


def parse_duration(value: object) -> Duration:
    """Parse a positive ISO-8601 duration such as ``P3Y`` or ``PT12H``."""
    if not isinstance(value, str):
        raise ValueError(f"invalid ISO-8601 duration {value!r}")
    try:
        duration = isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError) as e:
        raise ValueError(f"invalid ISO-8601 duration {value!r} (e.g. P30D, P3Y, PT12H)") from e
    zero = dt.datetime(2000, 1, 1)
    if zero + duration <= zero:
        raise ValueError(f"duration {value!r} must be positive")
    return duration


class _Model(BaseModel):
    # Unknown fields are errors: a misspelt `legal_hold` must not silently drop a hold.
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


DEFAULT_PSEUDONYM_KEY = "aisec-pseudonyms"
"""The keyring key of subject pseudonyms when a catalog names none; the catalog's name is the only source."""


class Subjects(_Model):
    """How data subjects are identified in requests."""

    identities: list[str] = Field(min_length=1)
    # Who the data subjects are (``customers``, ``employees``): the records of processing and the DPIA list
    # them; optional.
    categories: list[str] = Field(default_factory=list)
    # Every pseudonym of a subject (audit log, masking, per-subject keys, requests) is made with this key.
    pseudonym_key: str = DEFAULT_PSEUDONYM_KEY


class KeySpec(_Model):
    """A master key named by the catalog; its material lives in a KMS or the local keyring."""

    provider: Literal["local", "aws-kms"]
    key_id: str | None = None
    aws_conn_id: str | None = None
    # aws-kms only: the folder or s3:// prefix holding the per-subject keys this key wraps (one object each),
    # used for the per_subject_columns of datasets encrypted with this key.
    subject_keys: str | None = None

    @field_validator("subject_keys")
    @classmethod
    def _subject_keys_location(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("subject_keys must name a folder or an s3:// prefix")
        return value


class MaskSpec(BaseModel):
    """How a PII column is masked; options beyond ``strategy`` depend on the strategy."""

    model_config = ConfigDict(extra="allow", frozen=True)

    strategy: Literal["redact", "replace", "partial", "pseudonymize", "encrypt", "generalize", "drop"]

    @property
    def options(self) -> dict[str, Any]:
        """The strategy's options, e.g. ``{"to": "year"}``."""
        return dict(self.model_extra or {})


NOT_PII = "none"
"""``pii: none``: a person reviewed the column and found no personal data in it (e.g. a UUID join key)."""


class Column(_Model):
    """A column of a dataset; ``pii`` names the entity type it holds (or ``free_text``).

    ``pii: none`` (any letter case) is read as ``pii`` None with ``reviewed`` True: the column was reviewed
    and holds no personal data, so no reader ever takes ``none`` for an entity; the scan counts it as
    declared and masking leaves it alone. It cannot have a ``mask``.
    """

    pii: str | None = None
    mask: MaskSpec | None = None
    type: str | None = None
    # Whether a rectification request may change it: PII columns may unless false, others only if true.
    rectify: bool | None = None
    # A special category of personal data (GDPR Art. 9) the column holds, when its entity does not say so.
    special_category: SpecialCategory | None = None
    # A protected attribute (gender, age band, ...): bias checks compare their predictions across its groups.
    protected: bool = False
    _reviewed: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _reviewed_not_personal(self) -> Column:
        if self.special_category is not None and (self.pii is None or self.pii.lower() == NOT_PII):
            raise ValueError("special_category marks personal data: name the entity the column holds in pii")
        if self.pii is None or self.pii.lower() != NOT_PII:
            return self
        if self.mask is not None:
            raise ValueError(
                "pii: none says the column holds no personal data, so it cannot have a mask "
                "(remove the mask, or name the entity it holds)"
            )
        object.__setattr__(self, "pii", None)  # frozen model: the one place this field is rewritten
        self._reviewed = True
        return self

    @property
    def reviewed(self) -> bool:
        """Whether the catalog says ``pii: none``: reviewed, and not personal data."""
        return self._reviewed


class Retention(_Model):
    """Rows whose ``column`` is older than ``keep_for`` are purged."""

    column: str
    keep_for: str
    # S3 versioned buckets keep every replaced or deleted object; purging must remove those versions too.
    purge_versions: bool = False

    @field_validator("keep_for", mode="before")
    @classmethod
    def _valid_duration(cls, value: object) -> str:
        parse_duration(value)
        return str(value)

    @property
    def period(self) -> Duration:
        """``keep_for`` as a duration that can be subtracted from a date."""
        return parse_duration(self.keep_for)

    def cutoff(self, as_of: dt.datetime) -> dt.datetime:
        """Rows whose retention column is before this instant are expired."""
        cutoff = as_of - self.period
        assert isinstance(cutoff, dt.datetime)
        return cutoff


class Encryption(_Model):
    """Columns encrypted at rest with the named master key."""

    key: str
    columns: list[str] = Field(min_length=1)
    per_subject_columns: list[str] = Field(default_factory=list)


class LegalHold(_Model):
    """A hold that blocks retention and erasure until ``until`` (inclusive)."""

    reason: str = Field(min_length=1)
    until: dt.date

    def active(self, on: dt.date) -> bool:
        """Whether the hold still blocks deletions on the given day."""
        return on <= self.until


class Dataset(_Model):
    """One dataset: where it lives, its columns and the privacy rules that apply to it."""

    name: str = ""
    uri: str
    format: Literal["parquet", "csv", "jsonl"]
    primary_key: str | None = None
    identity: dict[str, str] = Field(default_factory=dict)
    references: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, Column] = Field(min_length=1)
    retention: Retention | None = None
    encryption: Encryption | None = None
    erasure: Literal["delete_rows", "anonymize"] = "delete_rows"
    purposes: list[str] = Field(default_factory=list)
    legal_hold: LegalHold | None = None
    # A location that is missing or holds no file is an error (a wrong path is not "no data") unless this
    # dataset says it may legitimately be empty.
    may_be_empty: bool = False
    # Optional, for the records of processing and the DPIA: who receives the data (processors, other teams)
    # and where it is stored (country or region; else derived from ``uri``).
    recipients: list[str] = Field(default_factory=list)
    location: str | None = None
    # Who answers for the data (``owner``) and who looks after its catalog entry day to day (``steward``).
    owner: Contact | None = None
    steward: Contact | None = None

    @property
    def pii_columns(self) -> dict[str, str]:
        """Column name → entity type, for every column declared as PII."""
        return {name: col.pii for name, col in self.columns.items() if col.pii}

    @property
    def protected_attributes(self) -> list[str]:
        """Columns declared ``protected: true``, the attributes a bias check compares groups of."""
        return [name for name, col in self.columns.items() if col.protected]

    @property
    def reviewed_columns(self) -> list[str]:
        """Columns declared ``pii: none``: reviewed by a person and found not to hold personal data."""
        return [name for name, col in self.columns.items() if col.reviewed]

    def reference_targets(self) -> dict[str, tuple[str, str]]:
        """Column → (dataset, column) it points to."""
        return {col: _split_ref(target) for col, target in self.references.items()}


def _split_ref(target: str) -> tuple[str, str]:
    dataset, _, column = target.partition(".")
    return dataset, column


DEFAULT_PATTERN_SCORE = 0.5
_ENTITY_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_ENTITY_RULE = "'entity' must be a non-empty name such as CUSTOMER_NUMBER (capital letters, digits and _)"
_PATTERN_RULE = "each pattern needs a 'regex' (and may have 'name', 'score')"


def _regex_module() -> Any:
    # Presidio matches with `regex`, so patterns are checked with it; without Presidio (and so without
    # `regex`) no pattern is ever matched, and `re` checks them.
    try:
        return importlib.import_module("regex")
    except ImportError:
        return re


class _PositionalModel(_Model):
    """A model that may also be built from its fields as positional arguments, in declaration order."""

    def __init__(self, *args: Any, **data: Any) -> None:
        names = list(type(self).model_fields)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments")
        super().__init__(**dict(zip(names, args, strict=False)), **data)


class PatternSpec(_PositionalModel):
    """One regular expression of a custom recognizer; a match scores ``score`` before context words.

    A pattern declared without a ``name`` is named after its recognizer's entity.
    """

    name: str = ""
    regex: str
    score: float = DEFAULT_PATTERN_SCORE

    @field_validator("score", mode="before")
    @classmethod
    def _probability(cls, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError("score must be a number between 0 and 1")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compiler = _regex_module()
        try:
            compiler.compile(value)
        except compiler.error as e:
            raise ValueError(f"invalid regular expression {value!r}: {e}") from None
        return value


class RecognizerSpec(_PositionalModel):
    """A custom PII recognizer: regular expressions with context words, and/or a deny list, for one entity.

    Declared in the catalog's ``recognizers:`` or in the ``[aisec] recognizers`` file (``from_mapping``).
    Frozen and hashable: engines built from equal recognizers are shared.
    """

    entity: str
    patterns: tuple[PatternSpec, ...] = ()
    context: tuple[str, ...] = ()
    deny_list: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RecognizerSpec:
        """A recognizer from configuration: ``{"entity", "patterns": [{"name", "regex", "score"}], ...}``.

        Raises ``PIIError`` naming the recognizer and what to fix.
        """
        if not isinstance(data, Mapping):
            raise PIIError("custom recognizer: expected a mapping with 'entity' and 'patterns'")
        entity = data.get("entity")
        where = f"custom recognizer {entity}" if entity else "custom recognizer"
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise PIIError(f"{where}: unknown keys {unknown} (known: {sorted(cls.model_fields)})")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as e:
            problems = "; ".join(dict.fromkeys(_recognizer_problem(err) for err in e.errors()))
            raise PIIError(f"{where}: {problems}") from None

    @model_validator(mode="before")
    @classmethod
    def _name_patterns(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("patterns"), list | tuple):
            return data
        entity = data.get("entity")
        return {**data, "patterns": [_named(pattern, entity) for pattern in data["patterns"]]}

    @field_validator("patterns", "context", "deny_list", mode="before")
    @classmethod
    def _lists(cls, value: object, info: ValidationInfo) -> object:
        if value is None:  # an empty YAML key
            return ()
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ValueError(f"{info.field_name!r} must be a list")
        return value

    @field_validator("entity")
    @classmethod
    def _entity_name(cls, value: str) -> str:
        if not _ENTITY_NAME.fullmatch(value):
            raise ValueError(_ENTITY_RULE)
        return value

    @model_validator(mode="after")
    def _detects_something(self) -> RecognizerSpec:
        if not self.patterns and not self.deny_list:
            raise ValueError("give at least one pattern or a deny_list")
        return self


def _named(pattern: object, entity: object) -> object:
    """``pattern`` named after ``entity`` when it has no name of its own."""
    if not isinstance(entity, str):
        return pattern
    if isinstance(pattern, PatternSpec) and not pattern.name:
        return pattern.model_copy(update={"name": entity})
    if isinstance(pattern, Mapping) and not pattern.get("name"):
        return {**pattern, "name": entity}
    return pattern


def _recognizer_problem(err: ErrorDetails) -> str:
    """What to fix in a recognizer, for one validation error (its own message for a rule of ours)."""
    loc = err["loc"]
    if err["type"] == "value_error":
        message = str((err.get("ctx") or {}).get("error", err["msg"]))
        return f"pattern {int(loc[1]) + 1}: {message}" if len(loc) > 2 else message
    if loc[:1] == ("entity",):
        return _ENTITY_RULE
    if loc[:1] == ("patterns",) and len(loc) > 1:
        return _PATTERN_RULE
    return f"{'.'.join(str(part) for part in loc)}: {err['msg']}"


class PurposeSpec(_Model):
    """A purpose the catalog adds to the Fides data uses: what it means, and the data use it refines.

    A dataset allowing ``parent`` (or any data use above it) allows this purpose too.
    """

    description: str = ""
    parent: str | None = None
    # A read for this purpose (or one below it) keeps only the rows of subjects with a current consent.
    needs_consent: bool = False


class ConsentSource(_Model):
    """The catalog dataset holding subjects' consents (see docs/manage-consent.md for its columns)."""

    dataset: str = Field(min_length=1)


class Controller(_Model):
    """Who is responsible for the processing (GDPR Art. 30(1)(a)), for the records and the DPIA."""

    name: str = Field(min_length=1)
    contact: str | None = None
    representative: str | None = None
    dpo: str | None = None


class Catalog(_Model):
    """The whole privacy catalog."""

    version: Literal[1]
    subjects: Subjects
    keys: dict[str, KeySpec] = Field(default_factory=dict)
    # Purposes of the catalog's own (``billing``), beside the Fides data uses (``essential.service``).
    purposes: dict[str, PurposeSpec] = Field(default_factory=dict)
    datasets: dict[str, Dataset] = Field(min_length=1)
    recognizers: list[RecognizerSpec] = Field(default_factory=list)
    controller: Controller | None = None
    # Where consents are kept, for the purposes that say ``needs_consent``.
    consent: ConsentSource | None = None
    # Who may decide data-subject requests; without one, any user Airflow lets answer an approval may.
    privacy_office: PrivacyOffice | None = None
    source: str = ""

    def summary(self) -> dict[str, object]:
        """Counts a reviewer checks first: datasets, PII columns, identities, retention rules and holds."""
        datasets = self.datasets.values()
        return {
            "datasets": len(self.datasets),
            "pii_columns": sum(len(d.pii_columns) for d in datasets),
            "reviewed_not_pii_columns": sum(len(d.reviewed_columns) for d in datasets),
            "identities": list(self.subjects.identities),
            "retention_rules": sum(1 for d in datasets if d.retention is not None),
            "legal_holds": sum(1 for d in datasets if d.legal_hold is not None),
            "encrypted_columns": sum(len(d.encryption.columns) for d in datasets if d.encryption),
        }

    def dataset_at(self, uri: str) -> str | None:
        """The dataset whose location is ``uri`` or holds it (a file of it), compared as OpenLineage names
        (so ``/lake/x`` and ``file:///lake/x`` agree), or None."""
        from airflow_aisec.lineage import openlineage_name

        namespace, name = openlineage_name(uri)
        for dataset in self.datasets.values():
            root_ns, root = openlineage_name(dataset.uri)
            if root_ns == namespace and (name == root or name.startswith(root.rstrip("/") + "/")):
                return dataset.name
        return None

    def dataset(self, name: str) -> Dataset:
        """The dataset of that name, or a ``KeyError`` naming the known ones."""
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(sorted(self.datasets))
            raise KeyError(f"{self.source}: unknown dataset {name!r} (known: {known})") from None
