"""A request from start to certificate, in three steps the CLI runs in one process and the DAGs as tasks.

1. ``begin``: record the request (received, deadline), resolve the subject across the catalog, check a
   rectification's new values against the data, and keep the resolved identifiers sealed in the state folder
   (so a rerun after a failure still finds rows only reachable through data already erased).
2. ``carry_out``: one dataset (``process_dataset`` or ``export_dataset``), or one part of its files
   (``dsr.parts``); the DAGs map it over the parts of the datasets, a dataset within the limits being one.
3. ``complete``: merge the parts' outcomes into one per dataset, re-read every dataset to verify, shred
   per-subject keys (erasure), write the access package's manifest, record the outcome, and issue the
   certificate signed with the audit log's key.

Rerunning a request (same ``request_id``) is safe: changes already made are not made again, the outcome
says ``already_completed`` when nothing was left to do, and the certificate covers every audit entry the
request ever produced. The identifiers kept between runs are sealed by ``dsr.state``; what the DAGs' tasks
hand each other is ``dsr.registration``, and an approver's decision ``dsr.approval``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.dsr import certificate as cert
from airflow_aisec.dsr.access import export_dataset, package_location, write_manifest
from airflow_aisec.dsr.apply import process_dataset, verify_dataset
from airflow_aisec.dsr.context import DatasetOutcome, DsrContext, scanner_for
from airflow_aisec.dsr.edits import check_rectification
from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.dsr.parts import Part, PartLimits, Plan, merge_outcomes, part_summary, plan_parts
from airflow_aisec.dsr.request import REQUEST_TYPES, is_pseudonym
from airflow_aisec.dsr.resolve import DatasetMatch, Resolution, Resolver
from airflow_aisec.dsr.state import Binding, StateStore
from airflow_aisec.exceptions import DsrError
from airflow_aisec.io import FileInfo, Location, put_small_file

if TYPE_CHECKING:
    from airflow_aisec.audit.log import AuditLog
    from airflow_aisec.catalog import Catalog
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.dsr.index import SubjectIndex
    from airflow_aisec.dsr.request import DsrRequest
    from airflow_aisec.retention.holds import Hold

CERTIFICATES = "certificates"
# Statuses after which the request is done: nothing is kept for a rerun.
DONE = ("completed", "already_completed", "no_data_found", "dry_run")


@dataclasses.dataclass
class Begun:
    """What ``begin`` found: the request as recorded, where the subject is, and their identifiers; ``listed``
    the files of each dataset holding the subject, as listed (their sizes split a dataset into parts)."""

    request: DsrRequest
    resolution: Resolution
    binding: Binding
    listed: dict[str, list[FileInfo]] = dataclasses.field(default_factory=dict)

    def plan(self, limits: PartLimits | None = None) -> Plan:
        """The parts of the datasets that ``limits`` split (``dsr.parts``); an access request is not split."""
        if self.request.type == "access":
            return {}
        return plan_parts(self.resolution.datasets, self.listed, limits)

    def public(self, ctx: DsrContext) -> dict[str, Any]:
        """Safe for logs and XCom: no raw identifier, the reason masked."""
        return {"request": ctx.public_request(), **self.resolution.public()}


def begin(ctx: DsrContext, *, state: StateStore | None = None) -> Begun:
    """Record the request, resolve the subject, and check what can be checked before changing anything.

    A request id already used for another subject or type of request is refused first (``bind``).
    """
    binding = bind(ctx)
    if ctx.request.type == "access":
        _check_export_key(ctx)
    _record_binding(ctx, binding)
    # Resolving only reads; the request is recorded once the reason can be scrubbed of every identifier.
    seed = state.load(binding) if state is not None else None
    resolver = Resolver(ctx.catalog, scanner=scanner_for(ctx), s3=ctx.s3, index=ctx.index)
    resolution = resolver.resolve(ctx.request.identity_type, ctx.request.identity_value, seed=seed)
    ctx.note_identifiers(resolution.identifiers)
    _recorded_request(ctx)
    if state is not None and not ctx.request.dry_run:
        state.save(binding, resolution.identifiers)
    if ctx.request.type == "rectification":
        for match in resolution.datasets.values():
            check_rectification(ctx, match)
    ctx.record(
        ctx.key("resolved", _digest(resolution.public())), "success",
        rows=sum(m.rows for m in resolution.datasets.values()),
        details={"stage": "resolve", "found": resolution.found, "datasets": {
            n: {"rows": m.rows, "mentions": m.mentions, "files": len([f for f in m.files])}
            for n, m in resolution.datasets.items()
        }},
    )  # fmt: skip
    # Listed by the resolution already (every file holding the subject was found in a listing).
    listed = {n: resolver.files(ctx.catalog.dataset(n)) for n, m in resolution.datasets.items() if m.files}
    return Begun(ctx.request, resolution, binding, listed)


def bind(ctx: DsrContext) -> Binding:
    """The request's ``Binding``; ``DsrError`` (naming the request id, never an identity) when the id already
    stands for another subject or type of request in the audit log. Only reads the audit log."""
    if is_pseudonym(ctx.request.identity_value):
        rid = ctx.request.request_id
        raise DsrError(f"request {rid}: the identity value is a pseudonym, not an identifier of the subject")
    binding = Binding.of(ctx)
    for kind, data in _recorded_under(ctx, binding):
        details = data.get("details") or {}
        why = binding.conflict(kind or details.get("type"), details.get("identity_type"), data.get("subject"))
        if why is not None:
            rid = binding.request_id
            raise DsrError(f"request id {rid!r} is already used: {why}; give this request its own request id")
    return binding


def _recorded_under(ctx: DsrContext, binding: Binding) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """The binding entry of the request id, and the requests recorded under it before there were bindings
    (with their type)."""
    if ctx.audit is None:
        return
    keys = [(None, binding.key)] + [(t, f"dsr.{t}:{binding.request_id}:request") for t in REQUEST_TYPES]
    for kind, key in keys:
        for found, index in ctx.audit.keyed(key):
            if found == key:
                yield kind, next(ctx.audit.entries(index, index + 1)).data


def _record_binding(ctx: DsrContext, binding: Binding) -> None:
    """Record the binding the first time the request id is used (the first writer wins: checked again)."""
    if ctx.audit is None:
        return
    ctx.audit.append(
        ctx.request.action, idempotency_key=binding.key, subject=binding.subject, outcome="success",
        details={"request_id": binding.request_id, "stage": "binding", "type": binding.type,
                 "identity_type": binding.identity_type},
    )  # fmt: skip
    bind(ctx)


def _check_export_key(ctx: DsrContext) -> None:
    """Fail before reading anything when the export key cannot encrypt (missing, destroyed, KMS down)."""
    key = ctx.request.export_key or ""
    try:
        ctx.key_provider(key).generate_data_key(key, {"request_id": ctx.request.request_id})
    except Exception as exc:
        raise DsrError(f"export key {key!r} cannot encrypt the package: {exc}") from exc


def _recorded_request(ctx: DsrContext) -> None:
    """Record the request once; a rerun takes the original's received time (hence its deadline)."""
    if ctx.audit is None:
        return
    key = ctx.key("request")
    earlier = ctx.audit.keyed(key)
    if earlier:
        details = next(ctx.audit.entries(earlier[0][1], earlier[0][1] + 1)).data.get("details", {})
        if details.get("received_at"):
            received = dt.datetime.fromisoformat(details["received_at"])
            ctx.request = dataclasses.replace(ctx.request, received_at=received)
        return
    ctx.record(key, "intent", details={"stage": "request", **ctx.public_request()})


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def carry_out(
    ctx: DsrContext,
    match: DatasetMatch,
    ids: Identifiers,
    *,
    exports: str | None = None,
    part: Part | None = None,
) -> DatasetOutcome:
    """Carry the request out on one dataset, or on one ``part`` of its files (erasure, rectification)."""
    ctx.note_identifiers(ids)
    if ctx.request.type == "access":
        if part is not None and not part.whole:
            raise DsrError(
                f"dataset {match.dataset}: an access request exports a dataset whole, not in parts"
            )
        if exports is None:
            raise DsrError("an access request needs a folder for its export package ([aisec] dsr_exports)")
        return export_dataset(ctx, match, ids, package_location(ctx, exports))
    return process_dataset(ctx, match, ids, part)


