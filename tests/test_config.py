"""Settings resolve flag > environment > Airflow config > default, with {AIRFLOW_HOME} expanded."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_aisec import config
from airflow_aisec.exceptions import ConfigError


def test_defaults_live_under_airflow_home(monkeypatch: pytest.MonkeyPatch, airflow_home: Path) -> None:
    monkeypatch.delenv("AIRFLOW__AISEC__AUDIT_LOG", raising=False)
    monkeypatch.delenv("AISEC_KEYRING", raising=False)
    assert config.get_setting("audit_log") == f"sqlite:///{airflow_home}/aisec_audit.db"
    assert config.get_setting("keyring") == f"{airflow_home}/aisec_keyring.json"


def test_defaults_apply_without_airflow_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config, "_airflow_config", lambda name: None)
    monkeypatch.delenv("AIRFLOW__AISEC__AUDIT_LOG", raising=False)
    monkeypatch.delenv("AIRFLOW__AISEC__SPACY_MODEL", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert config.get_setting("audit_log") == f"sqlite:///{tmp_path}/aisec_audit.db"
    assert config.get_setting("spacy_model") == "en_core_web_lg"


def test_airflow_style_environment_overrides_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__SPACY_MODEL", "en_core_web_sm")
    assert config.get_setting("spacy_model") == "en_core_web_sm"
    assert config.get_setting("spacy_model", "custom_model") == "custom_model"


def test_aisec_keyring_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__KEYRING", "/a.json")
    monkeypatch.setenv("AISEC_KEYRING", "/b.json")
    assert config.get_setting("keyring") == "/b.json"
    assert config.get_setting("keyring", "/c.json") == "/c.json"


def test_catalog_vars_merge_config_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", "lake=/cfg, env=prod")
    monkeypatch.setenv("AISEC_VAR_ENV", "staging")
    assert config.catalog_vars() == {"lake": "/cfg", "env": "staging"}
    assert config.catalog_vars({"lake": "/flag"}) == {"lake": "/flag", "env": "staging"}


def test_bad_setting_names_and_pairs_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        config.get_setting("nope")
    with pytest.raises(ConfigError, match="expected name=value, got 'lake'"):
        config.parse_vars(["lake"])


def test_cli_reads_airflow_cfg_without_importing_airflow(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "airflow.cfg").write_text("[aisec]\ncatalog = /etc/aisec/catalog.yaml\n")
    code = (
        "import sys; from airflow_aisec import config; "
        "print(config.get_setting('catalog')); print('airflow' in sys.modules)"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["/etc/aisec/catalog.yaml", "False"]
