"""The Privacy pages under test: the app mounted at /aisec as the API server mounts it, Airflow's own
auth manager and JWTs, and an audit log holding real operations (a masking, an encryption, a retention
run and an erasure request with its certificate) over a copy of the sample lake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import EXAMPLE, catalog_for, lake_copy, open_log
from ui_seed import REQUEST_ID, Seeded, Users, subject

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.dsr import StateStore, make_request, run_request
from airflow_aisec.dsr.certificate import dumps


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, sample_lake_dir: Path) -> Seeded:
    """An audit log of real operations and an erasure certificate, in a folder of the module's own."""
    home = tmp_path_factory.mktemp("privacy-pages")
    lake = lake_copy(sample_lake_dir, home)
    ring = LocalKeyring(str(home / "keyring.json"))
    catalog = catalog_for(lake)
    customer = subject()
    with open_log(home, ring) as log:
        log.append(
            "pii.mask",
            inputs=[{"dataset": "support_tickets", "uri": str(lake / "support_tickets")}],
            outputs=[{"dataset": "support_tickets_masked", "uri": str(lake / "support_tickets_masked")}],
            columns=["body"],
            rows=10,
            actor={
                "kind": "airflow",
                "dag_id": "aisec_privacy_pipeline",
                "run_id": "manual__1",
                "task_id": "mask",
            },
        )
        log.append(
            "dataset.encrypt",
            dataset="customers",
            inputs=[{"dataset": "customers"}],
            outputs=[{"dataset": "customers"}],
            actor={
                "kind": "airflow",
                "dag_id": "aisec_privacy_pipeline",
                "run_id": "manual__1",
                "task_id": "enc",
            },
        )
        log.append(
            "retention.delete",
            dataset="orders",
            rows=5,
            details={"action": "rewrite", "rows_removed": 5, "rows_held": 1, "rule": "P7Y"},
            actor={"kind": "airflow", "dag_id": "aisec_retention_enforcement", "run_id": "scheduled__1"},
        )
        request = make_request(catalog, "erasure", "email", customer.email, request_id=REQUEST_ID)
        document = run_request(
            catalog, request, keyring=ring, audit=log, state=StateStore(home / "state", ring),
            exports=str(home / "exports"),
        )  # fmt: skip
    # Where the erasure DAG's last task writes it.
    certificate = home / "exports" / "certificates" / f"{REQUEST_ID}.json"
    certificate.parent.mkdir(parents=True, exist_ok=True)
    certificate.write_text(dumps(document))
    return Seeded(
        home, lake, f"sqlite:///{home / 'audit.db'}", home / "keyring.json", home / "exports", customer
    )


@pytest.fixture
def configured(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """The ``[aisec]`` settings pointing at the seeded log, keyring, catalog and certificates."""
    monkeypatch.setenv("AIRFLOW__AISEC__AUDIT_LOG", seeded.log_uri)
    monkeypatch.setenv("AISEC_KEYRING", str(seeded.keyring))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG", str(EXAMPLE))
    monkeypatch.setenv("AIRFLOW__AISEC__CATALOG_VARS", f"lake={seeded.lake}")
    monkeypatch.setenv("AIRFLOW__AISEC__DSR_EXPORTS", str(seeded.exports))
    monkeypatch.setenv("AIRFLOW__AISEC__HOLDS", str(seeded.home / "holds.json"))
    monkeypatch.setenv("AIRFLOW__AISEC__TRUSTED_CHECKPOINT", str(seeded.home / "trusted.txt"))
    return seeded


@pytest.fixture
def users(airflow_db: Path) -> Iterator[Users]:
    """JWTs of an admin (reads, verifies), a viewer (reads only) and a user the auth manager refuses,
    from the auth manager the pages ask (Airflow's SimpleAuthManager, refusing our views to "outsider")."""
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    class OutsiderRefused(SimpleAuthManager):
        def is_authorized_custom_view(self, *, method: Any, resource_name: str, user: Any) -> bool:
            return user.get_name() != "outsider" and super().is_authorized_custom_view(
                method=method, resource_name=resource_name, user=user
            )

    manager = OutsiderRefused()
    previous = airflow_app._AuthManagerState.instance
    airflow_app._AuthManagerState.instance = manager
    try:
        yield Users(
            *(
                manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
                for name, role in (("alice", "admin"), ("victor", "viewer"), ("outsider", "viewer"))
            )
        )
    finally:
        airflow_app._AuthManagerState.instance = previous


@pytest.fixture
def client(configured: Seeded, users: Users) -> Iterator[Any]:
    """A test client of Airflow-like parent app with the Privacy pages mounted at /aisec."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_aisec.plugins import AisecPlugin

    parent = FastAPI()
    for mounted in AisecPlugin.fastapi_apps:
        parent.mount(mounted["url_prefix"], mounted["app"])
    with TestClient(parent, base_url="http://testserver") as test_client:
        yield test_client