def rescan(ctx: DsrContext, ids: Identifiers, match: DatasetMatch, part: Part | None = None) -> DatasetMatch:
    """``match`` brought up to date: files changed since the scan are read again (with ``part``, only the
    files that part owns)."""
    resolver = Resolver(ctx.catalog, scanner=scanner_for(ctx), s3=ctx.s3, index=ctx.index)
    return resolver.rescan(ids, match, None if part is None or part.whole else part.owns)


def complete(
    ctx: DsrContext,
    resolution: Resolution,
    outcomes: Sequence[DatasetOutcome],
    *,
    exports: str | None = None,
    state: StateStore | None = None,
    approved: bool = True,
    parts: Plan | None = None,
) -> dict[str, Any]:
    """Verify, shred, record the outcome and return the signed certificate.

    ``outcomes`` hold one outcome per part of each dataset (``parts``: the registered plan; without it every
    dataset is one part); they are merged into one per dataset first. A dataset of the resolution without an
    outcome (its task never ran), or missing a part, counts as failed, not processed. ``approved`` False (the
    approval failed: refused, timed out) destroys no key whatever the outcomes.
    """
    audit = ctx.audit
    if audit is None:
        raise DsrError("a certificate needs the audit log")
    outcomes = merge_outcomes(list(resolution.datasets), outcomes, parts)
    ids = resolution.identifiers
    ctx.note_identifiers(ids)
    by_name = {o.dataset: o for o in outcomes}
    verification = {}
    if ctx.request.type != "access":
        for name, match in resolution.datasets.items():
            if name in by_name:
                verification[name] = verify_dataset(ctx, match, ids, by_name[name])
    erasing = ctx.request.type == "erasure" and not ctx.request.dry_run and approved
    shredded = _shred(ctx, ids, outcomes) if erasing else []
    export = (
        _export(ctx, outcomes, exports) if ctx.request.type == "access" and not ctx.request.dry_run else None
    )
    holding = [name for name, m in resolution.datasets.items() if m.rows or m.mentions]
    coverage = cert.coverage(ctx.catalog, audit, holding)
    status = _status(ctx, resolution, outcomes, verification)
    if not coverage["complete"] and status != "dry_run":
        status = "failed"  # copies the catalog does not list still hold the subject: not done, not verified
    summary = _summary(outcomes, verification)
    summary["verified"] = summary["verified"] and coverage["complete"]
    summary["not_covered"] = [c["dataset"] for c in coverage["not_covered"]]
    ctx.record(
        ctx.key("complete", _digest([status, summary, shredded])),
        "failure" if status == "failed" else "success", rows=summary["rows_affected"],
        details={"stage": "complete", "status": status, "summary": summary, "keys_shredded": shredded},
    )  # fmt: skip
    extra = {"coverage": coverage, "mentions_searched": cert.mention_kinds(ctx.catalog, resolution)}
    document = _certificate(ctx, audit, status, summary, outcomes, verification, shredded, export, extra)
    if state is not None:  # kept while data is held or a dataset failed: a rerun still finds everything
        state.finish(Binding.of(ctx), ids, keep=status not in DONE and not ctx.request.dry_run)
    return document


