"""``aisec keys``: create, list, rotate, export and shred master keys (local keyring or AWS KMS).

Nothing here ever prints key material. Rotations and destructions are recorded in the audit log, a data
subject only as their keyed pseudonym; the raw subject id given to ``shred --subject-id`` is never shown.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from airflow_aisec import config
from airflow_aisec.cli.common import CatalogOpt, VarOpt, fail, global_options, open_audit_log, print_json

app = typer.Typer(
    help="Create, list, rotate, export and shred master keys (local keyring or AWS KMS).",
    no_args_is_help=True,
)

BANNER = "LOCAL KEYRING — NOT FOR PRODUCTION (use a KMS)"
PROVIDERS = ("local", "aws-kms")
KINDS = ("symmetric", "ed25519", "ec-p256", "ec-p384")

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Key name.")]
ProviderOpt = Annotated[
    str, typer.Option("--provider", help="local (keyring file, not for production) or aws-kms.")
]
KeyIdOpt = Annotated[
    str | None, typer.Option("--key-id", help="KMS key id, ARN or alias (default: alias/NAME).")
]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Product errors (unsafe keyring, missing key, KMS refusal) become a message and exit code 2."""
    from airflow_aisec.exceptions import AisecError

    try:
        yield
    except AisecError as e:
        raise fail(str(e)) from None


def _keyring(ctx: typer.Context) -> Any:
    from airflow_aisec.crypto.keyring import LocalKeyring

    return LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))


def _audit_log(ctx: typer.Context, catalog: Any = None) -> Any:
    """The audit log of ``--log`` (opened before a key changes, so no change goes unrecorded); with a
    ``catalog``, subjects are pseudonymized under its ``subjects.pseudonym_key``."""
    from airflow_aisec.audit.log import PSEUDONYM_KEY

    opts = global_options(ctx)
    key = catalog.subjects.pseudonym_key if catalog is not None else PSEUDONYM_KEY
    return open_audit_log(opts.log, keyring=opts.keyring, pseudonym_key=key)


def _kms(ctx: typer.Context, name: str, provider: str, key_id: str | None) -> Any:
    """The AWS KMS provider of ``name``, or None for the local keyring."""
    if provider not in PROVIDERS:
        raise fail(f"unknown --provider {provider!r}: use local or aws-kms")
    if provider == "local":
        if key_id:
            raise fail("--key-id names a KMS key: use it with --provider aws-kms")
        return None
    from airflow_aisec.catalog.models import KeySpec
    from airflow_aisec.crypto.keysource import provider_for

    return provider_for(KeySpec(provider="aws-kms", key_id=key_id), key_name=name)


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    kind: Annotated[
        str,
        typer.Option(
            "--kind", help="symmetric (encryption), ed25519 (signing), ec-p256 or ec-p384 (model signing)."
        ),
    ] = "symmetric",
    provider: ProviderOpt = "local",
    key_id: KeyIdOpt = None,
) -> None:
    """Create a key (nothing changes if it already exists)."""
    if kind not in KINDS:
        raise fail(f"unknown --kind {kind!r}: use symmetric, ed25519, ec-p256 or ec-p384")
    with _errors():
        kms = _kms(ctx, name, provider, key_id)
        if kms is not None:
            if kind == "ec-p256":
                _create_kms_signing(ctx, kms, name)
                return
            if kind != "symmetric":
                raise fail(
                    "aisec makes symmetric or ec-p256 (model signing) KMS keys: use one of those kinds"
                )
            _create_kms(ctx, kms, name)
            return
        ring = _keyring(ctx)
        if name in ring.names():
            key = ring.create(name, kind, exist_ok=True)  # fails if it exists as another kind
            typer.echo(f"key {name!r} already exists ({key.kind}, active version {key.version})")
            return
        with _audit_log(ctx) as log:
            key = ring.create(name, kind, exist_ok=True)
            log.append("key.create", details={"key": name, "kind": kind, "provider": "local", "version": 1})
        typer.echo(f"created {kind} key {name!r} (version {key.version}) in {ring.path}")
        typer.echo(BANNER, err=True)


def _create_kms(ctx: typer.Context, kms: Any, name: str) -> None:
    if kms.describe(name) is not None:
        kms.create(name)  # refuses a key pending deletion
        typer.echo(f"KMS key {name!r} already exists ({kms.key_id(name)})")
        return
    with _audit_log(ctx) as log:
        kms.create(name)
        log.append("key.create", details={"key": name, "provider": "aws-kms", "key_id": kms.key_id(name)})
    typer.echo(f"created KMS key {name!r} ({kms.key_id(name)})")


