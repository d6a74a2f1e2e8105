"""Reading VAULT_* variables, with the legacy HVAULT_* names as a deprecated fallback."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
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

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def read(environ: Mapping[str, str], name: str) -> str | None:
    """The value of ``name``, or of its legacy HVAULT_* name with a DeprecationWarning.

    Empty values count as unset, as in Vault's CLI.
    """
    value = environ.get(name, "").strip()
    if value:
        return value
    legacy = LEGACY_NAMES.get(name)
    if legacy and environ.get(legacy, "").strip():
        warnings.warn(
            f"{legacy} is deprecated; set {name} instead (see MIGRATION.md). "
            f"{legacy} is read only because {name} is not set.",
            DeprecationWarning,
            stacklevel=4,
        )
        return environ[legacy].strip()
    return None


def read_bool(environ: Mapping[str, str], name: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (case-insensitive)."""
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise VaultConfigError(f"{name}={raw!r} is not a boolean; use true or false.")


def read_seconds(environ: Mapping[str, str], name: str) -> float | None:
    """A duration in seconds: "30", "2.5", "30s", "2m" (Vault CLI style)."""
    raw = environ.get(name, "").strip().lower()
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
    if seconds <= 0:
        raise VaultConfigError(f"{name} must be more than 0 seconds, not {raw!r}.")
    return seconds


def read_int(environ: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    """A whole number of at least ``minimum``."""
    raw = environ.get(name, "").strip()
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
