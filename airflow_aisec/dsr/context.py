"""What carrying out a request needs (``DsrContext``), and what it did to one dataset (``DatasetOutcome``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_aisec.crypto.keysource import KeySource
from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.dsr.scan import Scanner, catalog_scanner
from airflow_aisec.io import S3Options
from airflow_aisec.rewrite import FileChange

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.datasets import SubjectColumns
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.providers import KeyProvider
    from airflow_aisec.dsr.index import SubjectIndex
    from airflow_aisec.dsr.request import DsrRequest
    from airflow_aisec.pii.types import Span
    from airflow_aisec.retention.holds import Hold


@dataclasses.dataclass
class DatasetOutcome:
    """What a request did to one dataset.

    ``status``: ``changed``, ``no_data`` (the subject is not there), ``held`` (a legal hold blocks it),
    ``dry_run`` (what would change), ``exported`` (access) or ``failed``. ``rows_affected`` counts the rows
    changed, or for a held dataset the rows it would change; ``rows_held`` the rows a hold kept unchanged. A
    dataset split into ``parts`` (``dsr.parts``) has one outcome per part (``part``, from 0) until
    ``complete`` merges them; the merged outcome keeps each part's own in ``part_outcomes``.
    """

    dataset: str
    strategy: str
    status: str
    rows_affected: int = 0
    mentions_masked: int = 0
    files: list[FileChange] = dataclasses.field(default_factory=list)
    legal_hold: dict[str, Any] | None = None
    error: str | None = None
    export: dict[str, Any] | None = None
    part: int = 0
    parts: int = 1
    rows_held: int = 0
    part_outcomes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether files were changed (a dry run lists what it would change, with action ``none``)."""
        return any(f.action != "none" for f in self.files)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**dataclasses.asdict(self), "files": [f.as_dict() for f in self.files]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetOutcome:
        """The inverse of ``as_dict``."""
        fields = dict(data)
        fields["files"] = [FileChange.from_dict(f) for f in fields.get("files", [])]
        return cls(**fields)


