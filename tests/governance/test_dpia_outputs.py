"""The files of ``aisec dpia`` and of the weekly regeneration: a PDF that opens, a CNIL PIA tool import with
its structure, atomic writes, what changed between two runs, and no PII value in any of them."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from dpia_world import NOW, SUBJECT, world_catalog, world_log

from airflow_aisec.audit import AuditLog
from airflow_aisec.catalog import Catalog
from airflow_aisec.exceptions import ConfigError
from airflow_aisec.governance.dpia import Assessment
from airflow_aisec.governance.dpia.cnil import to_cnil
from airflow_aisec.governance.dpia.output import FORMATS, parse_formats, regenerate, summary, write_dpia
from airflow_aisec.governance.dpia.pdf import to_pdf
from airflow_aisec.review.assessment import assess

# The questions of the PIA tool's standard structure that an import may answer.
CNIL_QUESTIONS = {111, 112, 113, 121, 122, 123, *range(211, 216), *range(221, 228)} | {
    item * 10 + q for item in (32, 33, 34) for q in range(1, 7)
}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return world_catalog(tmp_path)


@pytest.fixture
def log(tmp_path: Path, catalog: Catalog) -> Iterator[AuditLog]:
    with world_log(tmp_path, catalog) as audit:
        yield audit


@pytest.fixture
def assessment(catalog: Catalog, log: AuditLog) -> Assessment:
    return assess(catalog, log, now=NOW)


def _pdf_text(pdf: bytes) -> str:
    """The text drawn on the PDF's pages: every content stream, inflated."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    return b"".join(zlib.decompress(s) for s in streams if s[:1] == b"x").decode("latin-1")


def test_the_pdf_opens_with_its_pages_and_the_four_parts(assessment: Assessment) -> None:
    pdf = to_pdf(assessment)
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert b"xref" in pdf and b"trailer" in pdf
    pages = re.findall(rb"/Type /Page\b(?!s)", pdf)
    [tree] = [obj for obj in pdf.split(b"endobj") if b"/Type /Pages" in obj]
    [count] = re.findall(rb"/Count (\d+)", tree)
    assert int(count) == len(pages) >= 3
    text = _pdf_text(pdf)
    for words in (
        "Systematic description",
        "Necessity and proportionality",
        "Risks to the rights",
        "Measures in",
    ):
        assert words in text


def test_the_cnil_file_has_the_pia_tools_import_structure(assessment: Assessment) -> None:
    document = json.loads(json.dumps(to_cnil(assessment)))
    assert set(document) == {"pia", "answers", "measures", "evaluations", "comments"}
    assert (
        document["pia"]["name"].startswith("DPIA ") and document["pia"]["author_name"] == "Example Shop SAS"
    )
    references = [a["reference_to"] for a in document["answers"]]
    assert set(references) <= CNIL_QUESTIONS and len(references) == len(set(references))
    for answer in document["answers"]:
        assert set(answer["data"]) == {"text", "gauge", "list"} and 0 <= answer["data"]["gauge"] <= 4
    gauges = {a["reference_to"]: a["data"]["gauge"] for a in document["answers"]}
    access = [
        r
        for r in assessment.risks
        if r.key in ("illegitimate_access", "special_categories", "free_text", "volume")
    ]
    assert gauges[325] == max(r.severity for r in access) and gauges[326] == max(r.likelihood for r in access)
    assert [m["title"] for m in document["measures"]] == [m.title for m in assessment.measures]


def test_formats_are_checked_before_anything_is_written(tmp_path: Path) -> None:
    assert parse_formats("md, HTML,md") == ("md", "html")
    with pytest.raises(ConfigError, match="docx"):
        parse_formats("md,docx")


def test_every_format_is_written_atomically_and_nothing_else(assessment: Assessment, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = write_dpia(assessment, out, FORMATS)
    assert sorted(p.name for p in written) == ["dpia-cnil.json", "dpia.html", "dpia.md", "dpia.pdf"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no temporary file left


def test_no_pii_value_reaches_any_output(catalog: Catalog, log: AuditLog, tmp_path: Path) -> None:
    out = tmp_path / "out"
    regenerate(assess(catalog, log, now=NOW), out)
    pseudonym = log.pseudonym(SUBJECT)
    for path in out.iterdir():
        text = path.read_bytes() if path.suffix == ".pdf" else path.read_text(encoding="utf-8").encode()
        content = _pdf_text(text).encode("latin-1") if path.suffix == ".pdf" else text
        assert SUBJECT.encode() not in content and b"alice" not in content.lower(), path.name
        assert pseudonym.encode() not in content, path.name  # not even who asked


def test_a_second_run_shows_the_datasets_purposes_and_pii_columns_that_changed(
    catalog: Catalog, log: AuditLog, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _written, first = regenerate(assess(catalog, log, now=NOW), out)
    assert first["since"] is None and "customers" in first["datasets"]["added"]

    def grow(data: dict) -> None:  # type: ignore[type-arg]
        data["datasets"]["leads"] = {
            "uri": "{lake}/leads", "format": "csv", "purposes": ["newsletters"],
            "columns": {"lead_email": {"pii": "EMAIL_ADDRESS"}},
        }  # fmt: skip
        data["purposes"]["newsletters"] = {"parent": "marketing.advertising", "description": "Newsletters"}
        del data["datasets"]["customers"]["columns"]["phone"]
        data["datasets"]["customers"]["encryption"]["columns"].remove("phone")

    (tmp_path / "next").mkdir()
    changed = world_catalog(tmp_path / "next", grow)
    _written, second = regenerate(assess(changed, log, now=NOW), out)
    assert second["since"] == first["generated_at"] and second["changed"]
    assert second["datasets"] == {"added": ["leads"], "removed": []}
    assert second["purposes"] == {"added": ["newsletters"], "removed": []}
    assert second["pii_columns"] == {"added": ["leads.lead_email"], "removed": ["customers.phone"]}
    assert json.loads((out / "changes.json").read_text()) == second
    assert summary(second) == "datasets +1 -0, purposes +1 -0, pii_columns +1 -1"

    _written, third = regenerate(assess(changed, log, now=NOW), out)
    assert not third["changed"]


def test_a_folder_with_a_snapshot_that_is_not_ours_is_refused(assessment: Assessment, tmp_path: Path) -> None:
    (tmp_path / "snapshot.json").write_text('{"datasets": "everything"}')
    with pytest.raises(ConfigError, match=r"snapshot\.json: not a snapshot"):
        regenerate(assessment, tmp_path)
    assert not (tmp_path / "dpia.md").exists()