def _status(
    ctx: DsrContext,
    resolution: Resolution,
    outcomes: Sequence[DatasetOutcome],
    verification: Mapping[str, Any],
) -> str:
    if any(o.status == "failed" for o in outcomes) or not all(v["verified"] for v in verification.values()):
        return "failed"
    if ctx.request.dry_run:
        return "dry_run"
    changed = _changed(outcomes)
    earlier = _completed_before(ctx)
    if any(o.status == "held" for o in outcomes):
        return "completed_with_holds"
    if not changed and earlier:
        return "already_completed"
    if not resolution.found and not changed:
        return "no_data_found"
    return "completed"


def _completed_before(ctx: DsrContext) -> bool:
    """Whether an earlier run of the request completed it (dry runs and failures do not count)."""
    if ctx.audit is None:
        return False
    for _key, index in ctx.audit.keyed(ctx.key("complete")):
        details = next(ctx.audit.entries(index, index + 1)).data.get("details") or {}
        if details.get("status") in ("completed", "completed_with_holds", "already_completed"):
            return True
    return False


def _changed(outcomes: Sequence[DatasetOutcome]) -> bool:
    return any(o.changed or o.status == "exported" for o in outcomes)


def _summary(outcomes: Sequence[DatasetOutcome], verification: Mapping[str, Any]) -> dict[str, Any]:
    files = [f for o in outcomes for f in o.files]
    # Rows are counted per part, by what happened to them: a dataset whose parts changed some rows and held
    # others (a hold that came into force mid-request) counts each where it belongs.
    parts = {o.dataset: o.part_outcomes or [part_summary(o)] for o in outcomes}
    units = [p for found in parts.values() for p in found]
    done = [p for p in units if p["status"] in ("changed", "exported")]
    return {
        "datasets_changed": sorted(o.dataset for o in outcomes if o.changed or o.status == "exported"),
        "datasets_held": sorted(n for n, found in parts.items() if any(p["status"] == "held" for p in found)),
        "rows_affected": sum(p["rows_affected"] for p in done),
        "rows_held": sum(p["rows_affected"] for p in units if p["status"] == "held"),
        "mentions_masked": sum(p["mentions_masked"] for p in done if p["status"] == "changed"),
        "files_rewritten": sum(1 for f in files if f.action == "rewrite"),
        "files_deleted": sum(1 for f in files if f.action == "delete"),
        "verified": all(v["verified"] for v in verification.values()),
        # Where verification looked: "nothing found" is "nothing found in these files and rows".
        "files_examined": sum(v["files_read"] + v["files_read_by_request"] for v in verification.values()),
        "rows_examined": sum(v["rows_read"] + v["rows_read_by_request"] for v in verification.values()),
        "index_entries_rejected": sum(v["index_entries_rejected"] for v in verification.values()),
    }


