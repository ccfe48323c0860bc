"""``aisec sample-lake``: write the deterministic sample lake that matches the example catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress

from airflow_aisec.cli.common import console, global_options, open_audit_log, print_json
from airflow_aisec.samples import SampleLake, WrittenFile, write_sample_lake


def _record(ctx: typer.Context, written: list[WrittenFile]) -> None:
    """One ``dataset.write`` entry per dataset, with the digest of every file written."""

    opts = global_options(ctx)
    with open_audit_log(opts.log, keyring=opts.keyring) as log:
        for dataset in sorted({w.dataset for w in written}):
            files = [w for w in written if w.dataset == dataset]
            log.append(
                "dataset.write",
                dataset=dataset,
                outputs=[{"dataset": dataset, "uri": w.uri, "sha256": w.sha256} for w in files],
                rows=sum(w.rows for w in files),
                details={"generator": "aisec sample-lake"},
            )


def sample_lake(
    ctx: typer.Context,
    out_dir: Annotated[str, typer.Argument(help="Folder (or s3://bucket/prefix) to write the lake into.")],
    customers: Annotated[int, typer.Option("--customers", min=1, help="Number of customers.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same lake.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")] = False,
) -> None:
    """Write customers (Parquet), orders (Parquet), support_tickets (JSONL) and chargebacks (CSV)."""
    lake = SampleLake(customers=customers, seed=seed)
    with Progress(console=console, transient=True, disable=as_json) as progress:
        task = progress.add_task("writing sample lake", total=None)
        written = write_sample_lake(lake, out_dir, on_file=lambda _: progress.advance(task))
    _record(ctx, written)
    if as_json:
        print_json([w.as_dict() for w in written])
        return
    for dataset in sorted({w.dataset for w in written}):
        files = [w for w in written if w.dataset == dataset]
        console.print(f"{dataset}: {len(files)} files, {sum(w.rows for w in files)} rows", highlight=False)
    console.print(f"sample lake written to {out_dir} (use --var lake={out_dir} with the example catalog)")