def _create_kms_signing(ctx: typer.Context, kms: Any, name: str) -> None:
    """An ECC_NIST_P256 SIGN_VERIFY KMS key (model signing), recorded as key.create when new."""
    from airflow_aisec.model.keys import KmsSigningKeys

    keys = KmsSigningKeys(lambda: kms.client, {name: kms.key_id(name)})
    if kms.describe(name) is not None:
        keys.create_signing_key(name)  # refuses a key that is not a signing key
        typer.echo(f"KMS key {name!r} already exists ({kms.key_id(name)})")
        return
    with _audit_log(ctx) as log:
        key_id = keys.create_signing_key(name)
        details = {"key": name, "provider": "aws-kms", "kind": "ec-p256", "key_id": kms.key_id(name)}
        log.append("key.create", details={**details, "kms_key_id": key_id})
    typer.echo(
        f"created KMS signing key {name!r} ({kms.key_id(name)}); sign with --key aws-kms:{kms.key_id(name)}"
    )


@app.command("list")
def list_keys(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Names, kinds, versions, states and creation times of the local keyring's keys (never material)."""
    with _errors():
        ring = _keyring(ctx)
        keys = [_describe(ring, name) for name in ring.names()]
    if as_json:
        print_json(
            {
                "provider": "local",
                "production_ready": False,
                "warning": BANNER,
                "keyring": str(ring.path),
                "keys": keys,
            }
        )
        return
    typer.echo(BANNER)
    typer.echo(f"keyring: {ring.path}")
    if not keys:
        typer.echo("no keys")
    for key in keys:
        active = key["active_version"] if key["active_version"] is not None else "none"
        typer.echo(f"{key['name']}  {key['kind']}  active version: {active}")
        for v in key["versions"]:
            typer.echo(f"    v{v['version']}  {v['state']:<9}  created {v['created']}")


def _describe(ring: Any, name: str) -> dict[str, Any]:
    versions = ring.versions(name)
    active = [v.version for v in versions if v.state == "active"]
    return {
        "name": name,
        "kind": versions[0].kind,
        "active_version": active[-1] if active else None,
        "versions": [{"version": v.version, "state": v.state, "created": v.created} for v in versions],
    }


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    name: NameArg,
    provider: ProviderOpt = "local",
    key_id: KeyIdOpt = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Also re-wrap the data keys of every file of this catalog dataset."),
    ] = None,
    catalog: Annotated[str | None, typer.Option("--catalog", help="Catalog (with --dataset).")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="Catalog placeholder, name=value.")] = None,
    retire_old: Annotated[
        bool, typer.Option("--retire-old", help="Destroy older versions once every file is re-wrapped.")
    ] = False,
) -> None:
    """Make a new active version; older versions still decrypt and verify. Recorded as key.rotate.

    With --dataset, every file of the dataset gets its data keys re-wrapped under the new version (the
    data itself is not rewritten), each file recorded in the audit log.
    """
    if dataset is not None:
        from airflow_aisec.cli.crypto import rekey

        with _errors():
            rekey(ctx, name, dataset, catalog, var, retire_old)
        return
    with _errors():
        kms = _kms(ctx, name, provider, key_id)
        if kms is not None:
            with _audit_log(ctx) as log:
                details = kms.rotate_now(name)
                log.append("key.rotate", details=details)
            typer.echo(f"KMS key {name!r} rotated ({details['method']}); old ciphertexts still decrypt")
            return
        ring = _keyring(ctx)
        ring.get(name)  # a missing key, or one without an active version, fails before the log opens
        with _audit_log(ctx) as log:
            new = ring.rotate(name)
            log.append(
                "key.rotate",
                details={"key": name, "provider": "local", "kind": new.kind, "version": new.version},
            )
    typer.echo(f"key {name!r} rotated: version {new.version} is active; older versions still work")


