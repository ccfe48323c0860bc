"""Models to sign, a keyring with elliptic-curve keys, and an audit log, all of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_aisec.crypto.keyring import LocalKeyring


@pytest.fixture
def ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalKeyring:
    """The keyring of this test (also the configured one), with a P-256 key ``model-signing``."""
    path = tmp_path / "keyring.json"
    monkeypatch.setenv("AISEC_KEYRING", str(path))
    keyring = LocalKeyring(path)
    keyring.create("model-signing", "ec-p256")
    return keyring


@pytest.fixture
def log_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The audit log of this test (also the configured one)."""
    uri = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", uri)
    return uri


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A model folder: weights, a config and a tokenizer file in a subfolder."""
    root = tmp_path / "fraud-model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (root / "config.json").write_text('{"layers": 4}\n')
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    return root
