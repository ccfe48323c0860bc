"""The Fides data-use taxonomy (fideslang's default data uses): the standard purposes a catalog may name.

Read from the installed ``fideslang`` package (``fideslang.default_taxonomy``), never copied: the taxonomy
stays the one Fides publishes, and upgrades with it.
"""

from __future__ import annotations

import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class DataUse:
    """One Fides data use: ``key`` (``essential.service.payment_processing``), its parent and description."""

    key: str
    name: str
    description: str
    parent: str | None = None
    replaced_by: str | None = None  # set on a data use fideslang deprecated

    @property
    def deprecated(self) -> bool:
        """Whether fideslang deprecated this data use (``replaced_by`` names its successor)."""
        return self.replaced_by is not None


@functools.cache
def data_uses() -> dict[str, DataUse]:
    """Key → data use, for every default data use of the Fides taxonomy."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    found = {}
    for use in DEFAULT_TAXONOMY.data_use:
        replaced_by = use.replaced_by or ("" if use.version_deprecated else None)
        found[use.fides_key] = DataUse(
            use.fides_key, use.name or use.fides_key, use.description or "", use.parent_key, replaced_by
        )
    return found
