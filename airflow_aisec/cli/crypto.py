"""``aisec encrypt`` and ``aisec decrypt``: Parquet column encryption, envelope encryption for other files."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from airflow_aisec.cli.common import (
    CatalogOpt,
    JsonOpt,
    VarOpt,
    console,
    fail,
    global_options,
    load_catalog_option,
    open_audit_log,
    print_json,
)

DatasetOpt = Annotated[
    str | None, typer.Option("--dataset", help="Catalog dataset: its encryption block gives key and columns.")
]


def _setup(ctx: typer.Context, catalog: str | None, dataset: str | None, var: list[str] | None) -> Any:
    """(the catalog's ``KeySource``, dataset spec, keyring) — key source and dataset only with --dataset.

    KMS keys are reached with boto3's credential chain (a catalog key's ``aws_conn_id`` names an Airflow
    connection, which the command line does not have).
    """
    from airflow_aisec import config
    from airflow_aisec.crypto.keyring import LocalKeyring
    from airflow_aisec.crypto.keysource import KeySource

    keyring = LocalKeyring(config.get_setting("keyring", global_options(ctx).keyring))
    if dataset is None:
        return None, None, keyring
    loaded = load_catalog_option(ctx, catalog, var)
    try:
        return KeySource(loaded, keyring), loaded.dataset(dataset), keyring
    except KeyError as e:
        raise fail(str(e.args[0])) from None


def _provider(keys: Any, key_name: str, keyring: Any) -> Any:
    """The catalog's provider of ``key_name``; without a catalog, or for a key it does not declare, the
    local keyring."""
    from airflow_aisec.crypto.providers import LocalKeyProvider

    if keys is not None and key_name in keys.catalog.keys:
        return keys.provider(key_name)
    return LocalKeyProvider(keyring)


def _format(source: Any, fmt: str | None) -> str:
    """A dataset format, or ``file`` for anything else (model weights, archives: encrypted as bytes)."""
    from airflow_aisec.crypto.datasets import RAW
    from airflow_aisec.exceptions import DatasetIOError
    from airflow_aisec.io import FORMATS, guess_format

    if fmt is not None:
        return fmt if fmt in FORMATS else RAW
    try:
        return guess_format(source)
    except DatasetIOError:
        return RAW


def _summary(files: list[Any]) -> None:
    methods = ", ".join(sorted({f.method for f in files}))
    removed = sum(1 for f in files if getattr(f, "plaintext_removed", False))
    console.print(
        f"{len(files)} files ({methods}), e.g. {files[0].source} -> {files[0].target}"
        + (f"; {removed} plaintext files replaced by their envelopes" if removed else ""),
        highlight=False,
    )


def _record(ctx: typer.Context, action: str, dataset: str | None, files: list[Any], key: str | None) -> int:
    from airflow_aisec.crypto.datasets import describe

    fields = describe(files)
    fields["details"]["key"] = key
    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:
        return log.append(action, dataset=dataset, **fields)


def encrypt(
    ctx: typer.Context,
    input_uri: Annotated[str, typer.Argument(metavar="INPUT", help="File or folder to encrypt.")],
    output_uri: Annotated[
        str,
        typer.Argument(
            metavar="OUTPUT",
            help="Where to write; INPUT itself encrypts in place (a plaintext file becomes its envelope).",
        ),
    ],
    key: Annotated[
        str | None, typer.Option("--key", help="Master key name (default: the dataset's).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option("--columns", help="Parquet columns to encrypt, comma-separated (default: all)."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet, csv, jsonl (default: guessed).")
    ] = None,
    catalog: CatalogOpt = None,
    dataset: DatasetOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Encrypt Parquet columns (modular encryption) or any other file (streamed AES-256-GCM envelope)."""
    from airflow_aisec.crypto.datasets import encrypt_files, sse_kms_key, subject_columns
    from airflow_aisec.io import Location

    keys, spec, keyring = _setup(ctx, catalog, dataset, var)
    key_name = key or (spec.encryption.key if spec is not None and spec.encryption else None)
    if key_name is None:
        raise fail("name the master key with --key, or give --dataset whose catalog entry has encryption")
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if wanted is None and spec is not None and spec.encryption:
        wanted = list(spec.encryption.columns)
    source, target = Location.parse(input_uri), Location.parse(output_uri)
    fmt = _format(source, fmt or (spec.format if spec else None))
    subjects = subject_columns(keys, spec) if keys is not None else None
    files = encrypt_files(
        source, target, fmt, _provider(keys, key_name, keyring), key_name,
        columns=wanted, context={"dataset": spec.name if spec else source.name}, subjects=subjects,
        sse_kms_key_id=sse_kms_key(keys.catalog if keys is not None else None, key_name),
        purge_versions=spec is not None and spec.retention is not None and spec.retention.purge_versions,
    )  # fmt: skip
    index = _record(ctx, "dataset.encrypt", spec.name if spec else None, files, key_name)
    if as_json:
        print_json({"files": [f.__dict__ for f in files], "audit_entry": index})
        return
    _summary(files)


