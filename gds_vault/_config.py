"""Client settings: validated once, built from arguments or from VAULT_* variables."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gds_vault import _env
from gds_vault._auth import AuthMethod
from gds_vault._auth.environment import auth_from_env
from gds_vault._errors import VaultConfigError
from gds_vault._printable import NOT_PRINTABLE_ASCII, is_printable_ascii
from gds_vault.retry import RetryPolicy

DEFAULT_TIMEOUT = 10.0  # seconds for each HTTP call (connect and read)
DEFAULT_CACHE_TTL = 300.0  # seconds a secret stays cached; 0 disables the cache


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSettings:
    """Everything a VaultClient is configured with, checked in ``__post_init__``."""

    addr: str
    auth: AuthMethod
    namespace: str | None = None
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_ttl: float = DEFAULT_CACHE_TTL
    token_cache: str | os.PathLike[str] | None = None  # a directory; kept as an absolute str
    revoke_on_close: bool = False  # revoke the token this client logged in with at close()

    def __post_init__(self) -> None:
        object.__setattr__(self, "addr", _env.normalise_addr(self.addr, source="addr"))
        if not isinstance(self.auth, AuthMethod):
            raise VaultConfigError(
                "auth must be an auth method such as AppRoleAuth(role_id, secret_id), "
                "TokenAuth(token) or JWTAuth(role, jwt_file=...); "
                "or use VaultClient.from_env() to choose one from VAULT_* variables."
            )
        _check_seconds("timeout", self.timeout, allow_zero=False)
        _check_seconds("cache_ttl", self.cache_ttl, allow_zero=True)
        if not isinstance(self.retry, RetryPolicy):
            raise VaultConfigError("retry must be a RetryPolicy.")
        if not isinstance(self.verify, bool | str):
            raise VaultConfigError(
                "verify must be True, False, or a path to a CA file or directory."
            )
        _check_client_cert(self.cert)
        if self.auth.requires_client_cert and self.cert is None:
            raise VaultConfigError(
                f"{self.auth.name} auth logs in with the client certificate: set "
                "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (or pass cert=(certificate, key))."
            )
        if self.namespace is not None and not isinstance(self.namespace, str):
            raise VaultConfigError("namespace must be a string such as 'team-a'.")
        if self.namespace is not None:
            object.__setattr__(self, "namespace", self.namespace.strip().strip("/") or None)
        if self.namespace is not None and not is_printable_ascii(self.namespace):
            # Sent as the X-Vault-Namespace header; never echoed (it may be a paste).
            raise VaultConfigError(f"The Vault namespace (VAULT_NAMESPACE) {NOT_PRINTABLE_ASCII}.")
        object.__setattr__(self, "token_cache", _token_cache_dir(self.token_cache))
        if not isinstance(self.revoke_on_close, bool):
            raise VaultConfigError("revoke_on_close must be True or False.")
        if self.revoke_on_close and self.token_cache is not None:
            raise VaultConfigError(
                "revoke_on_close cannot be combined with a token cache (token_cache, "
                "GDS_VAULT_TOKEN_CACHE): the token is shared with other processes, and "
                "revoking it would log them all out. Use one or the other."
            )


def _token_cache_dir(value: object) -> str | None:
    """The token cache directory as an absolute path (a later chdir must not move it)."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise VaultConfigError(
            "token_cache must be a directory path (or None to turn the cache off), "
            f"not {type(value).__name__}."
        )
    text = os.fspath(value).strip()
    return os.path.abspath(os.path.expanduser(text)) if text else None


