"""What the KV layer says when a read fails: the path the user wrote, the mount and its
version, and the fix in the user's own terms.

Vault's answer names the API path (``secret/data/snowflake/etl``), which is neither the
path the user wrote nor, when the user wrote ``data/`` by hand, a path anyone should
grant. These messages start from the user's path instead:

- a ``data/`` written by hand on a KV v2 mount: drop it (not "grant read on
  ``secret/data/data/...``", a policy path that means nothing);
- a denied read: the *policy* path for that mount's version (``secret/data/x`` on KV v2,
  ``kv1/x`` on KV v1), with the HCL to add;
- a denied read where the token may not even look the mount up: both policy paths, with
  which version each is for, since Vault will not say which one the mount is.

Each error carries the fix on its own as ``fix`` (``gds-snowflake doctor`` shows it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gds_vault._errors import (
    VaultError,
    VaultPathError,
    VaultPermissionError,
    VaultSecretDeletedError,
    VaultSecretNotFoundError,
)
from gds_vault._printable import printable

if TYPE_CHECKING:
    from gds_vault._kv import Mount

__all__ = ["deleted", "missing_key", "not_found", "permission_denied", "unknown_mount_denied"]

_HAND_WRITTEN = ("data/", "metadata/")  # KV v2 API segments users sometimes copy by hand


def _without_api_segment(mount_path: str, rest: str) -> str | None:
    """The path as `vault kv get` takes it, when ``rest`` starts with data/ or metadata/."""
    if rest.startswith(_HAND_WRITTEN) and "/" in rest:
        return f"{mount_path}{rest.split('/', 1)[1]}"
    return None


def _grant(policy_path: str, capability: str = "read") -> str:
    return f'path "{policy_path}" {{ capabilities = ["{capability}"] }}'


def permission_denied(mount: Mount, path: str, rest: str, exc: VaultPermissionError) -> VaultError:
    """A read under a known mount that the token's policies refuse."""
    news = [e for e in exc.errors if e.strip().lower() != "permission denied"]
    said = f" (Vault says: {'; '.join(news)})" if news else ""
    fixed = _without_api_segment(mount.path, rest) if mount.version == 2 else None
    if fixed is not None:
        fix = (
            f"Drop {rest.split('/', 1)[0]}/ from the path: read '{fixed}'. Paths are written "
            "as `vault kv get` takes them; the client adds data/ for KV v2 itself."
        )
        return VaultPermissionError(
            f"Permission denied reading {path}{said}: {mount.path} is a KV v2 mount, so the "
            f"client read {mount.path}data/{rest}, which no policy is meant to cover. {fix}",
            status_code=exc.status_code,
            errors=exc.errors,
            fix=fix,
        )
    policy_path = mount.read_path(rest)
    layout = (
        "KV v2 policies name the path with data/ after the mount"
        if mount.version == 2
        else "KV v1 policies name the secret's path as it is, without data/"
    )
    fix = (
        f"Ask your Vault administrator to grant 'read' on {policy_path} to your role's "
        f"policy: {_grant(policy_path)} ({layout})."
    )
    return VaultPermissionError(
        f"Permission denied reading {path} (KV v{mount.version} mount {mount.path}){said}. {fix}",
        status_code=exc.status_code,
        errors=exc.errors,
        fix=fix,
    )


def unknown_mount_denied(
    path: str, first: str, rest: str, denied: Sequence[VaultPermissionError], *, v1_tried: bool
) -> VaultError:
    """Every layout was refused, and so was the mount lookup: Vault will not say whether
    ``first`` is KV v1 or v2, so both policy paths are named, each with its version."""
    exc = denied[0]
    v2_path, v1_path = f"{first}data/{rest}", f"{first}{rest}"
    if not v1_tried:  # a version was asked for: only KV v2 has versions
        fix = f"Ask your Vault administrator to grant 'read' on {v2_path}: {_grant(v2_path)}."
    else:
        fix = (
            f"Ask your Vault administrator to grant 'read' on {v1_path} if {first} is KV "
            f"version 1 ({_grant(v1_path)}), or on {v2_path} if it is version 2 "
            f"({_grant(v2_path)}); `vault secrets list -detailed` shows the version."
        )
    fixed = _without_api_segment(first, rest)
    if fixed is not None:
        segment = rest.split("/", 1)[0]
        fix = f"If {first} is KV v2, drop {segment}/ from the path: read '{fixed}'. {fix}"
    return VaultPermissionError(
        f"Permission denied reading {path}: the token's policies allow nothing under "
        f"{first}, not even looking up whether it is KV version 1 or 2. {fix}",
        status_code=exc.status_code,
        errors=exc.errors,
        fix=fix,
    )


def missing_key(path: str, key: object, secret: Mapping[str, Any]) -> VaultError:
    """The error for a ``key`` that the secret at ``path`` does not have."""
    if not isinstance(key, str):
        return VaultPathError(f"key must be a string naming a field of {path}, not {key!r}.")
    fields = ", ".join(sorted(printable(str(name)) for name in secret)) or "none"
    return VaultSecretNotFoundError(
        f"The secret at {path} has no key {key!r}; its keys are: {fields}."
    )


def not_found(
    mount: Mount,
    path: str,
    rest: str,
    version: int | None,
    exc: VaultSecretNotFoundError,
) -> VaultSecretNotFoundError:
    """Nothing at ``path``: deleted, the mount gone, a ``data/`` written by hand, or absent."""
    if mount.version == 2 and exc.data:
        metadata = exc.data.get("metadata") if isinstance(exc.data, dict) else None
        if isinstance(metadata, dict) and (
            metadata.get("deletion_time") or metadata.get("destroyed")
        ):
            return deleted(path, version, metadata, exc.status_code)
    hint, fix = "", None
    fixed = _without_api_segment(mount.path, rest) if mount.version == 2 else None
    if any("no handler for route" in error for error in exc.errors):
        fix = (
            f"Nothing is mounted at {mount.path} any more: the secrets engine was disabled "
            "or moved; ask your Vault administrator where the secret lives now."
        )
        hint = f" {fix}"
    elif fixed is not None:
        fix = f"Write paths as `vault kv get` takes them, without 'data/': '{fixed}'."
        hint = f" {fix}"
    which = f"version {version} of " if version is not None else ""
    return VaultSecretNotFoundError(
        f"No secret at {which}{path} (KV v{mount.version} mount {mount.path}).{hint} "
        "Check the path, or write it with `vault kv put`.",
        status_code=exc.status_code,
        fix=fix,
    )


def deleted(
    path: str, version: int | None, metadata: Mapping[str, Any], status: int | None
) -> VaultSecretDeletedError:
    """A KV v2 version that was soft-deleted or destroyed."""
    number = metadata.get("version", version)
    which = f"Version {number} of {path}" if number else f"The latest version of {path}"
    if metadata.get("destroyed"):
        return VaultSecretDeletedError(
            f"{which} was destroyed and cannot be recovered; read another version "
            "or write the secret again.",
            status_code=status,
        )
    return VaultSecretDeletedError(
        f"{which} was deleted; restore it with `vault kv undelete -versions={number} "
        f"{path}` or read another version.",
        status_code=status,
    )
