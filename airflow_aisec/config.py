"""The ``[aisec]`` settings: one definition shared by the provider metadata, Airflow and the CLI.

A value is taken from, in order: a CLI flag, the environment (``AIRFLOW__AISEC__<NAME>``; for the keyring
also ``AISEC_KEYRING``), Airflow's configuration file, then the default below. ``{AIRFLOW_HOME}`` in a value
expands to Airflow's home folder, so the embedded defaults live beside Airflow's own SQLite database.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from airflow_aisec.exceptions import ConfigError

SECTION = "aisec"


@dataclasses.dataclass(frozen=True)
class Option:
    """One setting of the ``[aisec]`` section."""

    name: str
    description: str
    default: str
    example: str


OPTIONS: tuple[Option, ...] = (
    Option(
        "catalog",
        "Path of the privacy catalog YAML file that operators, DAGs and the CLI read.",
        "",
        "/opt/airflow/dags/catalog.yaml",
    ),
    Option(
        "catalog_vars",
        "Values for {name} placeholders in the catalog, as comma-separated name=value pairs.",
        "",
        "lake=s3://company-lake/prod",
    ),
    Option(
        "audit_log",
        "URI of the audit log: sqlite:///path (embedded default) or postgresql://user@host/db.",
        "sqlite:///{AIRFLOW_HOME}/aisec_audit.db",
        "postgresql://aisec@db.internal/aisec_audit",
    ),
    Option(
        "keyring",
        "Path of the local keyring file (embedded default, not for production; use a KMS there).",
        "{AIRFLOW_HOME}/aisec_keyring.json",
        "/var/lib/aisec/keyring.json",
    ),
    Option(
        "trusted_checkpoint",
        "File where the audit-verification DAG keeps the last verified signed checkpoint; keep it on storage "
        "that writers of the audit database cannot change.",
        "{AIRFLOW_HOME}/aisec_trusted_checkpoint.txt",
        "/mnt/worm/aisec_trusted_checkpoint.txt",
    ),
    Option(
        "recognizers",
        "YAML file with custom PII recognizers (regex + context words, deny lists), added to those of the "
        "catalog's `recognizers:` list.",
        "",
        "/opt/airflow/dags/recognizers.yaml",
    ),
    Option(
        "holds",
        "File of per-subject legal holds (pseudonyms only).",
        "{AIRFLOW_HOME}/aisec_holds.json",
        "/var/lib/aisec/holds.json",
    ),
    Option(
        "governance_reports",
        "Folder where the aisec_dpia DAG writes the DPIA, the records of processing and what changed since "
        "the previous run.",
        "{AIRFLOW_HOME}/aisec_governance",
        "/var/lib/aisec/governance",
    ),
    Option(
        "dsr_exports",
        "Folder or s3:// prefix where data-subject access requests write their encrypted export packages.",
        "{AIRFLOW_HOME}/aisec_dsr_exports",
        "s3://company-privacy/dsr-exports",
    ),
    Option(
        "dsr_state",
        "Folder where an unfinished data-subject request keeps its resolved identifiers, encrypted with a "
        "keyring key of the request's own, so a rerun after a failure finds everything; removed (and the key "
        "destroyed) once complete.",
        "{AIRFLOW_HOME}/aisec_dsr_state",
        "/var/lib/aisec/dsr-state",
    ),
    Option(
        "dsr_index",
        "Folder or s3:// prefix of the subject index (per file, Bloom filters of keyed hashes of identity "
        "and reference values), which lets a request skip files that cannot hold the subject; built by "
        "`aisec dsr index` or the aisec_dsr_index DAG.",
        "{AIRFLOW_HOME}/aisec_dsr_index",
        "s3://company-privacy/dsr-index",
    ),
    Option(
        "dsr_approval",
        "Whether the data-subject-request DAGs wait for a human approval before changing or exporting data "
        "(True/False).",
        "True",
        "False",
    ),
    Option(
        "dsr_deadline_days",
        "Days a data-subject request may take by law; each request record carries its deadline.",
        "30",
        "30",
    ),
    Option(
        "require_purpose",
        "Whether every read of a catalog dataset through aisec must declare its purpose (True/False); when "
        "False, a read without one is allowed and recorded with no purpose.",
        "False",
        "True",
    ),
    Option(
        "policies",
        "Whether aisec's cluster policies judge every DAG as it is parsed (True/False): purposes of catalog "
        "Asset inlets, an owner for DAGs touching personal data, no raw personal data published outside the "
        "catalog; a DAG that breaks one is an import error listing every violation.",
        "False",
        "True",
    ),
    Option(
        "spacy_model",
        "Installed spaCy model used for named-entity PII detection; it is never downloaded at run time.",
        "en_core_web_lg",
        "en_core_web_sm",
    ),
)
_BY_NAME = {option.name: option for option in OPTIONS}
_VAR_ENV_PREFIX = "AISEC_VAR_"


def airflow_home() -> Path:
    """Airflow's home folder, as Airflow itself computes it."""
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


