"""Lineage without gaps: every step of the example pipeline is an edge (landing -> masked -> published), one
OpenLineage name per dataset in the export and in what the operators emit, and the export is valid
OpenLineage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_aisec.audit.lineage import LineageGraph, openlineage_datasets, to_openlineage
from airflow_aisec.audit.log import Entry
from airflow_aisec.lineage import DatasetRef, StepLineage, classify, openlineage_name

LAKE = "/lake"
LANDING, MASKED, PUBLISHED = f"{LAKE}/landing/tickets", f"{LAKE}/masked/tickets", f"{LAKE}/published/tickets"


def _files(root: str, name: str | None, suffix: str = "") -> list[DatasetRef]:
    return [
        DatasetRef(f"file://{root}/t-{year}.jsonl{suffix}", name, f"{year:064x}", location=root)
        for year in (2016, 2017)
    ]


def _step(inputs: list[DatasetRef], outputs: list[DatasetRef]) -> StepLineage:
    return StepLineage(inputs=inputs, outputs=outputs)


def _pipeline() -> tuple[list[Entry], dict[str, StepLineage]]:
    """The entries of the example pipeline, as its steps record them, and each step's lineage."""
    steps = {
        "pii.mask": _step(_files(LANDING, "tickets_landing"), _files(MASKED, "tickets_masked")),
        "dataset.encrypt": _step(_files(MASKED, "tickets_masked"), _files(PUBLISHED, None, ".aisec")),
    }
    landing = {"uri": LANDING, "dataset": "tickets_landing", "location": LANDING}
    entries = [
        Entry(
            0,
            {
                "action": "task.outcome", "time": "2026-12-01T10:00:00+00:00", "outcome": "success",
                "inputs": [{"uri": f"{LAKE}/tickets", "dataset": "tickets", "location": f"{LAKE}/tickets"}],
                "outputs": [landing],
                "actor": {"kind": "airflow", "dag_id": "pipeline", "task_id": "land", "run_id": "r1"},
            },
            b"\x00" * 32,
        )
    ]  # fmt: skip
    for index, (action, lineage) in enumerate(steps.items(), start=1):
        data = {"action": action, "time": "2026-12-01T10:00:00+00:00", "outcome": "success",
                "dataset": "tickets", **lineage.entry_fields()}  # fmt: skip
        entries.append(Entry(index, data, bytes([index]) * 32))
    return entries, steps


def test_the_pipeline_is_one_path_landing_masked_published() -> None:
    entries, _ = _pipeline()
    graph = LineageGraph.from_entries(entries)

    assert graph.downstream("tickets_landing") == [
        ("tickets_landing", "tickets_masked", ["pii.mask #1"]),
        ("tickets_masked", PUBLISHED, ["dataset.encrypt #2"]),  # no catalog name: its location
    ]
    assert graph.upstream("tickets_landing") == [("tickets", "tickets_landing", ["task.outcome #0"])]


def test_a_task_outcome_is_an_operation_on_what_it_wrote() -> None:
    graph = LineageGraph.from_entries(_pipeline()[0])

    assert graph.operations["tickets_landing"] == ["task.outcome #0"]
    assert "task.outcome #0" not in graph.operations.get("tickets", [])
    # The encryption applied tickets' rules to the masked copy: no operation on tickets itself.
    assert graph.operations.get("tickets", []) == []
    assert graph.render("tickets_landing", "text").splitlines()[1] == "  operations: task.outcome #0"


@pytest.mark.parametrize(
    "name", ["tickets_masked", MASKED, f"file://{MASKED}", f"{MASKED}/", f"file:{MASKED}"]
)
def test_a_dataset_is_found_by_its_name_or_its_location(name: str) -> None:
    graph = LineageGraph.from_entries(_pipeline()[0])
    assert graph.resolve(name) == "tickets_masked"
    assert graph.resolve("/nowhere") is None


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/lake/tickets", ("file", "/lake/tickets")),
        ("file:///lake/tickets/", ("file", "/lake/tickets")),
        ("file:/lake/tickets", ("file", "/lake/tickets")),
        ("s3://bucket/lake/tickets/", ("s3://bucket", "lake/tickets")),
        ("s3://bucket/lake/t.jsonl", ("s3://bucket", "lake/t.jsonl")),
    ],
)
def test_openlineage_names_follow_the_naming_spec(uri: str, expected: tuple[str, str]) -> None:
    assert openlineage_name(uri) == expected


