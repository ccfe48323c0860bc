"""Who may decide a data-subject request: the catalog's privacy office, as the Airflow users it comes to.

Airflow's human-in-the-loop check compares the id of the user answering with the ids of the task's assigned
users and knows nothing of roles. So the office's roles are turned into users from what the auth manager
lists (the adapter gives ``members``, role → users), those users are the approval's assigned users, and the
answer is checked again when the task resumes: a decision by anyone else is refused, whatever the auth
manager let through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_aisec.catalog.roles import PrivacyOffice


@dataclasses.dataclass(frozen=True)
class Approver:
    """An Airflow user: ``id`` as the auth manager knows it, ``name`` as Airflow shows it."""

    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class Decider:
    """Who answered an approval, as Airflow reported them, and whether the privacy office includes them
    (None when the catalog declares no office)."""

    id: str | None
    name: str | None
    in_office: bool | None

    def as_dict(self) -> dict[str, Any]:
        """The audit log's ``decided_by``."""
        return {"id": self.id, "name": self.name, "in_office": self.in_office}

    @property
    def label(self) -> str | None:
        """How the decider is named in ``responded_by``: the name, else the id."""
        return self.name or self.id


@dataclasses.dataclass(frozen=True)
class Approvers:
    """The users who may decide; ``declared`` False: the catalog names no privacy office (anyone may)."""

    declared: bool
    users: tuple[Approver, ...] = ()
    unresolved_roles: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, office: PrivacyOffice | None, members: Mapping[str, Sequence[Approver]] | None = None
    ) -> Approvers:
        """The office's users, then the users of each of its roles (``members``, matched without regard to
        letter case, as auth managers name roles); a role no member list covers is ``unresolved``."""
        if office is None:
            return cls(declared=False)
        found = {user.id: Approver(user.id, user.display_name) for user in office.users}
        by_role = {role.upper(): list(users) for role, users in (members or {}).items()}
        unresolved = []
        for role in office.roles:
            if role.upper() not in by_role:
                unresolved.append(role)
            for user in by_role.get(role.upper(), []):
                found.setdefault(user.id, user)
        return cls(declared=True, users=tuple(found.values()), unresolved_roles=tuple(unresolved))

    @property
    def ids(self) -> list[str]:
        """The ids of the users who may decide, sorted."""
        return sorted(user.id for user in self.users)

    def assigned_users(self) -> list[dict[str, str]]:
        """The approval task's ``assigned_users`` (Airflow's ``HITLUser``: ``id`` and ``name``)."""
        return [{"id": user.id, "name": user.name} for user in self.users]

    def decider(self, responded_by: object) -> Decider:
        """Who answered, from Airflow's ``responded_by_user`` (``{"id", "name"}``; a bare value is a name)."""
        if isinstance(responded_by, Mapping):
            raw_id, raw_name = responded_by.get("id"), responded_by.get("name")
        else:
            raw_id, raw_name = None, responded_by
        user_id = None if raw_id is None else str(raw_id)  # some auth managers number their users
        name = None if raw_name is None or raw_name == "" else str(raw_name)
        if not self.declared:
            return Decider(user_id, name, None)
        return Decider(user_id, name, user_id is not None and user_id in {u.id for u in self.users})
