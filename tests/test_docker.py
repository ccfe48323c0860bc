"""Static checks of docker/: the image, the compose stack and the secrets they must not contain.

No Docker engine is needed: the files are parsed and cross-checked against the repository.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
COMPOSE = DOCKER / "docker-compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
BASE_AIRFLOW_HOME = "/opt/airflow"  # AIRFLOW_HOME of the official apache/airflow image

AIRFLOW_SERVICES = (
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
)  # fmt: skip
LONG_RUNNING = ("postgres", "redis", "minio", *AIRFLOW_SERVICES)
SECRET_KEY_RE = re.compile(r"password|secret|fernet|key|token", re.IGNORECASE)
REQUIRED_REF_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}")
VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")


# --- helpers -----------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yaml must be a mapping"
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _walk(node: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every (mapping key, scalar value) pair of a parsed YAML tree; list items carry their parent key."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)
    else:
        yield key, node


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _compose_variables() -> set[str]:
    """Variables compose interpolates (``$$`` is a literal dollar for the container, not a variable)."""
    names: set[str] = set()
    for text in _strings(_compose()):
        for match in VAR_RE.finditer(text.replace("$$", "")):
            names.add(match.group(1) or match.group(2))
    return names


def _fill(text: str) -> str:
    """``text`` with each ``${NAME...}`` replaced by ``__REQ_NAME__`` (``:?`` form) or ``__OPT_NAME__``."""

    def token(match: re.Match[str]) -> str:
        return f"__{'REQ' if match.group(2) == ':?' else 'OPT'}_{match.group(1)}__"

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}", token, text)


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example line is not NAME=value: {line!r}"
        values[name.strip()] = value.strip()
    return values


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        instruction, _, args = full.partition(" ")
        result.append((instruction.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return result


def _args(name: str) -> list[str]:
    return [args for instruction, args in _instructions() if instruction == name]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _args("ENV"):
        for item in shlex.split(args):
            name, sep, value = item.partition("=")
            assert sep, f"use ENV NAME=value, not the legacy form: {args!r}"
            env[name] = value
    return env


def _dockerfile_arg_defaults() -> dict[str, str]:
    defaults: dict[str, str] = {}
    for args in _args("ARG"):
        name, _, value = args.partition("=")
        defaults[name.strip()] = value.strip()
    return defaults


def _copy_sources() -> list[str]:
    sources: list[str] = []
    for args in _args("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        assert len(words) >= 2, f"COPY needs a source and a destination: {args!r}"
        sources.extend(words[:-1])
    return sources


def _constraint(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        pkg, sep, version = line.strip().partition("==")
        if sep and pkg.strip().lower().replace("_", "-") == name:
            return version.strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def _ignore_pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def _ignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out, with .dockerignore rules (last match wins)."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]  # a path and its parent folders
    excluded = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        regex = _ignore_pattern_regex(pattern)
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


# --- compose: services -------------------------------------------------------------------------------


def test_compose_defines_database_lake_init_and_all_airflow_components() -> None:
    services = _services()
    expected = {"postgres", "minio", "airflow-init", *AIRFLOW_SERVICES}
    assert expected <= set(services), f"missing services: {sorted(expected - set(services))}"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["minio"]["image"].startswith("minio/minio")


def test_every_airflow_service_uses_the_common_image_settings_and_environment() -> None:
    services = _services()
    common = _compose()["x-airflow-common"]
    common_env = _environment(common)
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        service = services[name]
        assert service.get("build") == {"context": "..", "dockerfile": "docker/Dockerfile"}, name
        assert service.get("image") == common["image"], name
        assert str(service.get("user")) == "50000:0", name
        env = _environment(service)
        missing = {k for k, v in common_env.items() if env.get(k) != v}
        assert not missing, f"{name} lacks common environment {sorted(missing)}"
        assert "../dags:/opt/airflow/dags:ro" in service.get("volumes", []), name


def test_airflow_runs_with_celery_executor_on_postgres_and_the_aisec_settings() -> None:
    env = _environment(_compose()["x-airflow-common"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert urlsplit(_fill(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])).hostname == "postgres"
    assert urlsplit(_fill(env["AIRFLOW__AISEC__AUDIT_LOG"])).scheme == "postgresql"
    assert urlsplit(_fill(env["AIRFLOW__AISEC__AUDIT_LOG"])).hostname == "postgres"
    assert env["AIRFLOW__AISEC__CATALOG"] == "/opt/airflow/dags/catalog.yaml"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")


def test_airflow_init_migrates_the_database_once_and_the_other_components_wait_for_it() -> None:
    services = _services()
    init = services["airflow-init"]
    assert init["command"] == ["airflow", "db", "migrate"]
    assert init.get("restart") == "no"
    assert "airflow-init" not in init.get("depends_on", {})
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name


def test_each_airflow_component_runs_its_own_command() -> None:
    services = _services()
    assert services["airflow-scheduler"]["command"] == ["airflow", "scheduler"]
    assert services["airflow-dag-processor"]["command"] == ["airflow", "dag-processor"]
    assert services["airflow-triggerer"]["command"] == ["airflow", "triggerer"]
    assert services["airflow-worker"]["command"] == ["airflow", "celery", "worker"]
    apiserver_command = services["airflow-apiserver"]["command"]
    assert apiserver_command[-1].strip().splitlines()[-1].strip() == "exec airflow api-server"


def test_long_running_services_have_healthchecks() -> None:
    services = _services()
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    joined = {name: " ".join(services[name]["healthcheck"]["test"]) for name in LONG_RUNNING}
    assert "pg_isready" in joined["postgres"]
    assert "/api/v2/monitor/health" in joined["airflow-apiserver"]
    assert "8080" in joined["airflow-apiserver"]
    assert "--job-type SchedulerJob" in joined["airflow-scheduler"]
    assert "--job-type DagProcessorJob" in joined["airflow-dag-processor"]
    assert "--job-type TriggererJob" in joined["airflow-triggerer"]
    assert "inspect ping" in joined["airflow-worker"] and "celery@$${HOSTNAME}" in joined["airflow-worker"]
    assert "redis-cli" in joined["redis"] and "PONG" in joined["redis"]


def test_api_server_and_minio_console_are_published_on_localhost_only() -> None:
    services = _services()
    assert "127.0.0.1:8080:8080" in services["airflow-apiserver"]["ports"]
    assert "127.0.0.1:9001:9001" in services["minio"]["ports"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "ports" not in services["postgres"]
    assert "ports" not in services["redis"]


# --- compose: Celery ---------------------------------------------------------------------------------


def test_celery_uses_the_redis_broker_and_a_postgres_result_backend_shared_by_every_component() -> None:
    env = _environment(_compose()["x-airflow-common"])
    broker = urlsplit(_fill(env["AIRFLOW__CELERY__BROKER_URL"]))
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    backend = urlsplit(_fill(env["AIRFLOW__CELERY__RESULT_BACKEND"]))
    assert (backend.scheme, backend.hostname) == ("db+postgresql", "postgres")
    metadata = urlsplit(_fill(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    assert backend.path == metadata.path  # results in the metadata database, not a database of their own
    # One JWT secret for all: workers' task processes call the API server's Execution API with its tokens.
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET:?")
    assert int(env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"]) == 1
    assert int(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) >= 3600
    for name in AIRFLOW_SERVICES:
        assert _services()[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name


def test_workers_scale_with_compose_scale() -> None:
    worker = _services()["airflow-worker"]
    # A fixed container name, host name or published port would stop a second copy from starting.
    assert not {"container_name", "hostname", "ports"} & set(worker)
    assert _environment(worker)["DUMB_INIT_SETSID"] == "0"  # warm shutdown: running tasks finish first
    assert "--scale airflow-worker=" in COMPOSE.read_text(encoding="utf-8")


def test_redis_admits_only_its_user_with_a_password() -> None:
    redis = _services()["redis"]
    command = " ".join(redis["command"])
    assert "--user default off" in command
    assert '--user "$$REDIS_USER" on ">$$REDIS_PASSWORD"' in command
    env = _environment(redis)
    assert REQUIRED_REF_RE.fullmatch(env["REDIS_PASSWORD"])
    assert "redis-data" in (_compose().get("volumes") or {})


# --- compose: files it references -------------------------------------------------------------------


def test_build_context_is_the_repository_root_and_the_dockerfile_exists() -> None:
    build = _compose()["x-airflow-common"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()


def test_every_host_path_mounted_by_compose_exists_and_named_volumes_are_declared() -> None:
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    host_paths = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith((".", "/")):
                host_paths.append(source)
                assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
    assert {"../dags", "./postgres-init"} <= set(host_paths)


def test_postgres_init_script_creates_the_audit_log_database() -> None:
    postgres = _services()["postgres"]
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    audit_url = _environment(_compose()["x-airflow-common"])["AIRFLOW__AISEC__AUDIT_LOG"]
    database = urlsplit(_fill(audit_url)).path.lstrip("/")
    assert database == "aisec_audit"
    sql = (DOCKER / "postgres-init" / "10-aisec-audit.sql").read_text(encoding="utf-8")
    assert re.search(rf"^\s*CREATE DATABASE {database}\s*;", sql, re.MULTILINE | re.IGNORECASE)


def test_catalog_setting_points_inside_the_mounted_dags_folder() -> None:
    catalog = _environment(_compose()["x-airflow-common"])["AIRFLOW__AISEC__CATALOG"]
    assert posixpath.dirname(catalog) == "/opt/airflow/dags"
    assert (ROOT / "dags").is_dir()


# --- secrets ---------------------------------------------------------------------------------------


def test_env_example_defines_every_variable_the_compose_file_uses() -> None:
    used = _compose_variables()
    assert {"POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"} <= used
    missing = used - set(_env_example())
    assert not missing, f"docker/.env.example lacks {sorted(missing)}"


def test_env_example_defines_no_variable_the_compose_file_ignores() -> None:
    unused = set(_env_example()) - _compose_variables()
    assert not unused, f"docker/.env.example defines unused {sorted(unused)}"


def test_env_example_holds_placeholders_not_secrets() -> None:
    values = _env_example()
    secrets = {name: value for name, value in values.items() if SECRET_KEY_RE.search(name)}
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW_FERNET_KEY"} <= set(secrets)
    for name, value in secrets.items():
        assert value == "change-me", f"{name} in .env.example must be the placeholder change-me"
    assert values["MINIO_ROOT_USER"] == "change-me"
    assert "Fernet.generate_key()" in ENV_EXAMPLE.read_text(encoding="utf-8")


def test_compose_holds_no_secret_literal() -> None:
    checked = []
    for key, value in _walk(_compose()):
        if isinstance(value, str) and "=" in value and key == "environment":
            key, value = value.split("=", 1)
        if key is None or not SECRET_KEY_RE.search(key) or value is None:
            continue
        assert isinstance(value, str), f"{key} must be a ${{VAR}} reference, not {value!r}"
        assert REQUIRED_REF_RE.fullmatch(value), f"{key}: {value!r} is not a required ${{VAR:?...}} reference"
        checked.append(key)
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW__CORE__FERNET_KEY"} <= set(checked)
    assert {"AIRFLOW__API_AUTH__JWT_SECRET", "AWS_SECRET_ACCESS_KEY", "AIRFLOW_ADMIN_PASSWORD"} <= set(
        checked
    )
    assert "REDIS_PASSWORD" in checked


def test_connection_urls_in_compose_carry_no_literal_password() -> None:
    found = (
        url for text in _strings(_compose()) for url in re.findall(r"[a-z][a-z0-9+]*://\S+", _fill(text))
    )
    urls = [urlsplit(url) for url in found if "@" in urlsplit(url).netloc]
    assert len(urls) >= 4, "expected the metadata, result backend, broker and audit-log URLs with credentials"
    for url in urls:
        assert url.username and re.fullmatch(r"__(REQ|OPT)_\w+__", url.username), url.geturl()
        assert url.password and re.fullmatch(r"__REQ_\w+__", url.password), (
            f"literal password: {url.geturl()}"
        )


def test_compose_reads_no_env_file_so_containers_get_only_their_variables() -> None:
    for name, service in _services().items():
        assert "env_file" not in service, f"{name} would receive every secret of docker/.env"
    airflow_env = _environment(_compose()["x-airflow-common"])
    assert not any("MINIO_ROOT" in value for value in airflow_env.values())


def test_docker_env_is_git_ignored() -> None:
    lines = [line.strip() for line in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()]
    assert "docker/.env" in lines or "/docker/.env" in lines
    assert "!docker/.env" not in lines
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("git is not available to confirm")
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "docker/.env"], check=False, capture_output=True
    )
    assert ignored.returncode == 0, "git does not ignore docker/.env"
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--", "docker/.env"], check=True, capture_output=True, text=True
    )
    assert tracked.stdout.strip() == "", "docker/.env is committed"


# --- Dockerfile ------------------------------------------------------------------------------------


def test_image_builds_on_the_official_airflow_image_pinned_in_constraints() -> None:
    (base,) = _args("FROM")
    assert base == f"apache/airflow:{_constraint('apache-airflow')}-python3.11"


def test_image_does_not_run_as_root() -> None:
    users = _args("USER")
    assert users, "the Dockerfile sets no USER"
    last = users[-1].split(":")[0]
    assert last not in {"root", "0"}
    assert last == "airflow"
    instructions = _instructions()
    assert instructions[-1] == ("USER", "airflow"), "the image must end with USER airflow"


def test_image_installs_pip_packages_as_the_airflow_user() -> None:
    user = None
    pip_runs = 0
    for instruction, args in _instructions():
        if instruction == "USER":
            user = args
        elif instruction == "RUN" and "pip install" in args:
            pip_runs += 1
            assert user == "airflow", f"pip runs as {user!r}: {args[:60]}"
    assert pip_runs >= 1


def test_image_installs_the_package_with_all_extras_and_the_pinned_constraints() -> None:
    installs = [args for args in _args("RUN") if "pip install" in args]
    project = [args for args in installs if '".[all]"' in args]
    assert project, "no RUN installs .[all]"
    for command in installs:
        for pip_call in command.split("pip install")[1:]:
            words = shlex.split(pip_call.split("&&")[0])
            assert "--no-cache-dir" in words
            assert words[words.index("-c") + 1] == "constraints.txt", "pip install without -c constraints.txt"


def test_image_bakes_in_en_core_web_lg_matching_the_pinned_spacy() -> None:
    args = _dockerfile_arg_defaults()
    assert args["SPACY_MODEL"] == "en_core_web_lg"
    model_version = args["SPACY_MODEL_VERSION"]
    spacy_version = _constraint("spacy")
    assert model_version.split(".")[:2] == spacy_version.split(".")[:2], "model and spaCy minor differ"
    install = " ".join(args for args in _args("RUN") if "spacy-models" in args or "spacy download" in args)
    assert "${SPACY_MODEL}" in install or "en_core_web_lg" in install
    assert _dockerfile_env()["AIRFLOW__AISEC__SPACY_MODEL"] in {"${SPACY_MODEL}", "en_core_web_lg"}


def test_image_needs_no_egress_at_run_time() -> None:
    env = _dockerfile_env()
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] == "", "tldextract would fetch the suffix list"
    assert env["TLDEXTRACT_CACHE"].startswith("${AIRFLOW_HOME}/")


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    sources = _copy_sources()
    assert {"pyproject.toml", "README.md", "constraints.txt", "airflow_aisec/", "dags/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY source {source} is missing from the repository"
        assert not _ignored(source), f"COPY source {source} is excluded by Dockerfile.dockerignore"


def test_dags_are_copied_into_airflow_home() -> None:
    dags = [args for args in _args("COPY") if shlex.split(args)[-2] == "dags/"]
    assert dags and shlex.split(dags[0])[-1].rstrip("/") == "${AIRFLOW_HOME}/dags"


def test_image_carries_oci_labels_with_the_package_version() -> None:
    labels = dict(item.split("=", 1) for item in shlex.split(" ".join(_args("LABEL"))))
    for label in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{label}" in labels
    version = labels["org.opencontainers.image.version"].replace(
        "${AISEC_VERSION}", _dockerfile_arg_defaults()["AISEC_VERSION"]
    )
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(rf'^version = "{re.escape(version)}"$', pyproject, re.MULTILINE)


def test_local_keyring_lives_in_a_compose_volume() -> None:
    keyring = _dockerfile_env()["AIRFLOW__AISEC__KEYRING"].replace("${AIRFLOW_HOME}", BASE_AIRFLOW_HOME)
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in _compose()["x-airflow-common"]["volumes"]}
    folder = posixpath.dirname(keyring)
    assert folder in mounts, f"{folder} is not a volume: keys would be lost with the container"
    assert mounts[folder] in (_compose().get("volumes") or {})


# --- build context filter --------------------------------------------------------------------------


def test_dockerignore_keeps_the_venv_git_tests_and_secrets_out_of_the_build_context() -> None:
    for path in (".venv", ".venv/bin/python", ".git", ".git/config", "tests", "benchmarks"):
        assert _ignored(path), f"{path} would be sent to the Docker daemon"
    for path in ("docker/.env", "airflow_aisec/__pycache__/x.pyc", ".mypy_cache", ".pytest_cache"):
        assert _ignored(path), path
    assert not _ignored("airflow_aisec/config.py")
    assert not _ignored("pyproject.toml")
