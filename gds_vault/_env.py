"""Reading VAULT_* variables: OpenBao's BAO_* names as aliases, and the legacy HVAULT_*
names as a deprecated fallback.

For each setting the VAULT_* name wins; without it, the BAO_* name that the OpenBao CLI
(``bao``) reads is used, silently (a supported alias: a shell set up for ``bao`` works
as it is); then the HVAULT_* name of gds_hvault, with a DeprecationWarning.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from gds_vault._errors import VaultConfigError

# The gds_hvault package read these; gds_vault reads them only when the new name is absent.
LEGACY_NAMES = {
    "VAULT_ADDR": "HVAULT_ADDR",
    "VAULT_TOKEN": "HVAULT_TOKEN",
    "VAULT_ROLE_ID": "HVAULT_ROLE_ID",
    "VAULT_SECRET_ID": "HVAULT_SECRET_ID",
    "VAULT_NAMESPACE": "HVAULT_NAMESPACE",
}

# What OpenBao's CLI reads, for the settings gds_vault has: read when VAULT_* is absent.
BAO_ALIASES = {
    "VAULT_ADDR": "BAO_ADDR",
    "VAULT_TOKEN": "BAO_TOKEN",
    "VAULT_NAMESPACE": "BAO_NAMESPACE",
    "VAULT_CACERT": "BAO_CACERT",
    "VAULT_CAPATH": "BAO_CAPATH",
    "VAULT_CLIENT_CERT": "BAO_CLIENT_CERT",
    "VAULT_CLIENT_KEY": "BAO_CLIENT_KEY",
    "VAULT_SKIP_VERIFY": "BAO_SKIP_VERIFY",
    "VAULT_CLIENT_TIMEOUT": "BAO_CLIENT_TIMEOUT",
    "VAULT_MAX_RETRIES": "BAO_MAX_RETRIES",
}

# Frames in these directories are skipped when blaming a deprecated variable on a caller.
_PACKAGE_DIRS = tuple(
    str(Path(__file__).parent.parent / package) + os.sep
    for package in ("gds_vault", "gds_snowflake")
)

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def source_of(environ: Mapping[str, str], name: str) -> str:
    """The variable that gives ``name``'s setting: ``name`` itself, or its BAO_* or legacy
    HVAULT_* alias when only that one is set (for messages: "check BAO_ADDR")."""
    for candidate in (name, BAO_ALIASES.get(name), LEGACY_NAMES.get(name)):
        if candidate and environ.get(candidate, "").strip():
            return candidate
    return name


def _raw(environ: Mapping[str, str], name: str) -> tuple[str, str]:
    """(variable, stripped value) of ``name`` or its BAO_* alias; ("name", "") if neither."""
    for candidate in (name, BAO_ALIASES.get(name)):
        if candidate:
            value = environ.get(candidate, "").strip()
            if value:
                return candidate, value
    return name, ""


def read(environ: Mapping[str, str], name: str) -> str | None:
    """The value of ``name``, else of its BAO_* alias, else of its legacy HVAULT_* name
    (with a DeprecationWarning).

    Empty values count as unset, as in Vault's CLI.
    """
    _, value = _raw(environ, name)
    if value:
        return value
    legacy = LEGACY_NAMES.get(name)
    if legacy and environ.get(legacy, "").strip():
        warnings.warn(
            f"{legacy} is deprecated; set {name} instead (see MIGRATION.md). "
            f"{legacy} is read only because {name} is not set.",
            DeprecationWarning,
            stacklevel=outside_stacklevel(),
        )
        return environ[legacy].strip()
    return None


def outside_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning raised by our caller name the user's line.

    It counts the frames above the caller that belong to gds_vault or gds_snowflake, since
    the depth differs between entry points (``VaultClient(...)``, ``from_env()``, the
    default client). A warning blamed on the package itself would point users nowhere,
    and Python's default filters hide a DeprecationWarning blamed on a library.
    """
    frame: FrameType | None = sys._getframe(2)  # the caller's caller: stacklevel 2
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRS):
        frame = frame.f_back
        level += 1
    return level


def read_bool(environ: Mapping[str, str], name: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (case-insensitive)."""
    name, raw = _raw(environ, name)
    raw = raw.lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise VaultConfigError(f"{name}={raw!r} is not a boolean; use true or false.")


def read_seconds(environ: Mapping[str, str], name: str) -> float | None:
    """A duration in seconds: "30", "2.5", "30s", "2m" (Vault CLI style)."""
    name, raw = _raw(environ, name)
    raw = raw.lower()
    if not raw:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if raw.endswith(suffix):
            number, factor = raw[: -len(suffix)], scale[suffix]
            break
    else:
        number, factor = raw, 1.0
    try:
        seconds = float(number) * factor
    except ValueError:
        raise VaultConfigError(
            f"{name}={raw!r} is not a duration; use seconds such as 30 or 30s."
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise VaultConfigError(f"{name} must be a finite number of seconds above 0, not {raw!r}.")
    return seconds


def read_int(environ: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    """A whole number of at least ``minimum``."""
    name, raw = _raw(environ, name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise VaultConfigError(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise VaultConfigError(f"{name} must be at least {minimum}, not {value}.")
    return value


def normalise_addr(addr: object, *, source: str = "VAULT_ADDR") -> str:
    """Check a Vault address and return it without a trailing slash.

    Raises:
        VaultConfigError: If it is empty, has no http(s) scheme or host, or has a path.
    """
    if not isinstance(addr, str) or not addr.strip():
        raise VaultConfigError(
            f"{source} is not set: set it to your Vault server's address, "
            "for example https://vault.example.com:8200."
        )
    addr = addr.strip().rstrip("/")
    parts = urlsplit(addr)
    if "@" in parts.netloc:
        # Checked first, and the address not echoed: it would carry a password.
        raise VaultConfigError(
            f"{source} must not carry credentials in the address; "
            "use VAULT_TOKEN or the AppRole variables instead."
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise VaultConfigError(
            f"{source}={addr!r} is not an address: it needs a scheme and a host, "
            "for example https://vault.example.com:8200."
        )
    if parts.path or parts.query or parts.fragment:
        raise VaultConfigError(
            f"{source}={addr!r} has a path; give only scheme, host and port "
            f"({parts.scheme}://{parts.netloc}). The client adds /v1/ itself."
        )
    try:
        _ = parts.port
    except ValueError:
        raise VaultConfigError(f"{source} has an invalid port.") from None
    return addr
