"""The local keyring: a JSON file of named, versioned keys. The embedded default — NOT for production.

It exists so the product works out of the box on one machine; production deployments keep master keys in a
KMS. The file is created with mode 0600, refused when group or world can read it, and rewritten atomically
(temporary file, fsync, rename), so a crash never leaves a half-written keyring.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)

from airflow_aisec.exceptions import KeyringError
from airflow_aisec.files import locked, write_private

KeyKind = Literal["symmetric", "ed25519", "ec-p256", "ec-p384"]
# Elliptic-curve signing keys (model signatures): kind -> curve. Stored as unencrypted PKCS#8 DER.
EC_CURVES: dict[str, type[ec.EllipticCurve]] = {"ec-p256": ec.SECP256R1, "ec-p384": ec.SECP384R1}
FORMAT = "aisec-keyring"
WARNING = "Local keyring for development and single-machine use only. Use a KMS in production."


@dataclass(frozen=True)
class KeyVersion:
    """One version of a key; ``material`` is secret and never logged."""

    name: str
    kind: KeyKind
    version: int
    created: str
    state: Literal["active", "retired", "destroyed"]
    material: bytes

    def __repr__(self) -> str:  # keeps key material out of logs and tracebacks
        return f"KeyVersion({self.name!r}, {self.kind}, version={self.version}, {self.state})"

    def signing_key(self) -> Ed25519PrivateKey:
        """The Ed25519 private key of an ``ed25519`` key version."""
        if self.kind != "ed25519":
            raise KeyringError(f"key {self.name!r} is a {self.kind} key, not a signing key")
        return Ed25519PrivateKey.from_private_bytes(self.material)

    def ec_signing_key(self) -> ec.EllipticCurvePrivateKey:
        """The elliptic-curve private key of an ``ec-p256`` or ``ec-p384`` key version."""
        if self.kind not in EC_CURVES:
            raise KeyringError(f"key {self.name!r} is a {self.kind} key, not an elliptic-curve signing key")
        key = load_der_private_key(self.material, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyringError(f"key {self.name!r} version {self.version} is not an elliptic-curve key")
        return key

    def public_key_pem(self) -> str:
        """The public half of an ``ed25519``, ``ec-p256`` or ``ec-p384`` key, PEM-encoded (safe to share)."""
        public: ec.EllipticCurvePublicKey | Ed25519PublicKey
        if self.kind in EC_CURVES:
            public = self.ec_signing_key().public_key()
        else:
            public = self.signing_key().public_key()
        return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def _new_material(kind: KeyKind) -> bytes:
    if kind == "symmetric":
        return secrets.token_bytes(32)
    if kind in EC_CURVES:
        key = ec.generate_private_key(EC_CURVES[kind]())
        return key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, _no_encryption())
    return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, _no_encryption())


def _no_encryption() -> Any:
    from cryptography.hazmat.primitives.serialization import NoEncryption

    return NoEncryption()


class LocalKeyring:
    """Named, versioned keys in one file; every change is written atomically under a file lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"LocalKeyring({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return {"format": FORMAT, "warning": WARNING, "keys": {}}
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(
                f"refusing to use keyring {self.path}: it is readable by group or others "
                f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {self.path}"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise KeyringError(
                f"keyring {self.path} is unreadable or corrupt: {e.__class__.__name__}"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise KeyringError(f"{self.path} is not an aisec keyring")
        return data

    def names(self) -> list[str]:
        """The names of every key in the keyring."""
        return sorted(self._load()["keys"])

    def versions(self, name: str) -> list[KeyVersion]:
        """Every version of ``name``, oldest first."""
        entry = self._load()["keys"].get(name)
        if entry is None:
            raise KeyringError(f"key {name!r} is not in keyring {self.path}")
        return [self._version(name, entry["kind"], v) for v in entry["versions"]]

    @staticmethod
    def _version(name: str, kind: KeyKind, raw: dict[str, Any]) -> KeyVersion:
        material = base64.b64decode(raw["material"]) if raw.get("material") else b""
        return KeyVersion(name, kind, int(raw["version"]), raw["created"], raw["state"], material)

    def get(self, name: str, version: int | None = None) -> KeyVersion:
        """The active version of ``name`` (or the given ``version``, which may be retired)."""
        versions = self.versions(name)
        if version is None:
            active = [v for v in versions if v.state == "active"]
            if not active:
                raise KeyringError(f"key {name!r} has no active version")
            return active[-1]
        for candidate in versions:
            if candidate.version == version:
                if candidate.state == "destroyed":
                    raise KeyringError(f"key {name!r} version {version} was destroyed")
                return candidate
        raise KeyringError(f"key {name!r} has no version {version}")

    # -- changing --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        with locked(self.path):
            data = self._load()
            yield data
            write_private(self.path, json.dumps(data, indent=2, sort_keys=True))

    def create(self, name: str, kind: KeyKind = "symmetric", *, exist_ok: bool = False) -> KeyVersion:
        """Create key ``name`` with a first version; with ``exist_ok`` an existing key is returned."""
        with self._editing() as data:
            if name in data["keys"]:
                if not exist_ok:
                    raise KeyringError(f"key {name!r} already exists in {self.path}")
                existing = data["keys"][name]
                if existing["kind"] != kind:
                    raise KeyringError(f"key {name!r} exists as a {existing['kind']} key, not {kind}")
            else:
                data["keys"][name] = {"kind": kind, "versions": [self._fresh(1, kind)]}
        return self.get(name)

    def ensure(self, name: str, kind: KeyKind = "symmetric") -> KeyVersion:
        """The active version of ``name``, creating the key on first use."""
        return self.create(name, kind, exist_ok=True)

    @staticmethod
    def _fresh(version: int, kind: KeyKind) -> dict[str, Any]:
        return {
            "version": version,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "state": "active",
            "material": base64.b64encode(_new_material(kind)).decode(),
        }

    def rotate(self, name: str) -> KeyVersion:
        """Add a new active version; older versions stay usable for decryption and verification."""
        with self._editing() as data:
            entry = data["keys"].get(name)
            if entry is None:
                raise KeyringError(f"key {name!r} is not in keyring {self.path}")
            entry["versions"].append(
                self._fresh(1 + max(v["version"] for v in entry["versions"]), entry["kind"])
            )
        return self.get(name)

    def destroy(self, name: str, version: int | None = None) -> bool:
        """Erase the material of one version (or all versions); True if anything was destroyed now."""
        changed = False
        with self._editing() as data:
            entry = data["keys"].get(name)
            if entry is None:
                return False
            for raw in entry["versions"]:
                if (version is None or raw["version"] == version) and raw["state"] != "destroyed":
                    raw.update(state="destroyed", material="")
                    changed = True
        return changed
