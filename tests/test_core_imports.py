"""The core never imports Airflow: only the adapters (operators, hooks, plugins, the cluster policies, the
CLI, the demo) do.

Two checks: every core module imports in a fresh interpreter where ``airflow`` cannot be imported at all,
and no core module names Airflow or an adapter in any import statement, lazy ones inside functions
included (an import that only runs on some path would pass the first check and still pull Airflow in).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import airflow_aisec

PACKAGE = Path(airflow_aisec.__file__).resolve().parent
ADAPTERS = ("operators", "hooks", "plugins", "policies", "cli", "demo")
# Reads Airflow's own configuration parser only when Airflow is already loaded (inside Airflow), so that
# `_CMD`/`_SECRET` settings and secrets backends apply there; elsewhere it reads airflow.cfg itself.
ALLOWED = {("config", "airflow.configuration")}


def core_modules() -> list[str]:
    """Dotted names of every module of the package outside the adapters."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[0] in ADAPTERS or parts[0].removesuffix(".py") in ADAPTERS:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(("airflow_aisec", *parts)))
    return names


def imported_names(tree: ast.AST) -> list[str]:
    """Every module an import statement anywhere in ``tree`` names (absolute imports only)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def forbidden(name: str) -> bool:
    adapters = tuple(f"airflow_aisec.{a}" for a in ADAPTERS)
    return name == "airflow" or name.startswith("airflow.") or name.startswith(adapters)


def allowed(module: str, name: str) -> bool:
    return any(module == m and (name == a or name.startswith(f"{a}.")) for m, a in ALLOWED)


BLOCKER = """
import importlib, importlib.abc, json, sys

class NoAirflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError(f"{name} is not importable here")
        return None

sys.meta_path.insert(0, NoAirflow())
failed = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
loaded = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
print(json.dumps({"failed": failed, "airflow_loaded": loaded}))
"""


def test_the_core_list_is_the_package_minus_the_adapters() -> None:
    modules = core_modules()
    assert "airflow_aisec.audit.log" in modules and "airflow_aisec.pii.engine" in modules
    assert not [m for m in modules if m.startswith(("airflow_aisec.operators", "airflow_aisec.hooks"))]


def test_every_core_module_imports_without_airflow() -> None:
    modules = core_modules()
    run = subprocess.run(
        [sys.executable, "-c", BLOCKER, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "airflow_loaded": []}


def test_no_core_module_names_airflow_or_an_adapter_in_any_import() -> None:
    offenders = []
    for module in core_modules():
        relative = module.removeprefix("airflow_aisec").lstrip(".").replace(".", "/")
        path = PACKAGE / f"{relative}.py" if relative else PACKAGE / "__init__.py"
        if not path.exists():
            path = PACKAGE / relative / "__init__.py"
        short = relative.replace("/", ".")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders.extend(
            f"{module}: {name}"
            for name in imported_names(tree)
            if forbidden(name) and not allowed(short, name)
        )
    assert offenders == []


def test_the_import_check_sees_lazy_imports() -> None:
    tree = ast.parse("def f():\n    from airflow_aisec.hooks.audit import connection_uri\n")
    assert [name for name in imported_names(tree) if forbidden(name)] == [
        "airflow_aisec.hooks.audit",
        "airflow_aisec.hooks.audit.connection_uri",
    ]
