"""Airflow discovers the provider, its metadata and its configuration section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from airflow_aisec import __version__
from airflow_aisec.config import OPTIONS
from airflow_aisec.get_provider_info import get_provider_info


def test_provider_info_matches_airflow_schema() -> None:
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-aisec"
    assert info["versions"] == [__version__]
    assert set(info["config"]["aisec"]["options"]) == {o.name for o in OPTIONS}
    assert {"catalog", "audit_log", "keyring", "spacy_model"} <= set(info["config"]["aisec"]["options"])


def test_provider_modules_listed_in_metadata_import() -> None:
    import importlib

    info = get_provider_info()
    for group in ("operators", "hooks"):
        for entry in info[group]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for conn in info["connection-types"]:
        module, _, name = conn["hook-class-name"].rpartition(".")
        assert hasattr(importlib.import_module(module), name)


def test_airflow_providers_list_shows_the_provider(airflow_home: Path) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PATH": f"{airflow.parent}{os.pathsep}{os.environ['PATH']}"},
        check=True,
    )
    providers = {p["package_name"]: p for p in json.loads(result.stdout)}
    assert providers["airflow-aisec"]["version"] == __version__


def test_airflow_config_knows_the_aisec_section(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.configuration import conf

    monkeypatch.delenv("AIRFLOW__AISEC__SPACY_MODEL", raising=False)
    monkeypatch.delenv("AIRFLOW__AISEC__AUDIT_LOG", raising=False)
    assert conf.get("aisec", "spacy_model") == "en_core_web_lg"
    assert conf.get("aisec", "audit_log") == f"sqlite:///{airflow_home}/aisec_audit.db"
