"""The process-wide default client behind get_secret_from_vault() and gds_snowflake."""

from __future__ import annotations

import threading
from typing import Any

from gds_vault._client import VaultClient

_default: VaultClient | None = None
_lock = threading.Lock()


def get_default_client() -> VaultClient:
    """The shared client, created from the environment on first use.

    One client per process means one Vault login for all callers. A forked child keeps
    the object; the client itself re-creates its connections and locks there.

    Raises:
        VaultConfigError: When the environment does not configure Vault.
    """
    global _default
    client = _default
    if client is not None and not client.closed:
        return client
    with _lock:
        if _default is None or _default.closed:
            _default = VaultClient.from_env()
        return _default


def set_default_client(client: VaultClient | None) -> None:
    """Replace the shared client (None: build a new one from the environment next time)."""
    global _default
    with _lock:
        _default = client


def reset_default_client() -> None:
    """Close the shared client and forget it; the next use builds one from the environment.

    For tests and notebooks whose VAULT_* variables changed. Connections opened with the
    old client keep working until they next need Vault.
    """
    global _default
    with _lock:
        client, _default = _default, None
    if client is not None:
        client.close()


def get_secret_from_vault(path: str, key: str | None = None, *, version: int | None = None) -> Any:
    """Read a secret with the process-wide default client.

    Args:
        path: Mount and path, e.g. "secret/snowflake/etl".
        key: Return only this field.
        version: A KV v2 version (default: the latest).

    Raises:
        VaultError: See VaultClient.get_secret.
    """
    return get_default_client().get_secret(path, key=key, version=version)


def _reinit_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


import os  # noqa: E402 - kept next to its one use

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_lock_after_fork)