@app.command("export-public")
def export_public(
    ctx: typer.Context,
    name: NameArg,
    fmt: Annotated[
        str,
        typer.Option("--format", help="pem (ed25519 public key) or note (audit log verifier key, C2SP)."),
    ] = "pem",
) -> None:
    """Print the public half of an ed25519 key (safe to share)."""
    from airflow_aisec.audit.log import SIGNING_KEY

    if fmt not in ("pem", "note"):
        raise fail(f"unknown --format {fmt!r}: use pem or note")
    with _errors():
        key = _keyring(ctx).get(name)
        if fmt == "pem":
            typer.echo(key.public_key_pem(), nl=False)
            return
        if name != SIGNING_KEY:
            raise fail(f"--format note is the audit log's verifier key: use NAME {SIGNING_KEY}")
        with _audit_log(ctx) as log:
            typer.echo(log.verifier_key())


@app.command("shred")
def shred(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="Key to destroy (or give --subject-id).")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="Destroy only this version (local keys).")
    ] = None,
    subject_id: Annotated[
        str | None, typer.Option("--subject-id", help="Destroy the per-subject key of this data subject.")
    ] = None,
    provider: ProviderOpt = "local",
    key_id: KeyIdOpt = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
) -> None:
    """Destroy key material for good: data it encrypted can never be decrypted (crypto-shredding).

    Idempotent: shredding a destroyed key says so and exits 0. Recorded as key.shred (a subject only as
    their pseudonym). With --subject-id and a catalog, the subject's key goes from every store the catalog
    keeps per-subject keys in (the local keyring, and KMS-wrapped keys under a key's subject_keys).
    """
    if (name is None) == (subject_id is None):
        raise fail("give either NAME or --subject-id")
    if subject_id is not None and (catalog or global_options(ctx).catalog):
        from airflow_aisec.cli.common import load_catalog_option

        loaded = load_catalog_option(ctx, catalog, var)
        with _errors(), _audit_log(ctx, loaded) as log:
            _shred_subject(ctx, log, subject_id, loaded)
        return
    with _errors(), _audit_log(ctx) as log:
        if subject_id is not None:
            from airflow_aisec.crypto.subjects import subject_key_name

            name = subject_key_name(log, subject_id)
        assert name is not None
        _refuse_audit_keys(name)
        kms = _kms(ctx, name, provider, key_id)
        if kms is not None:
            changed = None if kms.describe(name) is None else kms.destroy(name, version)
            done = "deletion scheduled (KMS erases it after 7 days; it is unusable from now on)"
        else:
            changed = _shred_local(_keyring(ctx), name, version, is_subject=subject_id is not None)
            done = "destroyed"
        log.append(
            "key.shred",
            subject=subject_id,  # stored only as its pseudonym
            details={"key": name, "provider": provider, "version": version},
            outcome="success" if changed else "noop",
        )
    which = f"key {name!r}" + (f" version {version}" if version is not None else "")
    if changed is None:  # a subject without a key, or a KMS key already erased (or never made)
        typer.echo(f"no {which} found: nothing to shred")
    else:
        typer.echo(f"{which} {done}" if changed else f"{which} already destroyed")


def _shred_subject(ctx: typer.Context, log: Any, subject_id: str, loaded: Any) -> None:
    """Shred the subject's key in every store of the catalog, one key.shred entry per store."""
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.crypto.subjects import subject_key_name

    name = subject_key_name(log, subject_id)
    for store in KeySource(loaded, _keyring(ctx)).subject_key_stores():
        result = store.shred(name)
        log.append(
            "key.shred",
            subject=subject_id,  # stored only as its pseudonym
            details=result.audit_details(),
            outcome="success" if result.changed else "noop",
        )
        where = f"key {name!r} ({result.provider}, {store.where()})"
        if result.changed is None:
            typer.echo(f"no {where} found: nothing to shred")
        else:
            typer.echo(f"{where} destroyed" if result.changed else f"{where} already destroyed")


def _refuse_audit_keys(name: str) -> None:
    from airflow_aisec.audit.log import PSEUDONYM_KEY, SIGNING_KEY

    if name in (SIGNING_KEY, PSEUDONYM_KEY):
        raise fail(f"refusing to shred {name!r}: the audit log needs it (rotate it instead)")


def _shred_local(ring: Any, name: str, version: int | None, *, is_subject: bool) -> bool | None:
    """True if destroyed now, False if it already was, None if a subject has no key."""
    if name not in ring.names():
        if is_subject:
            return None
        raise fail(f"key {name!r} is not in keyring {ring.path}")
    if version is not None and version not in [v.version for v in ring.versions(name)]:
        raise fail(f"key {name!r} has no version {version}")
    return bool(ring.destroy(name, version))
