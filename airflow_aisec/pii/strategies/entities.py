"""Which strategy masks a column when the catalog gives none, by the entity the column holds; and the tag
that stands for an entity in masked text."""

from __future__ import annotations

from typing import Final

from airflow_aisec.pii.strategies.base import MaskRule
from airflow_aisec.pii.types import FREE_TEXT

# Identifiers are pseudonymized: they are what joins are made on, and a token keeps joins working.
# IP addresses too: ``partial`` would keep the last octets, the part that identifies the host.
IDENTIFIER_ENTITIES: Final = frozenset(
    {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "CRYPTO",
        "MEDICAL_LICENSE",
        "US_SSN",
        "US_ITIN",
        "US_PASSPORT",
        "US_DRIVER_LICENSE",
        "US_BANK_NUMBER",
        "UK_NHS",
        "UK_NINO",
        "ES_NIF",
        "ES_NIE",
        "IT_FISCAL_CODE",
        "IT_PASSPORT",
        "IT_IDENTITY_CARD",
        "IT_DRIVER_LICENSE",
        "IT_VAT_CODE",
        "PL_PESEL",
        "SG_NRIC_FIN",
        "AU_ABN",
        "AU_ACN",
        "AU_TFN",
        "AU_MEDICARE",
        "IN_PAN",
        "IN_AADHAAR",
        "IN_PASSPORT",
        "IN_VOTER",
        "IN_VEHICLE_REGISTRATION",
        "FI_PERSONAL_IDENTITY_CODE",
    }
)


# Record identifiers and keys: not about a person by themselves, but what rows are joined on. A constant
# (``<UUID>``) would merge every row into one key; a pseudonym keeps the join. Kept apart from
# IDENTIFIER_ENTITIES, which also says which values single a person out in free text.
KEY_ENTITIES: Final = frozenset({"UUID", "GUID", "MAC_ADDRESS"})
# Entity names of custom recognizers that say they are identifiers: CUSTOMER_ID, ACCOUNT_NUMBER, API_KEY.
KEY_ENTITY_SUFFIXES: Final = ("_ID", "_KEY", "_NUMBER", "_UUID", "_GUID")


def is_identifier(entity: str | None) -> bool:
    """Whether ``entity`` is an identifier or a key, masked by default with a pseudonym (joins survive)."""
    if not entity:
        return False
    return entity in IDENTIFIER_ENTITIES or entity in KEY_ENTITIES or entity.endswith(KEY_ENTITY_SUFFIXES)


def default_strategy(entity: str | None) -> MaskRule:
    """How a column holding ``entity`` is masked when the catalog gives no ``mask:``.

    Identifiers (e-mail, phone, card, IBAN, SSN, national IDs, IP address) and keys (UUIDs, MAC addresses,
    custom entities named ``*_ID``, ``*_KEY``, ``*_NUMBER``) → ``pseudonymize``, so the same value gets the
    same token and joins still work; ``DATE_TIME`` → ``generalize`` to the year; ``free_text`` →
    ``free_text``; names, places, ``NRP`` and every other or unknown entity → ``replace`` by the entity tag,
    the safe choice.
    """
    if entity == FREE_TEXT:
        return MaskRule(FREE_TEXT)
    if is_identifier(entity):
        return MaskRule("pseudonymize")
    if entity == "DATE_TIME":
        return MaskRule("generalize", {"to": "year"})
    return MaskRule("replace")


def tag(entity: str | None) -> str:
    """The text that replaces a value or a span of free text: ``<EMAIL_ADDRESS>``."""
    return f"<{entity}>" if entity else "<REDACTED>"
