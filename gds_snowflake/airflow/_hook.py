"""VaultSnowflakeHook: SnowflakeHook for connections whose credentials live in Vault.

Everything SnowflakeHook and DbApiHook build on ``get_conn()`` works unchanged (``run``,
``get_records``, ``get_first``, ``test_connection``, SQLExecuteQueryOperator...), but the
connection it returns is gds_snowflake's re-authenticating one: the user and its key or
password are read from Vault when the task runs (with the worker's ``VAULT_*``
environment, through the process-wide Vault client), and a session that expires during
a long task is replaced by a new login. ``get_sqlalchemy_engine()`` is
:func:`gds_snowflake.get_snowflake_engine`, so DataFrames (``get_pandas_df``) come through
a pool that takes its credentials from Vault too.

SnowflakeHook's own credential paths (login and password, ``private_key_*`` extras,
OAuth, ``authenticator``) are not used, and the hook refuses arguments that would need
them rather than ignore them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from gds_snowflake._errors import SnowflakeConfigError
from gds_snowflake._provider import SnowflakeConnectionProvider
from gds_snowflake._sqlalchemy import get_snowflake_engine
from gds_snowflake.airflow._provider_info import (
    CONNECTION_TYPE,
    EXTRA_FIELDS,
    HOOK_NAME,
    ui_field_behaviour,
)
from gds_snowflake.airflow._settings import HookSettings, settings_from_connection

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from gds_snowflake._connection import VaultSnowflakeConnection

# SnowflakeHook arguments that choose how to authenticate: here the Vault secret does.
_UNSUPPORTED_ARGUMENTS = {
    "authenticator": "the authentication method follows from the Vault secret's fields",
    "region": "put the region in the account identifier (locator.region)",
    "client_request_mfa_token": "a task cannot answer an MFA prompt",
    "client_store_temporary_credential": "a task cannot open a browser",
}


class VaultSnowflakeHook(SnowflakeHook):
    """A SnowflakeHook whose connections take their credentials from Vault.

    Constructed like SnowflakeHook::

        hook = VaultSnowflakeHook(snowflake_conn_id="sf_vault", warehouse="ETL_WH")
        hook.get_records("select current_user()")

    The Airflow connection is of type ``gds_snowflake``; its extra names the Vault
    secret (``secret_path``, required) and may set ``account``, ``warehouse``, ``role``,
    ``database``, ``schema``, ``protocol`` and ``session_parameters``; its host and
    port, when set, go to the connector. It holds no credential.

    Args:
        snowflake_conn_id: The Airflow connection (default ``gds_snowflake_default``).
        account, warehouse, role, database, schema: Override the connection's values.
        session_parameters: Override the connection's session parameters.
        **kwargs: Other DbApiHook arguments (``log_sql``, ...).

    Raises:
        SnowflakeConfigError: An argument that chooses an authentication method
            (``authenticator``, ``region``, MFA or browser options); and, when the
            connection is first used, a connection with a credential in it or without
            a secret path.
    """

    conn_type = CONNECTION_TYPE
    hook_name = HOOK_NAME
    default_conn_name = "gds_snowflake_default"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refused = [name for name in _UNSUPPORTED_ARGUMENTS if getattr(self, name, None)]
        if refused:
            reasons = "; ".join(f"{name}: {_UNSUPPORTED_ARGUMENTS[name]}" for name in refused)
            raise SnowflakeConfigError(
                f"VaultSnowflakeHook does not take {', '.join(refused)} ({reasons}). "
                "Remove the argument."
            )

    # -- the connection form (Airflow 2; Airflow 3 reads get_provider_info instead) ------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Airflow 2's form fields, built from the same list as Airflow 3's ``conn-fields``."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField
        from wtforms.validators import Optional

        # Optional even for secret_path: Airflow 2's form holds every connection type's
        # extra fields at once, so a required one would block saving any other type.
        return {
            field.name: StringField(
                lazy_gettext(field.label),
                widget=BS3TextFieldWidget(),
                description=field.description,
                validators=[Optional()],
            )
            for field in EXTRA_FIELDS
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Standard fields hidden (login, password, schema), relabelled and with placeholders."""
        return ui_field_behaviour()

    # -- what the connection says -----------------------------------------------------
    @cached_property
    def connection_settings(self) -> HookSettings:
        """The connection's settings, with this hook's arguments on top (no credential)."""
        connection = self.get_connection(self.get_conn_id())
        overrides = {
            "account": self.account,
            "warehouse": self.warehouse,
            "role": self.role,
            "database": self.database,
            "schema": self.schema,
            "session_parameters": self.session_parameters,
        }
        return settings_from_connection(connection, overrides)

    @cached_property
    def snowflake_provider(self) -> SnowflakeConnectionProvider:
        """The gds_snowflake provider behind ``get_conn()``; Vault is the default client."""
        return SnowflakeConnectionProvider(**self.connection_settings.provider_arguments())

    def _get_conn_params(self) -> dict[str, Any]:
        # SnowflakeHook's helpers (OpenLineage, get_uri, the AUTOCOMMIT check) read these;
        # credentials stay in the provider.
        return self.connection_settings.conn_params()

    @cached_property
    def _get_static_conn_params(self) -> dict[str, Any]:
        return self.connection_settings.conn_params()

    # -- connections ------------------------------------------------------------------
    def get_conn(self) -> VaultSnowflakeConnection:
        """A new connection that logs in again when its session expires or the key rotates.

        Raises:
            SnowflakeConfigError: The Airflow connection is unusable (see the class).
            gds_vault.VaultError: Vault could not be read (check the worker's VAULT_*).
            SnowflakeAuthenticationError: Snowflake rejected the secret's credentials.
        """
        return self.snowflake_provider.connect()

    def get_sqlalchemy_engine(self, engine_kwargs: Mapping[str, Any] | None = None) -> Engine:
        """A SQLAlchemy engine whose pooled connections take their credentials from Vault.

        Args:
            engine_kwargs: Passed to ``sqlalchemy.create_engine`` (``pool_pre_ping`` is on
                by default).
        """
        return get_snowflake_engine(
            **self.connection_settings.provider_arguments(), engine_options=engine_kwargs
        )

    def get_snowpark_session(self) -> Any:
        """A Snowpark session on a connection from :meth:`get_conn` (so it logs in again too).

        Unlike SnowflakeHook's, the session gets no Airflow query tag.
        """
        from snowflake.snowpark import Session

        return Session.builder.configs({"connection": self.get_conn()}).create()

    def get_uri(self) -> str:
        """A ``snowflake://`` URI without credentials (account, database, schema, ...)."""
        # snowflake.sqlalchemy.URL insists on an account, which may live in the Vault secret
        # only; Airflow reads this URI for the dialect's name and OpenLineage's namespace.
        params = self._get_conn_params()
        path = "/".join(
            quote(params[name], safe="") for name in ("database", "schema") if params[name]
        )
        query = urlencode({name: params[name] for name in ("warehouse", "role") if params[name]})
        uri = f"snowflake://{quote(params['account'] or '', safe='')}"
        if path:
            uri += f"/{path}"
        return f"{uri}?{query}" if query else uri

    # -- DataFrames through the engine (pandas warns about raw DB-API connections) ------
    def _get_pandas_df(self, sql: Any, parameters: Any = None, **kwargs: Any) -> Any:
        if not _sqlalchemy_2():
            return super()._get_pandas_df(sql, parameters, **kwargs)
        from pandas.io import sql as psql

        engine = self.get_sqlalchemy_engine()
        try:
            return psql.read_sql(sql, con=engine, params=parameters, **kwargs)
        finally:
            engine.dispose()

    def _get_pandas_df_by_chunks(
        self, sql: Any, parameters: Any = None, *, chunksize: int, **kwargs: Any
    ) -> Iterator[Any]:
        if not _sqlalchemy_2():
            yield from super()._get_pandas_df_by_chunks(
                sql, parameters, chunksize=chunksize, **kwargs
            )
            return
        from pandas.io import sql as psql

        engine = self.get_sqlalchemy_engine()
        try:
            yield from psql.read_sql(
                sql, con=engine, params=parameters, chunksize=chunksize, **kwargs
            )
        finally:
            engine.dispose()


def _sqlalchemy_2() -> bool:
    """pandas 2.2+ reads through SQLAlchemy 2 engines only; Airflow 2 pins SQLAlchemy 1.4,
    and there DataFrames go through get_conn() as in DbApiHook (pandas then warns)."""
    import sqlalchemy

    return int(sqlalchemy.__version__.split(".", 1)[0]) >= 2
