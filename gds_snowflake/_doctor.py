"""``gds-snowflake doctor``: walk every step a Snowflake connection from Vault needs.

Steps, in order; once one fails, the rest are reported as skipped:

========  ==================================================================================
config    the configuration is complete: which variables are set (names only), auth method
vault     Vault answers ``sys/health`` (unauthenticated): HTTP or TLS, version, sealed?
auth      logging in works: method, token TTL, renewable, policies
secret    the secret is readable and complete: fields present, password or key pair
key       the private key loads: type, bits, encrypted?, SHA256 public-key fingerprint
clock     the local clock agrees with the Date header of Vault's answer (key-pair JWTs
          are rejected when it is off by more than about a minute)
login     Snowflake accepts the credentials (one attempt: no retry that could lock the user)
session   ``select current_user(), current_role(), current_warehouse()``
========  ==================================================================================

Each step's result has a status (``ok``, ``warn``, ``fail``, ``skip``), a detail line and,
for a failure or warning, the fix. Nothing printed ever holds a password, private key,
passphrase, token or secret_id: the steps print field names, never values, and every
line is scrubbed of the credential values the doctor saw (and of token- and PEM-shaped
text) as a second line of defence.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gds_snowflake._classify import errno_of, is_credential_rejection
from gds_snowflake._credentials import SecretLayout
from gds_snowflake._errors import (
    PrivateKeyError,
    PrivateKeyPassphraseError,
    SnowflakeVaultError,
    UnsupportedPrivateKeyError,
)
from gds_snowflake._keys import LoadedKey, load_private_key
from gds_vault import (
    VaultAuthError,
    VaultConfigError,
    VaultError,
    VaultPermissionError,
    VaultSecretNotFoundError,
)
from gds_vault._logging import REDACTED, redact

if TYPE_CHECKING:
    from gds_vault import VaultClient

__all__ = ["CLOCK_LIMIT", "CLOCK_OK", "QUERY", "STEPS", "StepResult", "run_doctor"]

QUERY = "select current_user(), current_role(), current_warehouse()"
CLOCK_OK = 10.0  # seconds of difference from Vault's clock that pass without comment
CLOCK_LIMIT = 60.0  # seconds; beyond this Snowflake rejects key-pair JWTs (iat/exp checks)
MIN_SCRUBBED_LENGTH = 6  # shorter values would mask ordinary words in the output

STEPS = (
    ("config", "Configuration"),
    ("vault", "Vault reachable"),
    ("auth", "Vault login"),
    ("secret", "Secret"),
    ("key", "Private key"),
    ("clock", "Local clock"),
    ("login", "Snowflake login"),
    ("session", "Session"),
)
_VARIABLE_PREFIXES = ("VAULT_", "HVAULT_", "SNOWFLAKE_", "GDS_VAULT_")
_CREDENTIAL_VARIABLES = ("VAULT_TOKEN", "VAULT_SECRET_ID", "HVAULT_TOKEN", "HVAULT_SECRET_ID")


@dataclass(slots=True, kw_only=True)
class StepResult:
    """One step's outcome. ``status`` is "ok", "warn", "fail" or "skip"."""

    step: str
    title: str
    status: str
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool | None:
        """True when it passed (warnings included), False when it failed, None if skipped."""
        return {"ok": True, "warn": True, "fail": False}.get(self.status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "ok": self.ok,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


class _Outcome(Exception):
    """Raised by a step to end it with a status other than ok."""

    def __init__(self, status: str, detail: str, fix: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.fix = status, detail, fix


def _fail(detail: str, fix: str) -> _Outcome:
    return _Outcome("fail", detail, fix)


class _Doctor:
    def __init__(
        self,
        secret_path: str | None,
        *,
        make_client: Callable[[], VaultClient],
        environ: Mapping[str, str],
        snowflake_options: Mapping[str, str],
        connect_kwargs: Mapping[str, Any],
        options_given: Sequence[str],
        connect: Callable[..., Any] | None,
        clock: Callable[[], float],
    ) -> None:
        self.path = secret_path or environ.get("SNOWFLAKE_VAULT_PATH", "").strip() or None
        self.make_client = make_client
        self.environ = environ
        self.snowflake_options: dict[str, Any] = dict(snowflake_options)
        self.connect_kwargs = dict(connect_kwargs)
        self.options_given = list(options_given)
        self.connect = connect
        self.clock = clock
        self.secrets = {environ[n] for n in _CREDENTIAL_VARIABLES if environ.get(n, "").strip()}
        self.client: VaultClient | None = None
        self.server_time: float | None = None
        self.local_time: float | None = None
        self.secret: dict[str, Any] = {}
        self.overrides: dict[str, Any] = {}
        self.user = ""
        self.key: LoadedKey | None = None
        self.connection: Any = None

    # -- running -------------------------------------------------------------------------
    def run(self) -> list[StepResult]:
        results: list[StepResult] = []
        failed = False
        try:
            for step, title in STEPS:
                if failed:
                    results.append(
                        StepResult(
                            step=step,
                            title=title,
                            status="skip",
                            detail="skipped: an earlier step failed",
                        )
                    )
                    continue
                result = self._run_step(step, title)
                results.append(result)
                failed = result.status == "fail"
        finally:
            self._close()
        return results

    def _run_step(self, step: str, title: str) -> StepResult:
        status, fix = "ok", None
        try:
            detail = getattr(self, f"_step_{step}")()
        except _Outcome as outcome:
            status, detail, fix = outcome.status, outcome.detail, outcome.fix
        except VaultError as exc:  # what the step did not single out: Vault failing midway
            status, detail = "fail", str(exc)
            fix = (
                "Vault failed while answering (see the message); retry, and if it persists "
                "check Vault's health (gds-vault login, `vault status`)."
            )
        except SnowflakeVaultError as exc:
            status, detail = "fail", str(exc)
            fix = "Correct the configuration or the secret as the message says."
        except Exception as exc:  # the doctor reports every failure as a step
            status, detail = "fail", f"unexpected {type(exc).__name__}: {exc}"
            fix = "This answer was not expected; run again with -vv and report it with the output."
        return StepResult(
            step=step,
            title=title,
            status=status,
            detail=redact(self._scrub(detail)),
            fix=self._scrub(fix) if fix else None,
        )

    def _scrub(self, text: str) -> str:
        for value in sorted(self.secrets, key=len, reverse=True):
            if len(value) >= MIN_SCRUBBED_LENGTH and value in text:
                text = text.replace(value, REDACTED)
        return text

    def _remember_secret(self, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            return
        self.secrets.add(value)
        self.secrets.add(value.strip())
        # A key's lines, in case any form of it is ever echoed piecemeal.
        self.secrets.update(
            line.strip()
            for line in value.replace("\\n", "\n").splitlines()
            if len(line.strip()) >= 16 and "-----" not in line
        )

    def _close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing a diagnostic session: best effort
                self.connection.close()
        if self.client is not None:
            self.client.close()

    # -- steps ---------------------------------------------------------------------------
    def _step_config(self) -> str:
        names = sorted(
            name
            for name, value in self.environ.items()
            if name.startswith(_VARIABLE_PREFIXES) and str(value).strip()
        )
        found = ", ".join(names) + " set" if names else "no VAULT_* or SNOWFLAKE_* variables set"
        if self.options_given:
            found += "; options " + ", ".join(self.options_given)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.client = self.make_client()
            except VaultConfigError as exc:
                raise _fail(f"{found}; {exc}", self._config_fix(exc)) from None
        auth = self.client.auth
        mount = getattr(auth, "mount", None)
        detail = f"{found}; {auth.name} auth" + (f" at auth/{mount}" if mount else "")
        if not self.path:
            raise _fail(
                f"{detail}; no secret path",
                "Pass the secret's path (gds-snowflake doctor secret/snowflake/etl) or set "
                "SNOWFLAKE_VAULT_PATH.",
            )
        detail += f"; secret {self.path}"
        if caught:
            raise _Outcome("warn", detail, " ".join(str(w.message) for w in caught))
        return detail

    def _config_fix(self, exc: VaultConfigError) -> str:
        has_addr = "--addr" in self.options_given or any(
            self.environ.get(n, "").strip() for n in ("VAULT_ADDR", "HVAULT_ADDR")
        )
        if not has_addr:
            return (
                "Set VAULT_ADDR to your Vault server's address, e.g. "
                "export VAULT_ADDR=https://vault.example.com:8200 (or pass --addr)."
            )
        if str(exc).startswith("No Vault credentials"):
            return (
                "Give the job a Vault identity: VAULT_ROLE_ID and VAULT_SECRET_ID (AppRole), "
                "VAULT_TOKEN or VAULT_TOKEN_FILE (token), or VAULT_JWT_ROLE and VAULT_JWT_FILE "
                "(JWT)."
            )
        return "Correct the setting the message names; README.md, 'Configuration', lists them."

    def _step_vault(self) -> str:
        import requests  # imported on use, as gds_vault does, to keep imports cheap

        from gds_vault._tls import silence_insecure_request_warnings

        client = self.client
        assert client is not None
        addr, verify = client.addr, client.settings.verify
        parts = urlsplit(addr)
        if verify is False:
            silence_insecure_request_warnings(parts.hostname or "")
        # The client's own session: the same TLS settings, client certificate and proxies.
        session = client._transport.session()
        params = {
            "standbyok": "true",
            "perfstandbyok": "true",
            "sealedcode": "200",
            "uninitcode": "200",
            "drsecondarycode": "200",
        }
        before, started = self.clock(), time.perf_counter()
        try:
            response = session.get(
                f"{addr}/v1/sys/health",
                params=params,
                # sys/health lives in the root namespace only.
                headers={"X-Vault-Namespace": None},
                timeout=client.settings.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise _fail(
                f"TLS handshake with {addr} failed ({_reason(exc)})",
                "Set VAULT_CACERT (or --ca-cert) to the CA certificate that signed Vault's "
                "certificate, and check that VAULT_ADDR names a host in that certificate.",
            ) from None
        except requests.exceptions.Timeout:
            raise _fail(
                f"Vault at {addr} did not answer within {client.settings.timeout:g} s",
                "Check that Vault is healthy and reachable from here (firewall, proxy); "
                "raise VAULT_CLIENT_TIMEOUT (or --timeout) for a slow link.",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise _fail(
                f"Could not reach Vault at {addr} ({_reason(exc)})",
                "Check VAULT_ADDR (scheme, host and port) and that Vault is running and "
                "reachable from this machine (firewall, VPN, HTTPS_PROXY/NO_PROXY).",
            ) from None
        elapsed = (time.perf_counter() - started) * 1000
        self.local_time = (before + self.clock()) / 2
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or "sealed" not in body:
            kind = response.headers.get("Content-Type", "").split(";")[0] or "an empty body"
            raise _fail(
                f"{addr}/v1/sys/health answered HTTP {response.status_code} with {kind}, "
                "not Vault's health JSON",
                "VAULT_ADDR must point at Vault itself (scheme, host and port, no path), not "
                "at a web page or a failing proxy or load balancer.",
            )
        self.server_time = _server_time(response.headers.get("Date"), body)
        version = body.get("version") or "unknown version"
        if not body.get("initialized", True):
            raise _fail(
                f"{addr} answered: version {version}, not initialized",
                "An operator must initialize Vault (vault operator init).",
            )
        if body.get("sealed"):
            raise _fail(
                f"{addr} answered: version {version}, sealed",
                "An operator must unseal Vault (vault operator unseal); "
                "nothing can be read until then.",
            )
        role = "standby" if body.get("standby") else "active"
        detail = f"{addr} answered in {elapsed:.0f} ms: version {version}, unsealed, {role}"
        if parts.scheme == "https":
            if verify is False:
                raise _Outcome(
                    "warn",
                    f"{detail}; TLS certificate NOT verified",
                    "Stop skipping verification (VAULT_SKIP_VERIFY / --tls-skip-verify): set "
                    "VAULT_CACERT to Vault's CA certificate instead.",
                )
            trust = "the system CAs" if verify is True else str(verify)
            return f"{detail}; TLS verified against {trust}"
        if parts.hostname in ("127.0.0.1", "localhost", "::1"):
            return f"{detail}; plain HTTP on loopback"
        raise _Outcome(
            "warn",
            f"{detail}; plain HTTP: tokens and secrets cross the network unencrypted",
            "Use an https:// VAULT_ADDR.",
        )

    def _step_auth(self) -> str:
        from gds_vault.cli import duration, token_summary

        client = self.client
        assert client is not None
        try:
            summary = token_summary(client)
        except VaultAuthError as exc:
            raise _fail(str(exc), _auth_fix(client)) from None
        finally:
            token = client._tokens.current()
            if token:
                self.secrets.add(token)
        method = summary["method"] + (f" at auth/{summary['mount']}" if summary["mount"] else "")
        if summary.get("lookup") == "denied":
            raise _Outcome(
                "warn",
                f"logged in with {method}; the token may not look itself up, so its TTL and "
                "policies are unknown",
                "Give the role the 'default' policy (it allows auth/token/lookup-self).",
            )
        ttl = duration(summary["ttl"])
        renewable = "renewable" if summary["renewable"] else "not renewable"
        policies = ", ".join(summary["policies"] + summary["identity_policies"]) or "none"
        return f"logged in with {method}; token TTL {ttl}, {renewable}, policies {policies}"

    def _step_secret(self) -> str:
        from gds_snowflake._provider import SnowflakeConnectionProvider

        client, path = self.client, self.path
        assert client is not None
        assert path is not None
        try:
            self.secret = client.get_secret(path)
        except VaultSecretNotFoundError as exc:
            raise _fail(
                str(exc),
                f"Check the path (mount first, as `vault kv get` takes it, without 'data/'); "
                f"if it is right, the secret must be written: vault kv put {path} account=... "
                "user=... private_key=@rsa_key.p8",
            ) from None
        except VaultPermissionError as exc:
            raise _fail(
                str(exc),
                f"Ask your Vault administrator to grant 'read' on {path} to the role's policy "
                "(for KV v2 the policy path has 'data/' after the mount).",
            ) from None
        layout = SecretLayout()
        for name in (layout.password, layout.private_key, layout.private_key_passphrase):
            self._remember_secret(self.secret.get(name))
        provider = SnowflakeConnectionProvider(
            path, vault_client=client, environ=self.environ, **self.snowflake_options
        )
        self.overrides = provider.overrides
        present = ", ".join(sorted(map(str, self.secret))) or "none"
        where = f"{path} has fields {present}"
        not_text = sorted(
            name
            for name in _field_names(layout)
            if name in self.secret and not isinstance(self.secret[name], str)
        )
        if not_text:
            raise _fail(
                f"{where}; not text: {', '.join(not_text)}",
                f"Store every field as a string (vault kv patch {path} <field>=<value>).",
            )
        user = _text(self.secret, layout.user)
        if user is None:
            raise _fail(
                f"{where}; no {layout.user!r}",
                f"Add the Snowflake user name: vault kv patch {path} user=<USER>",
            )
        password = _text(self.secret, layout.password)
        has_key = _text(self.secret, layout.private_key) is not None
        if password is None and not has_key:
            raise _fail(
                f"{where}; neither {layout.password!r} nor {layout.private_key!r}",
                f"Add a private key (recommended for services): vault kv patch {path} "
                "private_key=@rsa_key.p8 private_key_passphrase=<passphrase>; "
                "or add a 'password' field.",
            )
        account = self.overrides.get("account") or _text(self.secret, layout.account)
        if account is None:
            raise _fail(
                f"{where}; no {layout.account!r}, SNOWFLAKE_ACCOUNT or --account",
                f"Add the account identifier: vault kv patch {path} account=<orgname-account>, "
                "or set SNOWFLAKE_ACCOUNT.",
            )
        self.user = self.overrides.get("user") or user
        method = "key pair" if has_key else "password"
        detail = f"{where}; {method} authentication as user {self.user}, account {account}"
        if has_key and password is not None:
            raise _Outcome(
                "warn",
                f"{detail} (the password field is ignored)",
                f"Once key-pair login works, drop the password from {path} "
                "(vault kv put the secret again without it).",
            )
        return detail

    def _step_key(self) -> str:
        layout = SecretLayout()
        text = _text(self.secret, layout.private_key)
        if text is None:
            raise _Outcome("skip", "not needed: the secret holds a password, not a private key")
        passphrase = _text(self.secret, layout.private_key_passphrase)
        source = f"field {layout.private_key!r} of secret {self.path}"
        try:
            self.key = load_private_key(text, passphrase, source=source)
        except PrivateKeyPassphraseError as exc:
            fix = (
                f"Add the key's passphrase: vault kv patch {self.path} "
                "private_key_passphrase=<passphrase>"
                if passphrase is None
                else f"Correct field 'private_key_passphrase' of {self.path} (stray spaces or a "
                "trailing newline count), or store the key that goes with this passphrase."
            )
            raise _fail(str(exc), fix) from None
        except UnsupportedPrivateKeyError as exc:
            raise _fail(
                str(exc),
                "Convert or replace the key as the message says, then "
                f"store it: vault kv patch {self.path} private_key=@rsa_key.p8",
            ) from None
        except PrivateKeyError as exc:
            raise _fail(
                str(exc),
                "Store the whole private key again: "
                f"vault kv patch {self.path} private_key=@rsa_key.p8",
            ) from None
        key = self.key
        curve = f" ({key.curve})" if key.curve else ""
        state = "encrypted, passphrase accepted" if key.was_encrypted else "not encrypted"
        return (
            f"{key.key_type} {key.key_size} bits{curve}, {state}; public key fingerprint "
            f"{key.public_key_fingerprint} (DESC USER {self.user} must show it as "
            "RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP)"
        )

    def _step_clock(self) -> str:
        if self.server_time is None or self.local_time is None:
            raise _Outcome(
                "warn",
                "not checked: Vault's answer carried no Date header",
                "Compare `date -u` with a trusted clock; keep NTP running.",
            )
        skew = self.local_time - self.server_time
        side = "ahead of" if skew > 0 else "behind"
        detail = f"local clock {abs(skew):.1f} s {side} Vault's"
        if abs(skew) <= CLOCK_OK:
            return detail
        fix = (
            "Synchronise this machine's clock (NTP: `timedatectl set-ntp true`, "
            "`chronyc makestep`), or Vault's if that is the one off. Snowflake rejects "
            f"key-pair JWTs when the clock is off by more than about {CLOCK_LIMIT:.0f} s."
        )
        if abs(skew) > CLOCK_LIMIT and self.key is not None:
            raise _fail(f"{detail}: key-pair login will fail", fix)
        raise _Outcome("warn", detail, fix)

    def _step_login(self) -> str:
        from gds_snowflake._provider import SnowflakeConnectionProvider

        provider = SnowflakeConnectionProvider(
            self.path,
            vault_client=self.client,
            environ=self.environ,
            connect=self.connect,
            **self.snowflake_options,
            **self.connect_kwargs,
        )
        credentials = provider.credentials()  # from the Vault cache: no second read
        kwargs = provider.connect_arguments(credentials)
        connect = self.connect or _connector_connect()
        started = time.perf_counter()
        account = kwargs.get("account")
        try:
            self.connection = connect(**kwargs)
        except Exception as exc:
            raise _fail(_snowflake_error(exc), self._login_fix(exc, account)) from None
        elapsed = (time.perf_counter() - started) * 1000
        where = ""
        if kwargs.get("host"):
            where = f" at {kwargs.get('protocol', 'https')}://{kwargs['host']}"
            where += f":{kwargs['port']}" if kwargs.get("port") else ""
        return (
            f"logged in to account {account}{where} as {kwargs.get('user')} with "
            f"{credentials.method} in {elapsed:.0f} ms"
        )

    def _login_fix(self, exc: BaseException, account: object) -> str:
        user = self.user
        if is_credential_rejection(exc) and self.key is not None:
            return (
                f"Snowflake does not accept this key for user {user}. Run DESC USER {user} in "
                f"Snowflake: RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP must be "
                f"{self.key.public_key_fingerprint}. If neither is, register the key's public "
                f"half: ALTER USER {user} SET RSA_PUBLIC_KEY='<public key>' (from `openssl "
                "rsa -in rsa_key.p8 -pubout`). Also check the account and user name."
            )
        if is_credential_rejection(exc):
            return (
                f"Snowflake rejected the password of user {user}: store the current password "
                f"in {self.path} (or have an administrator reset it), and check that the user "
                "is not locked or disabled and that the account is right."
            )
        return (
            f"Check the account identifier ({account}: the secret's 'account' field, "
            "SNOWFLAKE_ACCOUNT or --account), network access to Snowflake (firewall, proxy: "
            "HTTPS_PROXY/NO_PROXY), and --host/--port if given."
        )

    def _step_session(self) -> str:
        cursor = self.connection.cursor()
        note = ""
        try:
            try:
                row = cursor.execute(QUERY).fetchone()
            except Exception as exc:
                if not _lacks_current_warehouse(exc):
                    raise
                # Some Snowflake stand-ins (the local double: fakesnow on DuckDB) lack it.
                user, role = cursor.execute("select current_user(), current_role()").fetchone()
                row = (user, role, getattr(self.connection, "warehouse", None))
                note = " (this server has no current_warehouse(); warehouse from the login)"
        except Exception as exc:  # reported as the step's failure
            raise _fail(
                _snowflake_error(exc),
                "The login worked but the statement failed: check that the role exists and is "
                "granted to the user, and that the warehouse exists and the role may use it "
                "(GRANT USAGE ON WAREHOUSE ...).",
            ) from None
        finally:
            cursor.close()
        user, role, warehouse = row
        detail = f"{QUERY} -> {user}, {role}, {warehouse or 'no warehouse'}{note}"
        if not warehouse:
            raise _Outcome(
                "warn",
                detail,
                "Statements that need compute fail without a warehouse: pass --warehouse, set "
                "SNOWFLAKE_WAREHOUSE, add a 'warehouse' field to the secret, or set the user's "
                "DEFAULT_WAREHOUSE.",
            )
        return detail


def _field_names(layout: SecretLayout) -> list[str]:
    """The field names a layout uses."""
    return [getattr(layout, f.name) for f in fields(layout)]


def _text(secret: Mapping[str, Any], name: str) -> str | None:
    value = secret.get(name)
    return (value.strip() or None) if isinstance(value, str) else None


def _auth_fix(client: VaultClient) -> str:
    auth = client.auth
    mount = getattr(auth, "mount", auth.name)
    if auth.name == "approle":
        return (
            "Check VAULT_ROLE_ID and VAULT_SECRET_ID: the secret_id may have expired, used up "
            "its uses or been destroyed. Ask your Vault administrator for a new one "
            f"(vault write -f auth/{mount}/role/<role>/secret-id) and update VAULT_SECRET_ID."
        )
    if auth.name == "token":
        return (
            "Get a fresh token (vault login, or restart the Vault Agent) and update "
            "VAULT_TOKEN or the token file."
        )
    return (
        "Check VAULT_JWT_ROLE, that the JWT file holds a current token, and that the role's "
        f"bound claims (issuer, audience, subject) on auth/{mount} match it."
    )


def _lacks_current_warehouse(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "current_warehouse" in text and ("does not exist" in text or "unknown function" in text)


def _snowflake_error(exc: BaseException) -> str:
    errno = errno_of(exc)
    text = str(getattr(exc, "raw_msg", None) or exc).strip() or "no message"
    return f"{type(exc).__name__}" + (f" {errno}" if errno is not None else "") + f": {text}"


def _server_time(date_header: str | None, body: Mapping[str, Any]) -> float | None:
    """Vault's clock: the Date header (to the second; +0.5 s for truncation), else the
    ``server_time_utc`` field of sys/health."""
    if date_header:
        try:
            return parsedate_to_datetime(date_header).timestamp() + 0.5
        except (TypeError, ValueError):
            pass
    server_time = body.get("server_time_utc")
    return float(server_time) + 0.5 if isinstance(server_time, int | float) else None


def _reason(exc: BaseException) -> str:
    inner: BaseException = exc
    while inner.__context__ is not None and inner is not inner.__context__:
        inner = inner.__context__
    text = str(inner).split("\n")[0][:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _connector_connect() -> Callable[..., Any]:
    import snowflake.connector  # heavy: only the login step needs it

    connect: Callable[..., Any] = snowflake.connector.connect
    return connect


def run_doctor(
    secret_path: str | None,
    *,
    make_client: Callable[[], VaultClient],
    environ: Mapping[str, str],
    snowflake_options: Mapping[str, str] | None = None,
    connect_kwargs: Mapping[str, Any] | None = None,
    options_given: Sequence[str] = (),
    connect: Callable[..., Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[StepResult]:
    """Run every step and return one result per step, in order.

    Args:
        secret_path: The Vault secret (default: SNOWFLAKE_VAULT_PATH from ``environ``).
        make_client: Builds the Vault client; a VaultConfigError fails the config step.
        environ: The environment to report on and read SNOWFLAKE_* from.
        snowflake_options: account, user, role, warehouse, database, schema overrides.
        connect_kwargs: More snowflake.connector.connect arguments (host, port, ...).
        options_given: Command-line option names, shown by the config step.
        connect: Opens the Snowflake connection (default snowflake.connector.connect).
        clock: Wall-clock seconds, compared with Vault's Date header. Default time.time.
    """
    return _Doctor(
        secret_path,
        make_client=make_client,
        environ=environ,
        snowflake_options=snowflake_options or {},
        connect_kwargs=connect_kwargs or {},
        options_given=options_given,
        connect=connect,
        clock=clock,
    ).run()
