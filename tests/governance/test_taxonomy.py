"""The Fides data uses and the catalog's own purposes: lookups, and which purpose allows which."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import catalog_for

from airflow_aisec.catalog.fides import data_uses
from airflow_aisec.catalog.purposes import Taxonomy


def test_every_fides_data_use_is_known_with_its_parent() -> None:
    uses = data_uses()
    assert len(uses) >= 50
    assert uses["essential.service.payment_processing"].parent == "essential.service"
    assert uses["marketing"].parent is None
    assert all(use.parent is None or use.parent in uses for use in uses.values())


def test_the_taxonomy_is_fideslangs_own() -> None:
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    assert set(data_uses()) == {use.fides_key for use in DEFAULT_TAXONOMY.data_use}


@pytest.mark.parametrize(
    ("allowed", "requested", "expected"),
    [
        ("essential", "essential.service.payment_processing", True),
        ("essential.service", "essential.service", True),
        ("essential.service.payment_processing", "essential", False),
        ("essential.service", "essential.serviceable", False),
        ("marketing", "essential.service", False),
    ],
)
def test_a_data_use_allows_itself_and_what_is_below_it(allowed: str, requested: str, expected: bool) -> None:
    assert Taxonomy.fides().allows(allowed, requested) is expected


def test_a_catalog_purpose_sits_below_the_data_use_it_refines(sample_lake_dir: Path) -> None:
    taxonomy = Taxonomy.of(catalog_for(sample_lake_dir))
    assert taxonomy.lineage("billing") == [
        "billing",
        "essential.service.payment_processing",
        "essential.service",
        "essential",
    ]
    assert taxonomy.allows("essential.service", "billing")
    assert not taxonomy.allows("billing", "essential.service.payment_processing")
    assert not taxonomy.allows("support", "billing")
    assert taxonomy.purposes["billing"].origin == "catalog"


def test_an_unknown_purpose_is_allowed_by_nothing_and_gets_a_suggestion() -> None:
    taxonomy = Taxonomy.fides()
    assert "essential.servce" not in taxonomy
    assert not taxonomy.allows("essential", "essential.servce")
    assert taxonomy.suggest("essential.servce") == " (did you mean 'essential.service'?)"