def decrypt(
    ctx: typer.Context,
    input_uri: Annotated[str, typer.Argument(metavar="INPUT", help="Encrypted file or folder.")],
    output_uri: Annotated[str, typer.Argument(metavar="OUTPUT", help="Where to write the plaintext.")],
    key: Annotated[str | None, typer.Option("--key", help="Master key name (to pick its provider).")] = None,
    catalog: CatalogOpt = None,
    dataset: DatasetOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decrypt encrypted Parquet files and ``.aisec`` envelopes; plaintext appears only once verified."""
    from airflow_aisec.crypto.datasets import decrypt_files, subject_columns
    from airflow_aisec.io import Location

    keys, spec, keyring = _setup(ctx, catalog, dataset, var)
    key_name = key or (spec.encryption.key if spec is not None and spec.encryption else "")
    subjects = subject_columns(keys, spec) if keys is not None else None
    files = decrypt_files(
        Location.parse(input_uri),
        Location.parse(output_uri),
        _provider(keys, key_name, keyring),
        subjects=subjects,
    )
    index = _record(ctx, "dataset.decrypt", spec.name if spec else None, files, key_name or None)
    if as_json:
        print_json({"files": [f.__dict__ for f in files], "audit_entry": index})
        return
    _summary(files)


def rekey(
    ctx: typer.Context,
    key_name: str,
    dataset: str,
    catalog: str | None,
    var: list[str] | None,
    retire_old: bool,
) -> None:
    """``aisec keys rotate NAME --dataset D``: rotate, re-wrap every file of D, maybe retire old versions."""
    from airflow_aisec.crypto.datasets import rekey_dataset
    from airflow_aisec.io import Location

    keys, spec, keyring = _setup(ctx, catalog, dataset, var)
    if spec.encryption is None or spec.encryption.key != key_name:
        raise fail(f"dataset {dataset} is not encrypted with key {key_name!r} in the catalog")
    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:

        def audited(item: Any) -> None:
            log.append(
                "key.rotate",
                dataset=dataset,
                inputs=[{"uri": item.source, "sha256": item.source_sha256}],
                outputs=[{"uri": item.target, "sha256": item.target_sha256}],
                details={"key": key_name, "method": item.method, "step": "rewrap"},
            )

        result = rekey_dataset(
            _provider(keys, key_name, keyring), key_name, Location.parse(spec.uri),
            retire_old=retire_old, on_file=audited,
        )  # fmt: skip
        log.append(
            "key.rotate",
            dataset=dataset,
            details={
                "key": key_name,
                "version": result.version,
                "files": len(result.files),
                "retired": result.retired,
            },
        )
    console.print(
        f"key {key_name!r} is at version {result.version}; {len(result.files)} files re-wrapped"
        + (f"; retired versions {result.retired}" if result.retired else ""),
        highlight=False,
    )
