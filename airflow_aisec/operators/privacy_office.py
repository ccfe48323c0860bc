"""The catalog's privacy office as Airflow users: its roles resolved through the configured auth manager.

Airflow's auth managers have no common way to list the users of a role. Airflow's simple auth manager lists
its users and their roles in ``[core] simple_auth_manager_users``, so its roles are resolved; with
``[core] simple_auth_manager_all_admins`` every request is made as its anonymous admin, which then holds the
``ADMIN`` role. The roles of any other auth manager stay unresolved: name the office's users under
``privacy_office.users`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airflow_aisec.dsr.approvers import Approver, Approvers

if TYPE_CHECKING:
    from airflow_aisec.catalog import Catalog

# The user the simple auth manager makes every request as when all are admins (Airflow's own name for it).
ALL_ADMINS_USER = "Anonymous"


def role_members(roles: Iterable[str]) -> dict[str, list[Approver]]:
    """Role → its users, for each of ``roles`` the configured auth manager can list (letter case ignored).

    With the simple auth manager a role holds the users of that role and of every role above it, as the
    simple auth manager grants them (``OP`` includes the ``ADMIN`` users).
    """
    from airflow.configuration import conf

    manager = conf.getimport("core", "auth_manager")
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import (
        SimpleAuthManager,
        SimpleAuthManagerRole,
    )

    if not (isinstance(manager, type) and issubclass(manager, SimpleAuthManager)):
        return {}
    order = {role.name: role.order for role in SimpleAuthManagerRole}
    users = [(user.username, order.get((user.role or "").upper(), -1)) for user in manager.get_users()]
    if conf.getboolean("core", "simple_auth_manager_all_admins"):
        users.append((ALL_ADMINS_USER, order["ADMIN"]))
    members: dict[str, list[Approver]] = {}
    for role in roles:
        wanted = order.get(role.upper())
        if wanted is not None:
            members[role] = [Approver(name, name) for name, held in users if held >= wanted]
    return members


def approvers_of(catalog: Catalog) -> Approvers:
    """Who may decide the catalog's data-subject requests, as Airflow users."""
    office = catalog.privacy_office
    if office is None:
        return Approvers.of(None)
    return Approvers.of(office, role_members(office.roles) if office.roles else {})
