"""Who may import what (ARCHITECTURE.md, "Invariants"), read from the source with ``ast``.

- gds_snowflake talks to gds_vault only through its public API: ``gds_vault`` and its
  public modules, never a ``gds_vault._private`` module or name.
- gds_vault never imports gds_snowflake.
- Runtime modules import no tooling: in gds_snowflake, nothing outside ``doctor/``,
  ``demo/``, ``testing/`` and ``cli.py`` imports those; in gds_vault, nothing but
  ``cli.py`` and ``testing.py`` imports ``gds_vault.cli`` or ``gds_vault.testing``.

Every import counts, also those inside functions and ``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNOWFLAKE_TOOLING = (
    "gds_snowflake.doctor",
    "gds_snowflake.demo",
    "gds_snowflake.testing",
    "gds_snowflake.cli",
)
VAULT_TOOLING = ("gds_vault.cli", "gds_vault.testing")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, dotted name)`` for every module or name the source imports; ``from a import
    b`` gives ``a.b`` (b may be a module or a name: both count)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".")
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, *([base] if base else [])])
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def private_part(name: str, package: str) -> str | None:
    """The first ``_private`` component of ``name`` inside ``package``, if any."""
    parts = name.split(".")
    if parts[0] != package:
        return None
    return next((p for p in parts[1:] if p.startswith("_") and not p.startswith("__")), None)


def sources(package: str) -> list[tuple[str, Path, bool]]:
    files = sorted((ROOT / package).rglob("*.py"))
    return [(module_name(f), f, f.name == "__init__.py") for f in files]


def violations(package: str, rule) -> list[str]:
    found = []
    for module, path, is_package in sources(package):
        for line, name in imports_of(path.read_text(), module, is_package=is_package):
            if rule(module, name):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return found


def in_any(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_gds_snowflake_imports_nothing_private_from_gds_vault():
    """No module under gds_snowflake/ imports a gds_vault._private module or name."""
    found = violations("gds_snowflake", lambda _, name: private_part(name, "gds_vault"))
    assert found == [], "use gds_vault's public API (or grow it a public seam):\n" + "\n".join(
        found
    )


def test_gds_vault_never_imports_gds_snowflake():
    """The dependency goes one way: gds_snowflake depends on gds_vault."""
    found = violations("gds_vault", lambda _, name: in_any(name, ("gds_snowflake",)))
    assert found == [], "\n".join(found)


def test_runtime_imports_no_tooling():
    """Runtime modules of either package import neither package's tooling."""

    def runtime_imports_tooling(module: str, name: str) -> bool:
        if in_any(module, SNOWFLAKE_TOOLING + VAULT_TOOLING):
            return False  # tooling may use tooling
        return in_any(name, SNOWFLAKE_TOOLING + VAULT_TOOLING)

    found = violations("gds_snowflake", runtime_imports_tooling)
    found += violations("gds_vault", runtime_imports_tooling)
    assert found == [], "runtime must not depend on tooling:\n" + "\n".join(found)


# -- the checks can fail, and they see the real imports ---------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import gds_vault._client",
        "from gds_vault._transport import Transport",
        "from gds_vault import _tls",
        "def f():\n    from gds_vault._cache import SecretCache",
        "if TYPE_CHECKING:\n    from gds_vault._auth import LoginResult",
    ],
)
def test_a_private_import_is_caught(source):
    """Each way of importing something private from gds_vault is recognised."""
    names = [name for _, name in imports_of(source, "gds_snowflake._x")]
    assert any(private_part(name, "gds_vault") for name in names), names


@pytest.mark.parametrize(
    "source",
    [
        "import gds_vault",
        "from gds_vault import VaultClient, __version__",
        "from gds_vault.retry import RetryPolicy",
        "from gds_vault.testing import OpenBaoServer",
    ],
)
def test_a_public_import_passes(source):
    """The public API and the public modules are allowed."""
    names = [name for _, name in imports_of(source, "gds_snowflake._x")]
    assert not any(private_part(name, "gds_vault") for name in names), names


def test_relative_imports_resolve():
    """``from . import x`` and ``from ._y import z`` resolve inside the package."""
    assert imports_of("from ._base import Outcome", "gds_snowflake.doctor._runner") == [
        (1, "gds_snowflake.doctor._base.Outcome")
    ]
    assert imports_of("from . import _base", "gds_snowflake.doctor", is_package=True) == [
        (1, "gds_snowflake.doctor._base")
    ]


def test_the_scan_sees_the_packages():
    """The scan reads every module, and finds the imports known to be there."""
    names = {module for module, _, _ in sources("gds_snowflake")}
    assert {"gds_snowflake._provider", "gds_snowflake.doctor._vault_steps"} <= names
    provider = ROOT / "gds_snowflake" / "_provider.py"
    imported = {name for _, name in imports_of(provider.read_text(), "gds_snowflake._provider")}
    assert "gds_vault.get_default_client" in imported
