"""Where the Snowflake double's server runs: an interpreter that can import fakesnow.

fakesnow 0.12 imports connector internals (``snowflake.connector.converter`` and
others) that connector 5.x removed, and a plain install of gds-vault-snowflake resolves
connector 5.x. So the double's server always runs in a process of its own
(``gds_snowflake.testing._server``), with one of two interpreters:

- this one, when it can serve: fakesnow, uvicorn, starlette and PyJWT importable beside
  connector 4.x (an environment installed with the ``double`` extra, such as CI's 4.x
  pass or one where Airflow holds the connector below 5);
- otherwise the interpreter of a virtual environment built for it on first use, with
  ``venv`` and pip from PyPI, holding the ``double`` extra's requirements and the
  package's own, then reused. Building takes about half a minute and needs PyPI (or
  the index pip is configured with); the environment takes about 360 MB.

Its location: ``GDS_SNOWFLAKE_DOUBLE_ENV`` when set, else
``$XDG_CACHE_HOME/gds-snowflake/double-env/py<X.Y>-<hash>`` (``~/.cache`` without
``XDG_CACHE_HOME``), where the hash covers the requirements and the base interpreter,
so a change of either builds a new environment beside the old one. The location is
resolved once per process; :func:`export_location` also puts it in
``GDS_SNOWFLAKE_DOUBLE_ENV`` for child processes, so a test that points HOME elsewhere,
or a command a test runs (``gds-snowflake demo``), finds the same environment instead of
building another. A file lock beside it lets concurrent processes share one build; a
build that failed or was interrupted is started again from scratch.

Nothing from this process's ``sys.path`` reaches the server's: it is started with
``-I`` (isolated mode) and imports ``gds_snowflake`` from this process's copy of the
package by file location (see ``gds_snowflake.testing._double``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, requires, version
from importlib.util import find_spec
from pathlib import Path

__all__ = [
    "ENV_VARIABLE",
    "DoubleEnvironmentError",
    "environment_location",
    "export_location",
    "requirements",
    "server_interpreter",
]

logger = logging.getLogger(__name__)

ENV_VARIABLE = "GDS_SNOWFLAKE_DOUBLE_ENV"
DISTRIBUTION = "gds-vault-snowflake"
EXTRA = "double"
BUILD_TIMEOUT = 900.0  # seconds for pip to install the environment (first use only)
MARKER = "gds-double-env.json"  # written last: its presence means the build completed
BUILD_LOG = "build.log"
_SERVER_MODULES = ("fakesnow", "uvicorn", "starlette", "jwt")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")

_location: Path | None = None


class DoubleEnvironmentError(RuntimeError):
    """The double's environment could not be built; the message says why and what to do."""


def requirements() -> tuple[str, ...]:
    """What the double's environment installs: the package's requirements and its ``double`` extra.

    Read from the installed distribution's metadata, so pyproject.toml is the one place
    they are written.

    Raises:
        DoubleEnvironmentError: gds-vault-snowflake is not installed (only imported
            from a source tree), so its requirements are unknown.
    """
    try:
        declared = requires(DISTRIBUTION) or []
    except PackageNotFoundError:
        raise DoubleEnvironmentError(
            f"{DISTRIBUTION} is not installed, so the Snowflake double's requirements are "
            f"unknown: install it (pip install -e '.[dev]' in a checkout)."
        ) from None
    chosen = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        extras = _EXTRA_MARKER.findall(marker)
        if not extras:
            chosen.append(line.strip())  # the package's own, with any marker it has
        elif extras == [EXTRA]:
            chosen.append(requirement.strip())  # the extra's (written without other markers)
    return tuple(chosen)


def _this_interpreter_can_serve() -> bool:
    # Metadata and module lookups only: importing fakesnow next to connector 5.x fails.
    if any(find_spec(name) is None for name in _SERVER_MODULES):
        return False
    try:
        major = int(version("snowflake-connector-python").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return False
    return major < 5


def environment_location(environ: dict[str, str] | None = None) -> Path:
    """Where the built environment lives (resolved once per process; see the module doc)."""
    global _location
    if _location is None:
        env = os.environ if environ is None else environ
        explicit = env.get(ENV_VARIABLE, "").strip()
        if explicit:
            _location = Path(explicit).expanduser().resolve()
        else:
            cache = env.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
            _location = Path(cache).expanduser().resolve() / "gds-snowflake" / "double-env" / _tag()
    return _location


def export_location() -> Path:
    """Resolve the location now and hand it down to child processes (GDS_SNOWFLAKE_DOUBLE_ENV)."""
    location = environment_location()
    os.environ.setdefault(ENV_VARIABLE, str(location))
    return location


def _tag() -> str:
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    digest = hashlib.sha256("\n".join((base, *requirements())).encode()).hexdigest()
    return f"py{sys.version_info.major}.{sys.version_info.minor}-{digest[:12]}"


def _python_in(location: Path) -> Path:
    return location / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def server_interpreter(*, report: Callable[[str], None] | None = None) -> str:
    """The interpreter that runs the double's server, building its environment if needed.

    Args:
        report: Called with one line when a build starts (it takes a while), e.g. print.

    Returns:
        The path of a Python executable that can import fakesnow.

    Raises:
        DoubleEnvironmentError: The environment could not be built.
    """
    if _this_interpreter_can_serve():
        return sys.executable
    location = environment_location()
    if not _built(location):
        location.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(location.with_name(location.name + ".lock")):
            if not _built(location):  # another process may have built it meanwhile
                _build(location, report)
    return str(_python_in(location))


def _built(location: Path) -> bool:
    try:
        recorded = json.loads((location / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(recorded, dict)
        and recorded.get("requirements") == list(requirements())
        and _python_in(location).exists()
    )


def _build(location: Path, report: Callable[[str], None] | None) -> None:
    import venv

    message = (
        f"Building the Snowflake double's environment in {location} (first use only; about "
        f"half a minute with pip, from PyPI)"
    )
    logger.info(message)
    if report is not None:
        report(message)
    shutil.rmtree(location, ignore_errors=True)  # a build that failed or was interrupted
    location.mkdir(parents=True)
    log_path = location / BUILD_LOG
    try:
        venv.EnvBuilder(with_pip=True, symlinks=os.name != "nt").create(location)
        with log_path.open("w", encoding="utf-8") as log:
            subprocess.run(
                [
                    str(_python_in(location)),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    *requirements(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
                check=True,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        tail = _tail(log_path)
        raise DoubleEnvironmentError(
            f"Could not build the Snowflake double's environment in {location} ({exc}). "
            "It needs PyPI (or the index pip is configured with) on first use; see "
            f"{log_path} for pip's output, or set {ENV_VARIABLE} to a writable directory."
            + (f"\npip said:\n{tail}" if tail else "")
        ) from exc
    (location / MARKER).write_text(
        json.dumps({"requirements": list(requirements()), "python": sys.version}, indent=2),
        encoding="utf-8",
    )
    logger.info("Built the Snowflake double's environment in %s", location)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: concurrent first builds may collide
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