def _check_client_cert(cert: object) -> None:
    """A client certificate (and key) that cannot work is a config error now, not an
    OSError or a TLS failure blamed on the CA at the first request."""
    if cert is None:
        return
    if isinstance(cert, str):
        cert_file, key_file = cert, None
    elif isinstance(cert, tuple) and len(cert) == 2 and all(isinstance(p, str) for p in cert):
        cert_file, key_file = cert
    else:
        raise VaultConfigError("cert must be a file path or a (certificate, key) pair of paths.")
    for path, variable in ((cert_file, "VAULT_CLIENT_CERT"), (key_file, "VAULT_CLIENT_KEY")):
        if path is not None and not os.path.isfile(path):
            raise VaultConfigError(
                f"The client certificate file {path!r} does not exist; check {variable}."
            )
    import ssl  # only when a client certificate is configured

    def no_passphrase() -> str:
        # Without this OpenSSL would prompt on the terminal for an encrypted key's passphrase.
        raise VaultConfigError(
            "The client key (VAULT_CLIENT_KEY) is encrypted; give an unencrypted key file."
        )

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert_file, key_file, no_passphrase)
    except ssl.SSLError as exc:
        raise VaultConfigError(
            "The client certificate and key (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY) cannot be "
            "used: both must be PEM files and the key must belong to the certificate "
            f"({exc.reason or type(exc).__name__})."
        ) from None


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise VaultConfigError(f"{name} must be a finite number of seconds {bound}, not {value!r}.")


def verify_from_env(environ: Mapping[str, str]) -> bool | str:
    """VAULT_SKIP_VERIFY, VAULT_CACERT and VAULT_CAPATH as a ``verify`` argument."""
    if _env.read_bool(environ, "VAULT_SKIP_VERIFY"):
        return False
    cacert = _env.read(environ, "VAULT_CACERT")
    capath = _env.read(environ, "VAULT_CAPATH")
    if cacert and capath:
        raise VaultConfigError("Set VAULT_CACERT or VAULT_CAPATH, not both.")
    return cacert or capath or True


def cert_from_env(environ: Mapping[str, str]) -> tuple[str, str] | str | None:
    cert = _env.read(environ, "VAULT_CLIENT_CERT")
    key = _env.read(environ, "VAULT_CLIENT_KEY")
    if key and not cert:
        raise VaultConfigError("VAULT_CLIENT_KEY is set without VAULT_CLIENT_CERT; set both.")
    if cert and key:
        return (cert, key)
    return cert


def _retry_from_env(environ: Mapping[str, str]) -> RetryPolicy | None:
    retries = _env.read_int(environ, "VAULT_MAX_RETRIES", minimum=0)
    return None if retries is None else replace(RetryPolicy(), attempts=retries + 1)


def _cache_ttl_from_env(environ: Mapping[str, str]) -> float | None:
    cache_ttl = environ.get("GDS_VAULT_CACHE_TTL", "").strip()
    if not cache_ttl:
        return None
    try:
        seconds = float(cache_ttl)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise VaultConfigError(
            f"GDS_VAULT_CACHE_TTL={cache_ttl!r} is not a number of seconds >= 0 "
            "(0 disables the cache)."
        )
    return seconds


def settings_from_env(environ: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """VaultClient keyword arguments from the environment, with ``overrides`` on top."""
    allowed = {
        "addr",
        "auth",
        "namespace",
        "verify",
        "cert",
        "timeout",
        "retry",
        "cache_ttl",
        "token_cache",
        "revoke_on_close",
        "clock",
    }
    unknown = set(overrides) - allowed
    if unknown:
        raise VaultConfigError(
            f"Unknown VaultClient.from_env() argument(s): {', '.join(sorted(unknown))}; "
            f"use {', '.join(sorted(allowed))}."
        )
    # Only what no override replaces is read, so a bad variable that an explicit
    # argument replaces (VAULT_CLIENT_TIMEOUT=oops with timeout=5) does not stop the client.
    readers: dict[str, Callable[[Mapping[str, str]], Any]] = {
        "addr": lambda env: _env.normalise_addr(
            _env.read(env, "VAULT_ADDR"), source=_env.source_of(env, "VAULT_ADDR")
        ),
        "auth": auth_from_env,
        "namespace": lambda env: _env.read(env, "VAULT_NAMESPACE"),
        "verify": verify_from_env,
        "cert": cert_from_env,
        "timeout": lambda env: _env.read_seconds(env, "VAULT_CLIENT_TIMEOUT"),
        "retry": _retry_from_env,
        "cache_ttl": _cache_ttl_from_env,
        "token_cache": lambda env: env.get("GDS_VAULT_TOKEN_CACHE", "").strip() or None,
    }
    kwargs: dict[str, Any] = {}
    for name, read in readers.items():
        if name in overrides:
            continue
        value = read(environ)
        if value is not None or name in ("namespace", "cert"):
            kwargs[name] = value
    kwargs.update(overrides)
    return kwargs