def _shred(ctx: DsrContext, ids: Identifiers, outcomes: Sequence[DatasetOutcome]) -> list[str]:
    """Destroy the subject's per-subject keys, unless a held dataset still needs them."""
    from airflow_aisec.crypto.pseudonyms import Pseudonymizer
    from airflow_aisec.crypto.shredding import subject_column
    from airflow_aisec.crypto.subjects import subject_key_name

    catalog = ctx.catalog
    sealed = [d for d in catalog.datasets.values() if d.encryption and d.encryption.per_subject_columns]
    if not sealed:
        return []
    held = {o.dataset for o in outcomes if o.status in ("held", "failed")}
    if held & {d.name for d in sealed}:
        return []  # the held data must stay readable; the keys go when the hold is lifted and erasure rerun
    pseudonymize = Pseudonymizer(ctx.keyring.ensure(catalog.subjects.pseudonym_key, "symmetric").material)
    names: set[str] = set()
    for dataset in sealed:
        column = subject_column(catalog, dataset)
        for kind, col in dataset.identity.items():
            if col == column:
                names |= {subject_key_name(pseudonymize, v) for v in ids.identities.get(kind, ())}
        target = dataset.reference_targets().get(column or "")
        if target is not None:
            names |= {subject_key_name(pseudonymize, v) for v in ids.linked.get(target, ())}
    return _shred_keys(ctx, sorted(names))


def _shred_keys(ctx: DsrContext, names: Sequence[str]) -> list[str]:
    """Shred each per-subject key in every store of the catalog (the keyring, KMS-wrapped subject_keys)."""
    shredded: list[str] = []
    stores = ctx.keys.subject_key_stores()
    for name in names:
        for store in stores:
            result = store.shred(name)
            if result.changed is None:
                continue  # the subject never had a key of their own in this store
            if ctx.audit is not None:
                where = () if store.provider == "local" else (result.location,)
                ctx.audit.append(
                    "key.shred", idempotency_key=ctx.key("key-shred", name, *where), subject=ctx.subject,
                    outcome="success" if result.changed else "noop",
                    details={"request_id": ctx.request.request_id, **result.audit_details()},
                )  # fmt: skip
            if name not in shredded:
                shredded.append(name)
    return shredded


def _export(
    ctx: DsrContext, outcomes: Sequence[DatasetOutcome], exports: str | None
) -> dict[str, Any] | None:
    if exports is None:
        return None
    package = package_location(ctx, exports)
    manifest = write_manifest(ctx, package, outcomes)
    ctx.record(
        ctx.key("manifest", manifest["sha256"]), "success",
        outputs=[{"uri": manifest["uri"], "sha256": manifest["sha256"]}],
        details={"stage": "manifest", "key": ctx.request.export_key},
    )  # fmt: skip
    return {"package": package.uri, "key": ctx.request.export_key, "manifest": manifest}


