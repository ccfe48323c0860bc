"""The compliance gate's findings as CI systems read them: JUnit XML and SARIF 2.1.0.

JUnit XML: one ``testsuite`` per rule, one ``testcase`` per dataset, DAG file or catalog the rule checked; a
testcase with an error finding has a ``failure`` listing each, with its location; warnings go to its
``system-out``. CI systems show it as a test report (GitLab's ``artifacts:reports:junit``, GitHub test
reporters).

SARIF 2.1.0 (OASIS, https://docs.oasis-open.org/sarif/sarif/v2.1.0/): one run whose tool driver lists every
rule with its id, name, description and help; each finding is a result with its level, message and a
location in the catalog file or DAG file (a line where known, the catalog path as a logical location). Paths
under ``base`` are written relative to it (``%SRCROOT%``), as code scanning uploads expect.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # nosec B405 # only writes XML, never parses any
from pathlib import Path
from typing import Any, Final

from airflow_aisec import __version__
from airflow_aisec.files import write_private
from airflow_aisec.governance.compliance import RULES, ComplianceReport, Finding

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION: Final = "2.1.0"
TOOL_NAME: Final = "aisec-compliance"
SRCROOT: Final = "%SRCROOT%"


def _cases(report: ComplianceReport, rule: str) -> dict[str, list[Finding]]:
    """Each subject the rule checked with its findings; a finding about no checked subject gets its own."""
    cases: dict[str, list[Finding]] = {subject: [] for subject in report.checked.get(rule, [])}
    for finding in (f for f in report.findings if f.rule == rule):
        subject = next((s for s in cases if s in (finding.subject, finding.file)), finding.subject)
        cases.setdefault(subject, []).append(finding)
    return cases


def _where(finding: Finding) -> str:
    line = f":{finding.line}" if finding.line else ""
    path = f" ({finding.path})" if finding.path else ""
    return f"{finding.file or finding.subject}{line}{path}"


def junit_xml(report: ComplianceReport) -> bytes:
    """The report as a JUnit XML document."""
    root = ET.Element("testsuites", name="aisec compliance")
    total = failed = 0
    for rule in RULES.values():
        cases = _cases(report, rule.id)
        suite = ET.SubElement(root, "testsuite", name=f"{rule.id} {rule.name}")
        failures = 0
        for subject, findings in cases.items():
            case = ET.SubElement(suite, "testcase", classname=f"aisec.compliance.{rule.id}", name=subject)
            errors = [f for f in findings if f.severity == "error"]
            if errors:
                failures += 1
                text = "\n".join(f"{_where(f)}: {f.message}" for f in errors)
                ET.SubElement(case, "failure", message=errors[0].message, type=rule.id).text = text
            warnings = [f for f in findings if f.severity == "warning"]
            if warnings:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(f"warning: {_where(f)}: {f.message}" for f in warnings)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        total, failed = total + len(cases), failed + failures
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _uri(file: str, base: Path) -> dict[str, str]:
    path = Path(file).resolve()
    try:
        return {"uri": path.relative_to(base.resolve()).as_posix(), "uriBaseId": SRCROOT}
    except ValueError:
        return {"uri": path.as_uri()}


def _result(finding: Finding, index: dict[str, int], base: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": finding.severity,
        "message": {"text": finding.message},
    }
    location: dict[str, Any] = {}
    if finding.file:
        physical: dict[str, Any] = {"artifactLocation": _uri(finding.file, base)}
        if finding.line:
            physical["region"] = {"startLine": finding.line}
        location["physicalLocation"] = physical
    if finding.path or finding.dag_id:
        name = finding.path or f"dags.{finding.dag_id}"
        location["logicalLocations"] = [{"fullyQualifiedName": name, "kind": "member"}]
    if location:
        result["locations"] = [location]
    return result


def sarif(report: ComplianceReport, base: Path) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log; file locations under ``base`` are relative to it."""
    rules = [
        {
            "id": rule.id,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.summary},
            "help": {"text": rule.help},
            "defaultConfiguration": {"level": "error"},
        }
        for rule in RULES.values()
    ]
    index = {rule.id: i for i, rule in enumerate(RULES.values())}
    run = {
        "tool": {"driver": {"name": TOOL_NAME, "version": __version__, "rules": rules}},
        "originalUriBaseIds": {SRCROOT: {"uri": base.resolve().as_uri() + "/"}},
        "invocations": [{"executionSuccessful": True}],
        "results": [_result(f, index, base) for f in report.findings],
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def write_junit(report: ComplianceReport, path: Path) -> None:
    """Write the JUnit XML file atomically."""
    write_private(path, junit_xml(report))


def write_sarif(report: ComplianceReport, path: Path, base: Path) -> None:
    """Write the SARIF file atomically."""
    write_private(path, json.dumps(sarif(report, base), indent=2) + "\n")