def get_setting(name: str, override: str | None = None) -> str:
    """The resolved value of ``[aisec] name``; ``override`` is a CLI flag's value, if given."""
    option = _BY_NAME.get(name)
    if option is None:
        raise ConfigError(f"unknown setting [aisec] {name!r} (known: {', '.join(_BY_NAME)})")
    # Each source is consulted only when the previous one is empty: Airflow's config is slow to load.
    value = override or _environment(name) or _airflow_config(name) or option.default
    return _expand(value)


def _environment(name: str) -> str | None:
    if name == "keyring" and os.environ.get("AISEC_KEYRING"):
        return os.environ["AISEC_KEYRING"]
    return os.environ.get(f"AIRFLOW__{SECTION.upper()}__{name.upper()}")


def _airflow_config(name: str) -> str | None:
    """``[aisec] name`` from Airflow's configuration.

    Inside Airflow (already imported) Airflow's own parser answers, with its ``_CMD``/``_SECRET`` variants
    and secrets backends. Elsewhere, e.g. in the CLI, ``airflow.cfg`` is read directly: importing Airflow
    would take seconds and take over the process's logging.
    """
    if "airflow.configuration" in sys.modules:
        from airflow.configuration import conf

        value = conf.get(SECTION, name, fallback=None)
        return str(value) if value else None
    path = Path(os.environ.get("AIRFLOW_CONFIG") or airflow_home() / "airflow.cfg")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error) as e:
        raise ConfigError(f"cannot read Airflow configuration {path}: {e.__class__.__name__}") from None
    return parser.get(SECTION, name, fallback=None) or None


def _expand(value: str) -> str:
    return value.replace("{AIRFLOW_HOME}", str(airflow_home()))


def parse_vars(pairs: str | list[str] | tuple[str, ...], *, source: str = "--var") -> dict[str, str]:
    """Parse ``name=value`` pairs (a list, or one comma-separated string) into a dict."""
    items = pairs.split(",") if isinstance(pairs, str) else list(pairs)
    result: dict[str, str] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{source}: expected name=value, got {item!r}")
        result[name.strip()] = value.strip()
    return result


def catalog_vars(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Catalog variables: ``[aisec] catalog_vars``, then ``AISEC_VAR_<NAME>``, then CLI ``--var``."""
    merged = parse_vars(get_setting("catalog_vars"), source="[aisec] catalog_vars")
    for key, value in os.environ.items():
        if key.startswith(_VAR_ENV_PREFIX) and len(key) > len(_VAR_ENV_PREFIX):
            merged[key[len(_VAR_ENV_PREFIX) :].lower()] = value
    merged.update(overrides or {})
    return merged


def catalog_path(override: str | None = None) -> str:
    """The catalog file to read, or a ``ConfigError`` saying how to name one."""
    path = get_setting("catalog", override)
    if not path:
        raise ConfigError(
            "no catalog configured: pass --catalog FILE or set [aisec] catalog (AIRFLOW__AISEC__CATALOG)"
        )
    return path


def get_bool(name: str, override: str | None = None) -> bool:
    """A True/False setting (also accepted: 1/0, yes/no, on/off)."""
    value = get_setting(name, override).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"[aisec] {name}: expected True or False, got {value!r}")


def get_int(name: str, override: str | None = None, *, minimum: int = 1) -> int:
    """A whole-number setting of at least ``minimum``."""
    value = get_setting(name, override).strip()
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"[aisec] {name}: expected a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"[aisec] {name}: must be at least {minimum}, got {number}")
    return number