class DsrContext:
    """What carrying out one request needs: catalog, request, audit log, keys, storage options.

    ``keys`` (default: the catalog's keys over ``keyring``, KMS through boto3's chain) give the catalog's
    encryption keys and per-subject key stores; ``keyring`` also keeps the request's own sealing keys.
    """

    def __init__(
        self,
        catalog: Catalog,
        request: DsrRequest,
        *,
        keyring: LocalKeyring,
        audit: AuditLog | None = None,
        s3: S3Options | None = None,
        find_spans: Callable[[Sequence[str]], list[list[Span]]] | None = None,
        holds: Mapping[str, Hold] | None = None,
        index: SubjectIndex | None = None,
        today: dt.date | None = None,
        keys: KeySource | None = None,
    ) -> None:
        self.catalog = catalog
        self.request = request
        self.keyring = keyring
        self.keys = keys or KeySource(catalog, keyring, s3=s3)
        self.audit = audit
        self.s3 = s3
        self.holds = dict(holds or {})
        self.index = index
        self.subject_held: str | None = None
        self.identities: list[str] = []  # pseudonyms of every identity of the subject, once resolved
        self.today = today or dt.datetime.now(dt.UTC).date()
        self._find_spans = find_spans
        self._pseudonymize: Callable[[str], str] | None = None
        self._reason_masked = False

    def __repr__(self) -> str:
        return f"DsrContext({self.request.type} {self.request.request_id})"

    # -- helpers ---------------------------------------------------------------------------------------------

    def pseudonym(self, value: str) -> str:
        """The pseudonym of ``value``, under the catalog's ``subjects.pseudonym_key``, as the audit log
        records subjects. Always computed: a value that merely looks like a pseudonym is pseudonymized too,
        so no identifier can stand in for the pseudonym of another subject."""
        if self._pseudonymize is None:
            from airflow_aisec.crypto.pseudonyms import Pseudonymizer

            key = self.keyring.ensure(self.catalog.subjects.pseudonym_key, "symmetric").material
            self._pseudonymize = Pseudonymizer(key)
        return self._pseudonymize(value)

    @property
    def subject(self) -> str:
        """The pseudonym of the subject named in the request."""
        return self.pseudonym(self.request.identity_value)

    def public_request(self) -> dict[str, Any]:
        """The request as it may be stored and shown (``DsrRequest.public``), its free-text reason first
        masked of everyone's personal data (names, e-mail addresses, numbers...), not only the subject's."""
        if not self._reason_masked:
            from airflow_aisec.pii.strategies import mask_free_text

            def people(texts: Sequence[str]) -> list[list[Span]]:
                # Dates say when, not who (and the NER model takes ticket numbers for dates): they stay.
                return [[s for s in found if s.entity != "DATE_TIME"] for found in self.find_spans(texts)]

            reason = self.request.reason
            if reason.strip():
                masked = mask_free_text(pa.array([reason], pa.string()), people, column="reason")
                reason = str(masked.values[0].as_py())
            self.request = dataclasses.replace(self.request, reason=reason)
            self._reason_masked = True
        return self.request.public(self.pseudonym)

    def key_provider(self, key_name: str) -> KeyProvider:
        """The provider of a catalog key (built once)."""
        return self.keys.provider(key_name)

    def find_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Named entities in ``texts``; the NER engine is loaded on first use only."""
        if self._find_spans is None:
            from airflow_aisec.pii.engine import get_engine
            from airflow_aisec.pii.pipeline import recognizer_specs

            self._find_spans = get_engine("ner", recognizers=recognizer_specs(self.catalog)).find_spans
        return self._find_spans(texts)

    def subject_columns(self, dataset: Dataset) -> SubjectColumns | None:
        """The dataset's per-subject sealing, if the catalog asks for it."""
        from airflow_aisec.crypto.datasets import subject_columns

        return subject_columns(self.keys, dataset)

    def key(self, *parts: str) -> str:
        """An idempotency key of this request."""
        return ":".join((self.request.action, self.request.request_id, *parts))

    def record(self, key: str, outcome: str, **fields: Any) -> int | None:
        """Append one entry of this request (the subject stored as their pseudonym); its index."""
        if self.audit is None:
            return None
        details = {"request_id": self.request.request_id, **fields.pop("details", {})}
        if self.identities:
            details.setdefault("identities", self.identities)
        return self.audit.append(
            self.request.action, idempotency_key=key, outcome=outcome, subject=self.subject,
            details=details, **fields,
        )  # fmt: skip

    def note_identifiers(self, ids: Identifiers) -> None:
        """Once the subject is resolved: find a per-subject hold under any of their identities, and scrub
        every identifier of theirs from the request's free-text reason (it is logged and certified)."""
        values = sorted({v for found in ids.identities.values() for v in found})
        # Recorded with each later entry, so the subject is found in the log by any of their identities.
        self.identities = sorted({self.pseudonym(v) for v in values})
        for value in values:
            hold = self.holds.get(self.pseudonym(value))
            if hold is not None:
                self.subject_held = hold.reason
        from airflow_aisec.dsr.request import scrub

        reason = scrub(self.request.reason, [*values, *ids.mentions])
        if reason != self.request.reason:
            self.request = dataclasses.replace(self.request, reason=reason)

    def hold_of(self, dataset: Dataset) -> dict[str, Any] | None:
        """The legal hold blocking changes to ``dataset``, if any."""
        if dataset.legal_hold is not None and dataset.legal_hold.active(self.today):
            hold = dataset.legal_hold
            return {"scope": "dataset", "reason": hold.reason, "until": hold.until.isoformat()}
        if self.subject_held is not None:
            return {"scope": "subject", "reason": self.subject_held, "until": None}
        return None


def scanner_for(ctx: DsrContext) -> Scanner:
    """A ``Scanner`` that decrypts the catalog's encrypted datasets."""
    return catalog_scanner(ctx.keys)
