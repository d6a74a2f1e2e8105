"""get_snowflake_connection() and SnowflakeConnectionProvider.

Configuration comes from three places, the first that has a value winning:

1. explicit arguments (``warehouse="WH"``, ``role=...``, any connect keyword);
2. environment variables: SNOWFLAKE_VAULT_PATH (the secret path), SNOWFLAKE_ACCOUNT,
   SNOWFLAKE_USER, SNOWFLAKE_ROLE, SNOWFLAKE_WAREHOUSE, SNOWFLAKE_DATABASE,
   SNOWFLAKE_SCHEMA (read when a provider is made, never at import);
3. the fields of the Vault secret.

Passwords, keys and tokens come only from Vault. A path whose read gives a lease (Vault's
database secrets engine, ``database/creds/<role>``) is handed to ``_lease``, which renews
the lease while connections use it and replaces the credentials before they die; the
user is then the lease's, whatever ``user``/SNOWFLAKE_USER say.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gds_snowflake._classify import errno_of, is_credential_rejection, is_transient_login_failure
from gds_snowflake._connection import VaultSnowflakeConnection
from gds_snowflake._connector import adapt_connect_arguments, ensure_usable_here
from gds_snowflake._credentials import (
    CredentialStore,
    SecretLayout,
    SnowflakeCredentials,
    store_for,
)
from gds_snowflake._errors import SnowflakeAuthenticationError, SnowflakeConfigError
from gds_snowflake._lease import LeaseHolder, holder_for
from gds_snowflake._tokens import rejection_advice

if TYPE_CHECKING:
    from gds_vault import Lease, RetryPolicy, VaultClient

logger = logging.getLogger(__name__)

PATH_VARIABLE = "SNOWFLAKE_VAULT_PATH"
PARAMETER_VARIABLES = {
    "account": "SNOWFLAKE_ACCOUNT",
    "user": "SNOWFLAKE_USER",
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
    "database": "SNOWFLAKE_DATABASE",
    "schema": "SNOWFLAKE_SCHEMA",
}
# Credentials must come from Vault; passing them here would defeat the purpose.
_FORBIDDEN_KWARGS = ("password", "private_key", "private_key_file", "private_key_file_pwd", "token")


def _default_connect(**kwargs: Any) -> Any:
    import snowflake.connector  # heavy; imported on first connection

    return snowflake.connector.connect(**kwargs)


class SnowflakeConnectionProvider:
    """Hands out Snowflake connections whose credentials come from one Vault secret.

    Safe to share between threads; many connections cost one Vault login and, while the
    secret is cached, no Vault reads.

    Args:
        secret_path: The Vault secret, e.g. "secret/snowflake/etl" (default:
            SNOWFLAKE_VAULT_PATH).
        vault_client: The Vault client; None means the process-wide default client
            (gds_vault.get_default_client()), shared with get_secret_from_vault.
        account, user, role, warehouse, database, schema: Override the secret's fields.
        layout: Field names in the secret, if they differ from the defaults.
        retry: Policy for transient login failures and the deadline of each connect
            and login, Vault reads included (default: the Vault client's).
        connect: The function that opens a raw connection (default
            snowflake.connector.connect); tests and wrappers may pass another.
        environ: Where to read SNOWFLAKE_* variables (default os.environ).
        revoke_on_close: For a leased path (``database/creds/<role>``): use a lease of
            this provider's own and revoke it at :meth:`close`, so that Vault drops the
            user at once instead of when the lease runs out. Close the provider after
            its connections: their sessions end with the user. Default False (leases
            are shared by the providers of one Vault client and run out by themselves).
        **connect_kwargs: Anything else snowflake.connector.connect accepts
            (login_timeout, session_parameters, autocommit, ...).

    Raises:
        SnowflakeConfigError: No secret path, or a credential passed as an argument.
    """

    def __init__(
        self,
        secret_path: str | None = None,
        *,
        vault_client: VaultClient | None = None,
        account: str | None = None,
        user: str | None = None,
        role: str | None = None,
        warehouse: str | None = None,
        database: str | None = None,
        schema: str | None = None,
        layout: SecretLayout | None = None,
        retry: RetryPolicy | None = None,
        connect: Callable[..., Any] | None = None,
        environ: Mapping[str, str] | None = None,
        revoke_on_close: bool = False,
        **connect_kwargs: Any,
    ) -> None:
        env = os.environ if environ is None else environ
        path = secret_path or env.get(PATH_VARIABLE, "").strip() or None
        if not path:
            raise SnowflakeConfigError(
                f"No Vault secret path: pass it (get_snowflake_connection('secret/snowflake/etl')) "
                f"or set {PATH_VARIABLE}."
            )
        forbidden = [name for name in _FORBIDDEN_KWARGS if name in connect_kwargs]
        if forbidden:
            raise SnowflakeConfigError(
                f"{', '.join(forbidden)} must come from the Vault secret, not from arguments; "
                f"store it in {path}."
            )
        explicit = {
            "account": account,
            "user": user,
            "role": role,
            "warehouse": warehouse,
            "database": database,
            "schema": schema,
        }
        self.overrides: dict[str, Any] = {}
        for name, value in explicit.items():
            chosen = (
                value
                if value is not None
                else (env.get(PARAMETER_VARIABLES[name], "").strip() or None)
            )
            if chosen is not None:
                self.overrides[name] = chosen
        self.secret_path = path
        self.layout = layout or SecretLayout()
        self.connect_kwargs = dict(connect_kwargs)
        self._vault_client = vault_client
        self._retry = retry
        self._connect = connect or _default_connect
        self.revoke_on_close = revoke_on_close
        self._own_lease: LeaseHolder | None = None  # with revoke_on_close
        self._lease_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SnowflakeConnectionProvider(secret_path={self.secret_path!r}, "
            f"overrides={self.overrides!r})"
        )

    @property
    def vault_client(self) -> VaultClient:
        if self._vault_client is not None:
            return self._vault_client
        from gds_vault import get_default_client

        return get_default_client()

    def _policy(self) -> RetryPolicy:
        return self._retry or self.vault_client.settings.retry

    def _store(self) -> CredentialStore:
        return store_for(self.vault_client, self.layout)

    def credentials(self) -> SnowflakeCredentials:
        """The parsed credentials (from the Vault cache when fresh, or the current lease)."""
        return self._current_credentials(self._store())

    # -- leased paths (see gds_snowflake._lease) -----------------------------------------
    def lease_holder(self, lease: Lease | None = None) -> LeaseHolder | None:
        """The holder of this provider's lease, or None while the path is not known to be
        leased (a KV secret, or not read yet). ``lease``: one just read, to hold."""
        client = self.vault_client
        if self.revoke_on_close and self._own_lease is None:
            with self._lease_lock:
                if self._own_lease is None:
                    self._own_lease = LeaseHolder(client, self.secret_path, shared=False)
        return holder_for(client, self.secret_path, own=self._own_lease, lease=lease)

    def _current_credentials(self, store: CredentialStore) -> SnowflakeCredentials:
        from gds_vault import Lease, VaultLeasedSecretError

        holder = self.lease_holder()
        if holder is not None:
            return holder.credentials()
        try:
            return store.get(self.secret_path)
        except VaultLeasedSecretError as exc:
            if not isinstance(exc.lease, Lease):
                raise
            holder = self.lease_holder(exc.lease)
            assert holder is not None
            return holder.credentials()

    def _fresh_credentials(
        self, store: CredentialStore, rejected: SnowflakeCredentials
    ) -> SnowflakeCredentials:
        holder = self.lease_holder()
        if holder is not None:
            return holder.after_rejection(rejected)
        return store.refresh(self.secret_path)

    def close(self) -> None:
        """With ``revoke_on_close``, revoke this provider's lease (Vault drops the user).

        Idempotent; a no-op for KV secrets and shared leases. Connections it made stay
        open, but a leased user's sessions end when Vault drops the user.
        """
        holder, self._own_lease = self._own_lease, None
        if holder is not None:
            holder.revoke()

    def __enter__(self) -> SnowflakeConnectionProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect_arguments(self, credentials: SnowflakeCredentials, **extra: Any) -> dict[str, Any]:
        """The keyword arguments for snowflake.connector.connect, credentials included.

        They are adapted to the installed connector line (``_connector``): whole numbers
        where it wants them, the logout behaviour set where 5.x would warn otherwise.
        """
        kwargs = credentials.connect_kwargs()
        kwargs.update(self.overrides)
        kwargs.update(self.connect_kwargs)
        kwargs.update(extra)
        holder = self.lease_holder()
        if holder is not None:  # the lease made this user: no other name can log in with it
            kwargs["user"] = credentials.user
        # The connector keeps the session_parameters dict it is given and writes into it
        # (AUTOCOMMIT, TIMEZONE, the server's values): each login gets its own copy, or
        # the next login (after an expiry, or the next connection) would send those back.
        if isinstance(kwargs.get("session_parameters"), Mapping):
            kwargs["session_parameters"] = dict(kwargs["session_parameters"])
        if not kwargs.get("account"):
            raise SnowflakeConfigError(
                f"No Snowflake account: add an 'account' field to {self.secret_path}, set "
                "SNOWFLAKE_ACCOUNT, or pass account=."
            )
        return adapt_connect_arguments(kwargs)

    def connect(self, **extra: Any) -> VaultSnowflakeConnection:
        """Open a connection that re-authenticates when its session or credentials expire.

        Raises:
            SnowflakeAuthenticationError: Snowflake rejected the credentials, also after
                reading them again from Vault.
            SnowflakeSecretError / PrivateKeyError: The secret is incomplete or its key
                cannot be used.
            VaultError: Vault could not be read.
        """
        autocommit = {**self.connect_kwargs, **extra}.get("autocommit")

        def open_raw() -> Any:
            return self.open_raw(**extra)

        # One deadline for the Vault reads and the Snowflake login together.
        with self._policy().operation("snowflake.connect"):
            user = self.overrides.get("user", self.credentials().user)
            return VaultSnowflakeConnection(
                open_raw,
                describe=f"user {user} from secret {self.secret_path}",
                autocommit=autocommit,
            )

    def open_raw(self, **extra: Any) -> Any:
        """A plain snowflake.connector connection logged in with credentials from Vault.

        Rejected credentials are read from Vault once more (as in :meth:`connect`), but the
        connection does not log in again later by itself: this is for pools, such as
        SQLAlchemy's, that replace dead connections themselves.

        A login is one operation of the retry policy: its Vault reads, its retries of
        transient failures and the connector's own login retries end by one deadline
        (joined to that of :meth:`connect` when called from it).
        """
        with self._policy().operation("snowflake.login"):
            return self._open_with_fresh_credentials(self._store(), extra)

    def _login(self, credentials: SnowflakeCredentials, extra: Mapping[str, Any]) -> Any:
        ensure_usable_here()
        kwargs = self.connect_arguments(credentials, **extra)

        def attempt() -> Any:
            return self._connect(**_within_deadline(kwargs))

        return self._policy().call("snowflake.login", attempt, retry_if=is_transient_login_failure)

    def _open_with_fresh_credentials(self, store: CredentialStore, extra: Mapping[str, Any]) -> Any:
        """Log in with cached credentials; if Snowflake rejects them, read Vault once more.

        At most one fresh Vault read and two login attempts, so revoked credentials
        cannot lock the user out by repeated failures.
        """
        credentials = self._current_credentials(store)
        try:
            connection = self._login(credentials, extra)
        except Exception as exc:
            if not is_credential_rejection(exc):
                raise
            fresh = self._fresh_credentials(store, credentials)
            if fresh == credentials:
                raise self._rejected(credentials, exc) from None
            logger.info(
                "Snowflake rejected the credentials of user %s; read a new version from %s, "
                "logging in again",
                credentials.user,
                self.secret_path,
            )
            try:
                connection = self._login(fresh, extra)
            except Exception as again:
                if is_credential_rejection(again):
                    raise self._rejected(fresh, again) from None
                raise
            credentials = fresh
        holder = self.lease_holder()
        if holder is not None:
            holder.track(connection)  # the lease is renewed while this connection is open
        logger.info(
            "Connected to Snowflake as %s (%s) with credentials from %s",
            self.overrides.get("user", credentials.user),
            credentials.method,
            self.secret_path,
        )
        return connection

    def _rejected(
        self, credentials: SnowflakeCredentials, exc: BaseException
    ) -> SnowflakeAuthenticationError:
        errno = getattr(exc, "errno", None)
        said = str(getattr(exc, "msg", "") or "").strip()
        user = self.overrides.get("user", credentials.user)
        if credentials.token_kind is not None:
            advice = rejection_advice(
                credentials.token_kind, errno_of(exc), user=user, path=self.secret_path
            )
        else:
            advice = (
                "Update the secret in Vault with the user's current password or key (and for "
                "key pair, check that the user's RSA_PUBLIC_KEY matches), or ask an "
                "administrator whether the user is disabled or locked."
            )
        return SnowflakeAuthenticationError(
            f"Snowflake rejected the {credentials.method} credentials of user {user} "
            f"(errno {errno}: {said or 'no message'}), also after reading "
            f"{self.secret_path} from Vault again. {advice} No further attempts were made, "
            "to avoid locking the account.",
            cause=exc,
        )


def _within_deadline(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The connect arguments, with the connector's login_timeout (how long it retries a
    login by itself, 120 s by default) cut to what is left of the operation's deadline,
    unless the caller chose one."""
    from gds_vault.retry import time_left  # gds_vault is imported on first use

    left = time_left()
    if left is None or kwargs.get("login_timeout") is not None:
        return kwargs
    return {**kwargs, "login_timeout": max(1, math.ceil(left))}


def get_snowflake_connection(
    secret_path: str | None = None,
    *,
    vault_client: VaultClient | None = None,
    account: str | None = None,
    user: str | None = None,
    role: str | None = None,
    warehouse: str | None = None,
    database: str | None = None,
    schema: str | None = None,
    **connect_kwargs: Any,
) -> VaultSnowflakeConnection:
    """Open a Snowflake connection with credentials read from Vault.

    Args:
        secret_path: The Vault secret (default: SNOWFLAKE_VAULT_PATH).
        vault_client: A VaultClient; None means the process-wide default client.
        account, user, role, warehouse, database, schema: Override the secret's fields
            (and the SNOWFLAKE_* variables).
        **connect_kwargs: Passed to snowflake.connector.connect.

    Returns:
        A connection that behaves like snowflake.connector's and logs in again, re-running
        the failed statement, when the session expires or the credentials rotate.

    Raises:
        SnowflakeConfigError, SnowflakeSecretError, PrivateKeyError,
        SnowflakeAuthenticationError, gds_vault.VaultError: See SnowflakeConnectionProvider.
    """
    provider = SnowflakeConnectionProvider(
        secret_path,
        vault_client=vault_client,
        account=account,
        user=user,
        role=role,
        warehouse=warehouse,
        database=database,
        schema=schema,
        **connect_kwargs,
    )
    return provider.connect()
