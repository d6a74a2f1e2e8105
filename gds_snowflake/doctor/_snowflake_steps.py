"""The Snowflake-side ``gds-snowflake doctor`` steps: key, clock, login and session.

``key`` loads the private key as the runtime does (``SecretFields.load_key``; skipped
for a password); ``clock``
compares the local clock with Vault's, as a key-pair JWT fails when it is off; ``login``
connects once with the credentials the provider builds (no retry that could lock the
user); ``session`` runs :data:`QUERY` and checks that the warehouse, database and schema
asked for are the ones in effect.

Why the last check: Snowflake logs a user in even when the warehouse (or database, or
schema) named at login does not exist or the role may not use it; the session then simply
has none, and the job fails at its first statement that needs it. ``current_warehouse()``
is NULL then. A server without ``current_warehouse()`` is not Snowflake itself (the local
double, fakesnow on DuckDB, which accepts any name and creates databases on demand): the
step says that it could not verify them, as a warning, rather than pass them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gds_snowflake._classify import errno_of, is_credential_rejection, is_parameter_rejection
from gds_snowflake._errors import (
    PrivateKeyError,
    PrivateKeyPassphraseError,
    UnsupportedPrivateKeyError,
)
from gds_snowflake._tokens import rejection_advice
from gds_snowflake.doctor._base import DoctorState, Outcome, fail

__all__ = ["CLOCK_LIMIT", "CLOCK_OK", "QUERY", "SnowflakeSteps"]

QUERY = "select current_user(), current_role(), current_warehouse()"
CONTEXT_QUERY = "select current_database(), current_schema()"
_CONTEXT = ("warehouse", "database", "schema")  # what a login names but may not get
CLOCK_OK = 10.0  # seconds of difference from Vault's clock that pass without comment
CLOCK_LIMIT = 60.0  # seconds; beyond this Snowflake rejects key-pair JWTs (iat/exp checks)


class SnowflakeSteps(DoctorState):
    """Steps key, clock, login and session."""

    def _step_key(self) -> str:
        fields = self.fields
        if fields is None or fields.private_key is None:
            method = fields.method if fields is not None else "no usable credential"
            raise Outcome("skip", f"not needed: the login uses a {method}, not a private key")
        try:
            key = fields.load_key()  # the runtime's loading: its checks, its messages
        except PrivateKeyPassphraseError as exc:
            fix = (
                f"Add the key's passphrase: vault kv patch {self.path} "
                "private_key_passphrase=<passphrase>"
                if fields.private_key_passphrase is None
                else f"Correct field 'private_key_passphrase' of {self.path} (stray spaces or a "
                "trailing newline count), or store the key that goes with this passphrase."
            )
            raise fail(str(exc), fix) from None
        except UnsupportedPrivateKeyError as exc:
            raise fail(
                str(exc),
                "Convert or replace the key as the message says, then "
                f"store it: vault kv patch {self.path} private_key=@rsa_key.p8",
            ) from None
        except PrivateKeyError as exc:
            raise fail(
                str(exc),
                "Store the whole private key again: "
                f"vault kv patch {self.path} private_key=@rsa_key.p8",
            ) from None
        assert key is not None  # the secret holds a key (checked above)
        self.key = key
        curve = f" ({key.curve})" if key.curve else ""
        state = "encrypted, passphrase accepted" if key.was_encrypted else "not encrypted"
        return (
            f"{key.key_type} {key.key_size} bits{curve}, {state}; public key fingerprint "
            f"{key.public_key_fingerprint} (DESC USER {self.user} must show it as "
            "RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP)"
        )

    def _step_clock(self) -> str:
        if self.server_time is None or self.local_time is None:
            raise Outcome(
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
            raise fail(f"{detail}: key-pair login will fail", fix)
        raise Outcome("warn", detail, fix)

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
        self.asked = {name: kwargs[name] for name in _CONTEXT if kwargs.get(name)}
        try:
            self.connection = connect(**kwargs)
        except Exception as exc:
            raise fail(_snowflake_error(exc), self._login_fix(exc, account)) from None
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
        if is_parameter_rejection(exc):
            return (
                "The Snowflake connector refused a connection argument before contacting "
                "Snowflake (see the message for which and why): correct that option "
                "(--login-timeout, --host, --port, --protocol, --role, --warehouse, ...), "
                "the SNOWFLAKE_* variable or the secret's field that sets it."
            )
        if is_credential_rejection(exc) and self.key is not None:
            return (
                f"Snowflake does not accept this key for user {user}. Run DESC USER {user} in "
                f"Snowflake: RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP must be "
                f"{self.key.public_key_fingerprint}. If neither is, register the key's public "
                f"half: ALTER USER {user} SET RSA_PUBLIC_KEY='<public key>' (from `openssl "
                "rsa -in rsa_key.p8 -pubout`). Also check the account and user name."
            )
        token_kind = self.fields.token_kind if self.fields is not None else None
        if is_credential_rejection(exc) and token_kind is not None:
            return rejection_advice(token_kind, errno_of(exc), user=user, path=str(self.path))
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
        try:
            try:
                row = cursor.execute(QUERY).fetchone()
                verified = True
            except Exception as exc:
                if not _lacks_current_warehouse(exc):
                    raise
                user, role = cursor.execute("select current_user(), current_role()").fetchone()
                row = (user, role, getattr(self.connection, "warehouse", None))
                verified = False
            user, role, warehouse = row
            in_effect: dict[str, Any] = {"warehouse": warehouse}
            if "database" in self.asked or "schema" in self.asked:
                in_effect["database"], in_effect["schema"] = cursor.execute(
                    CONTEXT_QUERY
                ).fetchone()
        except Exception as exc:  # reported as the step's failure
            raise fail(
                _snowflake_error(exc),
                "The login worked but the statement failed: check that the role exists and is "
                "granted to the user, and that the warehouse exists and the role may use it "
                "(GRANT USAGE ON WAREHOUSE ...).",
            ) from None
        finally:
            cursor.close()
        detail = f"{QUERY} -> {user}, {role}, {warehouse or 'no warehouse'}"
        if not verified:
            self._context_unverified(detail)
            detail += " (this server has no current_warehouse(); warehouse from the login)"
        for name in _CONTEXT:
            asked = self.asked.get(name)
            if asked and not _same_identifier(str(asked), in_effect.get(name)):
                raise self._not_in_effect(detail, name, str(asked), in_effect.get(name), role)
        if not warehouse:
            raise Outcome(
                "warn",
                detail,
                "Statements that need compute fail without a warehouse: pass --warehouse, set "
                "SNOWFLAKE_WAREHOUSE, add a 'warehouse' field to the secret, or set the user's "
                "DEFAULT_WAREHOUSE.",
            )
        checked = [name for name in _CONTEXT if name in self.asked]
        if checked:
            detail += f"; {', '.join(checked)} as asked"
        return detail

    def _context_unverified(self, detail: str) -> None:
        """Against a server without current_warehouse() (not Snowflake itself): a warning
        that what was asked for could not be checked, if anything was."""
        asked = ", ".join(f"{name} {value}" for name, value in self.asked.items())
        if not asked:
            return
        raise Outcome(
            "warn",
            f"{detail}; {asked} NOT verified: this server has no current_warehouse(), so it "
            "is not Snowflake itself (the local Snowflake double accepts any warehouse, "
            "database and schema)",
            "Nothing to fix here; against Snowflake itself the doctor checks that the "
            "warehouse, database and schema asked for exist and the role may use them.",
        )

    def _not_in_effect(
        self, detail: str, name: str, asked: str, actual: object, role: object
    ) -> Outcome:
        origin = self._origin_of(name)
        grant = {
            "warehouse": f"GRANT USAGE ON WAREHOUSE {asked} TO ROLE {role}",
            "database": f"GRANT USAGE ON DATABASE {asked} TO ROLE {role}",
            "schema": f"GRANT USAGE ON SCHEMA {asked} TO ROLE {role}",
        }[name]
        have = f"the session has {actual}" if actual else f"the session has no {name}"
        return fail(
            f"{detail}; the {name} asked for, {asked} ({origin}), is not in effect: {have}",
            f"Snowflake logs in anyway when the {name} does not exist or role {role} may not "
            f"use it. Check the name (SHOW {name.upper()}S LIKE '{asked.strip(chr(34))}'; it "
            f"comes from {origin}) and, if it exists, have an administrator run {grant}.",
        )

    def _origin_of(self, name: str) -> str:
        if self.snowflake_options.get(name):
            return f"--{name}"
        if self.environ.get(f"SNOWFLAKE_{name.upper()}", "").strip():
            return f"SNOWFLAKE_{name.upper()}"
        if self.connect_kwargs.get(name):
            return f"the connect argument {name}="
        return f"the secret's {name!r} field"


def _same_identifier(asked: str, actual: object) -> bool:
    """Whether ``actual`` (as current_warehouse() and kin return it) is the object ``asked``
    names: a quoted identifier exactly, an unquoted one as Snowflake folds it (upper case)."""
    if not isinstance(actual, str) or not actual:
        return False
    if len(asked) > 1 and asked.startswith('"') and asked.endswith('"'):
        return asked[1:-1] == actual
    return asked.upper() == actual.upper()


def _lacks_current_warehouse(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "current_warehouse" in text and ("does not exist" in text or "unknown function" in text)


def _snowflake_error(exc: BaseException) -> str:
    errno = errno_of(exc)
    text = str(getattr(exc, "raw_msg", None) or exc).strip() or "no message"
    return f"{type(exc).__name__}" + (f" {errno}" if errno is not None else "") + f": {text}"


def _connector_connect() -> Callable[..., Any]:
    import snowflake.connector  # heavy: only the login step needs it

    connect: Callable[..., Any] = snowflake.connector.connect
    return connect
