"""``aisec model``: sign and verify model artifacts (a file or a folder) in the OpenSSF Model Signing format.

Keys: a local keyring key of kind ``ec-p256``/``ec-p384`` (``aisec keys create NAME --kind ec-p256``), or an
AWS KMS asymmetric key named ``aws-kms:<key id, ARN or alias>`` (boto3's credentials; ``AWS_ENDPOINT_URL_KMS``
overrides the endpoint). Both commands are recorded in the audit log (``model.sign``, ``model.verify``);
nothing here prints key material.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from airflow_aisec import config
from airflow_aisec.cli.common import (
    EXIT_FAILED,
    CatalogOpt,
    JsonOpt,
    VarOpt,
    fail,
    global_options,
    print_json,
)

app = typer.Typer(
    help="Sign and verify model artifacts (OpenSSF Model Signing format; keyring or AWS KMS keys).",
    no_args_is_help=True,
)

PathArg = Annotated[str, typer.Argument(metavar="PATH", help="The model: a file or a folder of files.")]
SignatureOpt = Annotated[
    str | None,
    typer.Option("--signature", help="Signature bundle file (default: PATH.sig beside the model)."),
]
KeyHelp = "Key: a keyring key name (kind ec-p256 or ec-p384), or aws-kms:<key id, ARN or alias>."


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Product errors (missing key, unreadable model, KMS refusal) become a message and exit code 2."""
    from airflow_aisec.exceptions import AisecError

    try:
        yield
    except AisecError as e:
        raise fail(str(e)) from None


def _keyring(ctx: typer.Context) -> str:
    return config.get_setting("keyring", global_options(ctx).keyring)


def _audit_log(ctx: typer.Context) -> Any:
    from airflow_aisec.cli.common import open_audit_log

    opts = global_options(ctx)
    return open_audit_log(opts.log, keyring=opts.keyring)


@app.command("sign")
def sign(
    ctx: typer.Context,
    path: PathArg,
    key: Annotated[str, typer.Option("--key", help=KeyHelp)],
    signature: SignatureOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name in lineage, model://NAME (default: file name).")
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", help="Catalog dataset the model was trained on (lineage). Repeatable."),
    ] = None,
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a model: every file's digest in a signature bundle, recorded as model.sign."""
    from airflow_aisec.model import record, sign_model, signing_key, training_inputs

    loaded = None
    if inputs:
        from airflow_aisec.cli.common import load_catalog_option

        loaded = load_catalog_option(ctx, catalog, var)
    with _errors():
        refs = training_inputs(loaded, inputs or [])
        signer = signing_key(key, keyring=_keyring(ctx))
        with _audit_log(ctx) as log:
            result = sign_model(path, signer, signature_path=signature, name=name, inputs=refs)
            record(log, result)
    if as_json:
        print_json(result.as_dict())
        return
    typer.echo(f"signed {result.node} ({len(result.files)} file(s)) with {result.key_id}: {result.signature}")


@app.command("verify")
def verify(
    ctx: typer.Context,
    path: PathArg,
    signature: SignatureOpt = None,
    key: Annotated[str | None, typer.Option("--key", help=KeyHelp)] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="PEM public key file to verify with (instead of --key)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name in lineage (default: the name it was signed as).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a model against its signature; exit 1 naming the files changed, missing or added."""
    from airflow_aisec.model import record, verify_model, verifying_keys

    if (key is None) == (public_key is None):
        raise fail("give either --key or --public-key")
    with _errors():
        keys = verifying_keys(key, public_key=public_key, keyring=_keyring(ctx))
        with _audit_log(ctx) as log:
            result = verify_model(path, keys, signature_path=signature, name=name)
            record(log, result)
    if as_json:
        print_json(result.as_dict())
    elif result.verified:
        typer.echo(result.message())
    if not result.verified:
        raise fail(result.message(), EXIT_FAILED)


@app.command("public-key")
def public_key(ctx: typer.Context, key: Annotated[str, typer.Option("--key", help=KeyHelp)]) -> None:
    """Print the PEM public key of a signing key (safe to share with whoever verifies)."""
    from airflow_aisec.model import public_key_pem

    with _errors():
        typer.echo(public_key_pem(key, keyring=_keyring(ctx)), nl=False)


@app.command("card")
def card(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help="The model as signed: NAME or model://NAME.")],
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="JSON or YAML file of metrics (names to numbers or text).")
    ] = None,
    notes: Annotated[
        str | None, typer.Option("--notes", help="Text or Markdown file of notes (intended use, limits).")
    ] = None,
    out: Annotated[str, typer.Option("--out", help="Folder the card files go to.")] = ".",
    formats: Annotated[str, typer.Option("--format", help="md, html or md,html.")] = "md,html",
    catalog: CatalogOpt = None,
    var: VarOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the model card: training data through lineage, signature, verification, drift, bias, metrics."""
    from airflow_aisec.cli.common import load_catalog_option
    from airflow_aisec.model.card import gather_card, load_metrics, load_notes
    from airflow_aisec.model.card_render import parse_formats, record_card, write_card

    with _errors():
        chosen = parse_formats(formats)
        values = load_metrics(metrics) if metrics else {}
        text = load_notes(notes) if notes else ""
    loaded = load_catalog_option(ctx, catalog, var)
    with _errors(), _audit_log(ctx) as log:
        made = gather_card(log, loaded, model, metrics=values, notes=text)
        files = write_card(made, out, chosen)
        record_card(log, made, files)
    if as_json:
        print_json({**made.as_dict(), "files": [str(f) for f in files]})
        return
    state = "verified" if made.verified else "NOT verified"
    typer.echo(f"model card of {made.node} ({state}, {len(made.datasets)} training dataset(s)):")
    for file in files:
        typer.echo(f"  {file}")