def test_the_export_names_each_dataset_once_with_its_catalog_name() -> None:
    entries, _ = _pipeline()
    events = [to_openlineage(e) for e in entries]
    named = {(d["namespace"], d["name"]) for e in events for d in e["inputs"] + e["outputs"]}

    assert named == {
        ("file", f"{LAKE}/tickets"), ("file", LANDING), ("file", MASKED), ("file", PUBLISHED),
    }  # fmt: skip
    (masked,) = events[1]["outputs"]
    assert masked["facets"]["symlinks"]["identifiers"] == [
        {"namespace": "aisec-catalog", "name": "tickets_masked", "type": "DATASET"}
    ]
    assert [f["sha256"] for f in masked["facets"]["aisec_files"]["files"]] == [
        f"{2016:064x}",
        f"{2017:064x}",
    ]
    (published,) = events[2]["outputs"]
    assert "symlinks" not in published["facets"]  # no catalog dataset there: nothing claimed


def test_a_name_alone_is_a_catalog_name_not_a_file() -> None:
    assert openlineage_datasets([{"dataset": "tickets", "uri": "tickets"}])[0]["namespace"] == "aisec-catalog"


def test_the_operators_emit_the_names_the_export_gives() -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_aisec.operators.openlineage import operator_lineage

    entries, steps = _pipeline()
    for entry, lineage in zip(entries[1:], steps.values(), strict=True):
        lineage.classify(inputs=classify({"body": "free_text"}), outputs=classify({"body": "free_text"}))
        emitted = operator_lineage(lineage)
        exported = to_openlineage(entry)
        for side in ("inputs", "outputs"):
            ours = [(d.namespace, d.name) for d in getattr(emitted, side)]
            assert ours == [(d["namespace"], d["name"]) for d in exported[side]]
            links = [
                [(i.namespace, i.name) for i in d.facets["symlinks"].identifiers]
                for d in getattr(emitted, side)
                if "symlinks" in d.facets
            ]
            assert links == [
                [(i["namespace"], i["name"]) for i in d["facets"]["symlinks"]["identifiers"]]
                for d in exported[side]
                if "symlinks" in d["facets"]
            ]


def _spec() -> Any:
    """The OpenLineage spec's JSON schema (``OpenLineage.json``) named by ``AISEC_OPENLINEAGE_SPEC``: no
    installed package ships it, so the test runs where a copy of the spec is at hand."""
    path = os.environ.get("AISEC_OPENLINEAGE_SPEC")
    if not path or not Path(path).is_file():
        pytest.skip("AISEC_OPENLINEAGE_SPEC names no copy of the OpenLineage spec's OpenLineage.json")
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_every_exported_event_is_valid_openlineage() -> None:
    import jsonschema

    schema = _spec()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for entry in _pipeline()[0]:
        event = to_openlineage(entry)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert errors == [], (entry.index, errors)


def test_the_catalog_names_the_datasets_of_entries_that_recorded_only_files() -> None:
    locations = {"tickets": f"{LAKE}/tickets"}
    inside = {"uri": f"file://{LAKE}/tickets/t-2016.jsonl", "dataset": "tickets"}
    elsewhere = {"uri": "/tmp/copy/t-2016.jsonl", "dataset": "tickets"}

    assert openlineage_datasets([inside], locations)[0]["name"] == f"{LAKE}/tickets"
    assert openlineage_datasets([inside])[0]["name"] == f"{LAKE}/tickets/t-2016.jsonl"
    assert openlineage_datasets([elsewhere], locations)[0]["name"] == "/tmp/copy/t-2016.jsonl"


def test_a_relative_location_has_the_name_of_its_absolute_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A catalog with lake=lake and an Asset file:///<cwd>/lake/... name one folder, so policies see the read.
    assert openlineage_name("lake/customers/") == openlineage_name(f"file://{tmp_path}/lake/customers")
    assert openlineage_name("lake/customers")[1] == f"{tmp_path}/lake/customers"
