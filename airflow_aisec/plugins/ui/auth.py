"""Who may see the Privacy pages: Airflow's own user resolution and auth manager, on every route.

The user is resolved exactly as Airflow's REST API resolves it (``get_user``: the JWT of an
``Authorization: Bearer`` header, else the ``_token`` cookie the UI sets; none is a 401). Access is then
asked of the configured auth manager:

* reading (every page): ``is_authorized_custom_view(method="GET", resource_name="Aisec Privacy")``;
* "verify now": ``is_authorized_custom_view(method="POST", resource_name="Aisec Audit Verification")``
  and, because verifying now does what a run of the ``aisec_audit_verify`` DAG does, permission to
  trigger that DAG (``is_authorized_dag(method="POST", access_entity=RUN)``).

With the SimpleAuthManager (which answers every custom view by role ``viewer``), every role reads, and
``user``, ``op`` and ``admin`` may verify now. With the FAB auth manager, give auditors ``can_read`` on
``Aisec Privacy``, and those who may verify ``can_create`` on ``Aisec Audit Verification`` plus the right to
trigger ``aisec_audit_verify``.

The forms that POST carry a token bound to the user and the form's purpose, signed with Airflow's
``[api] secret_key``, so another site cannot make a logged-in browser verify (the cookie is also
``SameSite=Lax``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, HTTPException, Request, status

from airflow_aisec.plugins.ui.names import VERIFY_DAG_ID

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager

READ_RESOURCE = "Aisec Privacy"
VERIFY_RESOURCE = "Aisec Audit Verification"


def auth_manager() -> BaseAuthManager[Any]:
    """The auth manager the API server initialized."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def can_read(user: Any) -> bool:
    """Whether ``user`` may read the Privacy pages."""
    manager = auth_manager()
    return bool(manager.is_authorized_custom_view(method="GET", resource_name=READ_RESOURCE, user=user))


def can_verify(user: Any) -> bool:
    """Whether ``user`` may run "verify now" (a narrower permission than reading)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    manager = auth_manager()
    return bool(
        manager.is_authorized_custom_view(method="POST", resource_name=VERIFY_RESOURCE, user=user)
        and manager.is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=VERIFY_DAG_ID), user=user
        )
    )


def reader(user: GetUserDep) -> Any:
    """The current user when allowed to read the pages: 401 without credentials, 403 without permission."""
    if not can_read(user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user


def verifier(user: GetUserDep) -> Any:
    """The current user when allowed to verify now: 401 without credentials, 403 without permission."""
    if not (can_read(user) and can_verify(user)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden")
    return user


Reader = Annotated[Any, Depends(reader)]
Verifier = Annotated[Any, Depends(verifier)]


def _secret() -> bytes:
    from airflow.configuration import conf

    return str(conf.get("api", "secret_key", fallback="")).encode("utf-8")


def form_token(user: Any, purpose: str) -> str:
    """The token a form of ``purpose`` carries for ``user``."""
    message = f"aisec-ui\n{purpose}\n{user.get_id()}\n{user.get_name()}".encode()
    return hmac.new(_secret(), message, hashlib.sha256).hexdigest()


def check_form(request: Request, user: Any, purpose: str, token: str | None) -> None:
    """403 unless the POST comes from our own page: the right token, and no foreign ``Origin``."""
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: cross-origin form")
    if not token or not hmac.compare_digest(token, form_token(user, purpose)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: the form expired, reload the page")
