"""Who answers for the data: each dataset's owner and steward, and the privacy office deciding requests.

The privacy office names Airflow users (their ids as Airflow's auth manager knows them) and roles; only they
may approve or reject a data-subject request in the DAGs (see docs/data-subject-requests.md#who-may-approve).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from airflow_aisec.catalog.models import Catalog
    from airflow_aisec.catalog.problems import Report

# Enough to catch a name typed where an address belongs; delivery is not this file's business.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
DEFAULT_OFFICE_NAME = "Privacy office"


class _RoleModel(BaseModel):
    # As every catalog model: unknown fields are errors, and values do not change once read.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _checked_email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.fullmatch(value):
        raise ValueError("email must be an address such as data-team@example.com")
    return value


class Contact(_RoleModel):
    """A person or team answering for a dataset: ``name``, and how to reach them (``email``, optional).

    A plain string is read as the name: ``owner: crm-team`` is ``owner: {name: crm-team}``.
    """

    name: str = Field(min_length=1)
    email: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return _checked_email(value)


class OfficeUser(_RoleModel):
    """An Airflow user of the privacy office: ``id`` as the auth manager knows it, and a display ``name``.

    A plain string is read as the id: ``users: [dpo]``. The name defaults to the id.
    """

    id: str = Field(min_length=1)
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"id": data} if isinstance(data, str) else data

    @property
    def display_name(self) -> str:
        """The name Airflow shows for the user: ``name``, else the id."""
        return self.name or self.id


class PrivacyOffice(_RoleModel):
    """The people who decide data-subject requests: Airflow ``users`` and/or auth-manager ``roles``."""

    name: str = Field(default=DEFAULT_OFFICE_NAME, min_length=1)
    email: str | None = None
    users: list[OfficeUser] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return _checked_email(value)

    @field_validator("roles")
    @classmethod
    def _role_names(cls, value: list[str]) -> list[str]:
        if any(not role.strip() for role in value):
            raise ValueError("a role must be a non-empty name, e.g. ADMIN")
        return value

    @model_validator(mode="after")
    def _someone_decides(self) -> PrivacyOffice:
        if not self.users and not self.roles:
            raise ValueError(
                "a privacy office needs users or roles: no one could approve a request "
                "(name Airflow user ids under users, or roles under roles)"
            )
        ids = [user.id for user in self.users]
        twice = sorted({user for user in ids if ids.count(user) > 1})
        if twice:
            raise ValueError(f"users: {', '.join(map(repr, twice))} listed more than once")
        return self


def check_roles(catalog: Catalog, report: Report) -> None:
    """Warn of a catalog without a privacy office, and of each dataset holding PII that names no owner."""
    if catalog.privacy_office is None:
        report.warning(
            ("privacy_office",),
            "no privacy office: any Airflow user allowed to answer the DAGs' approvals may approve or reject "
            "a data-subject request (name its users or roles under privacy_office)",
        )
    for name, dataset in catalog.datasets.items():
        if dataset.pii_columns and dataset.owner is None and "owner" not in report.dropped.get(name, set()):
            report.warning(
                ("datasets", name, "owner"),
                "dataset holds PII but names no owner: no one answers for it (add owner: {name, email})",
            )