def _history(audit: AuditLog, ctx: DsrContext) -> tuple[list[int], dict[str, list[dict[str, Any]]]]:
    """Every audit entry of the request (all runs), and the file changes recorded, per dataset."""
    indices = []
    files: dict[str, list[dict[str, Any]]] = {}
    for key, index in audit.keyed(ctx.key("")):
        indices.append(index)
        if not key.endswith(":success"):
            continue
        data = next(audit.entries(index, index + 1)).data
        details = data.get("details") or {}
        if "operation" in details:
            source = (data.get("inputs") or [{}])[0]
            keep = (
                "action", "rows_before", "rows_after", "rows_affected", "mentions_masked", "sha256_before",
                "sha256_after", "versions_purged", "recovered",
            )  # fmt: skip
            change = {"uri": source.get("uri"), "audit_entry": index, **{k: details.get(k) for k in keep}}
            files.setdefault(str(data.get("dataset")), []).append(change)
    return indices, files


def _certificate(
    ctx: DsrContext,
    audit: AuditLog,
    status: str,
    summary: dict[str, Any],
    outcomes: Sequence[DatasetOutcome],
    verification: Mapping[str, Any],
    shredded: list[str],
    export: dict[str, Any] | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    indices, history = _history(audit, ctx)
    issued = dt.datetime.now(dt.UTC)
    datasets = [
        {
            "dataset": o.dataset,
            "strategy": o.strategy,
            "status": o.status,
            "rows_affected": o.rows_affected,
            "rows_held": o.rows_held,
            "mentions_masked": o.mentions_masked,
            "legal_hold": o.legal_hold,
            "error": o.error,
            "changed_in_this_run": o.changed or o.status == "exported",
            "parts": o.parts,
            **({"part_outcomes": o.part_outcomes} if o.part_outcomes else {}),
            "files": history.get(o.dataset, [])
            if ctx.request.type != "access"
            else (o.export or {}).get("files", []),
            "verification": verification.get(o.dataset),
        }
        for o in outcomes
    ]
    body = {
        "format": cert.FORMAT,
        "version": 1,
        "request": ctx.public_request(),
        "status": status,
        "changed_in_this_run": _changed(outcomes),
        "issued_at": issued.isoformat(timespec="seconds"),
        "deadline_met": issued <= ctx.request.deadline,
        "summary": summary,
        "datasets": datasets,
        "keys_shredded": shredded,
        "export": export,
        **(extra or {}),
        "audit": cert.proofs(audit, indices),
    }
    return cert.sign(body, audit)


def save_certificate(document: Mapping[str, Any], target: str, s3: Any = None) -> str:
    """Write the certificate to a file or ``s3://`` URI (replacing it); returns the URI."""
    location = Location.parse(target, s3)
    put_small_file(location, cert.dumps(document).encode("utf-8"))
    return location.uri


def certificate_target(exports: str, request_id: str, s3: Any = None) -> str:
    """Where the DAGs keep a request's certificate: ``<[aisec] dsr_exports>/certificates/<id>.json``."""
    return Location.parse(exports, s3).join(CERTIFICATES, f"{request_id}.json").uri


def run_request(
    catalog: Catalog,
    request: DsrRequest,
    *,
    keyring: LocalKeyring,
    audit: AuditLog,
    s3: Any = None,
    exports: str | None = None,
    state: StateStore | None = None,
    holds: Mapping[str, Hold] | None = None,
    index: SubjectIndex | None = None,
    find_spans: Any = None,
) -> dict[str, Any]:
    """Carry a request out in this process, dataset after dataset; returns the signed certificate."""
    ctx = DsrContext(
        catalog,
        request,
        keyring=keyring,
        audit=audit,
        s3=s3,
        find_spans=find_spans,
        holds=holds,
        index=index,
    )
    begun = begin(ctx, state=state)
    ids = begun.resolution.identifiers
    outcomes = [carry_out(ctx, m, ids, exports=exports) for m in begun.resolution.datasets.values()]
    return complete(ctx, begun.resolution, outcomes, exports=exports, state=state)


def active_holds(holds: str | None, today: dt.date | None = None) -> dict[str, Hold]:
    """The per-subject legal holds in force (``aisec holds``), pseudonym → hold; a request checks them
    against every identity of its subject."""
    if not holds:
        return {}
    from airflow_aisec.retention.holds import HoldList

    return HoldList(holds).active(today or dt.datetime.now(dt.UTC).date())
