"""From an Airflow connection of type ``gds_snowflake`` to SnowflakeConnectionProvider arguments.

No Airflow import here: the connection is read through the attributes every Airflow
version's ``Connection`` has (``conn_id``, ``host``, ``port``, ``login``, ``password``,
``schema``, ``extra_dejson``), so the rules are testable without Airflow.

The rules:

- ``extra.secret_path`` is required; ``account``, ``warehouse``, ``role``, ``database``,
  ``schema``, ``protocol`` and ``session_parameters`` are optional extras. Extras may
  also carry the ``extra__gds_snowflake__`` prefix that older connection forms wrote.
- ``host`` and ``port``, when set, go to the connector (private link, a proxy, a local
  test server). The standard ``schema`` field is accepted as the Snowflake schema, as
  SnowflakeHook reads it; set it or ``extra.schema``, not two different values.
- No credential lives in the connection: a login, a password or a credential-like extra
  (``password``, ``private_key``, ``token`` ...) is refused with a message saying where
  it belongs. The Snowflake user comes from the Vault secret.
- Hook arguments (``VaultSnowflakeHook(warehouse=...)``, or an operator's
  ``hook_params``) override the connection's values, as SnowflakeHook's do.
- Extras this hook does not know are logged (WARNING) and ignored, keys only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gds_snowflake._errors import SnowflakeConfigError
from gds_snowflake.airflow._provider_info import CONNECTION_TYPE, EXTRA_FIELDS, EXTRA_PREFIX

logger = logging.getLogger(__name__)

KNOWN_EXTRAS = frozenset(f.name for f in EXTRA_FIELDS)
OVERRIDABLE = ("account", "warehouse", "role", "database", "schema")
PROTOCOLS = ("https", "http")
# Extras that DbApiHook itself reads: known to Airflow, so not "unknown" here.
DBAPI_EXTRAS = frozenset(
    {
        "placeholder",
        "insert_statement_format",
        "replace_statement_format",
        "escape_word_format",
        "escape_column_names",
        "sqlalchemy_scheme",
        "dialect",
    }
)
# What a SnowflakeHook connection may carry that must never be in this one.
CREDENTIAL_EXTRAS = frozenset(
    {
        "password",
        "private_key",
        "private_key_content",
        "private_key_file",
        "private_key_file_pwd",
        "private_key_passphrase",
        "token",
        "refresh_token",
        "client_secret",
        "oauth_password",
    }
)


class ConnectionLike(Protocol):
    """What this module reads from ``airflow.models.Connection`` / ``airflow.sdk.Connection``."""

    conn_id: str
    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HookSettings:
    """What one ``gds_snowflake`` connection says; holds no credential."""

    conn_id: str
    secret_path: str
    account: str | None = None
    warehouse: str | None = None
    role: str | None = None
    database: str | None = None
    schema: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    session_parameters: dict[str, Any] | None = field(default=None)

    def provider_arguments(self) -> dict[str, Any]:
        """Keyword arguments for SnowflakeConnectionProvider / get_snowflake_engine.

        ``environ={}``: the connection, not the worker's SNOWFLAKE_* variables, says
        which warehouse, role... to use (VAULT_* still configure the Vault client).
        """
        arguments: dict[str, Any] = {"secret_path": self.secret_path, "environ": {}}
        for name in (*OVERRIDABLE, "host", "port", "protocol"):
            value = getattr(self, name)
            if value is not None:
                arguments[name] = value
        if self.session_parameters is not None:
            arguments["session_parameters"] = dict(self.session_parameters)
        return arguments

    def conn_params(self) -> dict[str, Any]:
        """The credential-free view SnowflakeHook's helpers read (OpenLineage, get_uri).

        Values the connection leaves to the Vault secret are None here.
        """
        return {
            "account": self.account,
            "warehouse": self.warehouse,
            "database": self.database,
            "region": None,
            "role": self.role,
            "schema": self.schema,
            "session_parameters": self.session_parameters,
            "host": self.host,
            "port": self.port,
            "protocol": self.protocol,
        }


def settings_from_connection(
    conn: ConnectionLike, overrides: Mapping[str, Any] | None = None
) -> HookSettings:
    """Read and check a ``gds_snowflake`` connection.

    Args:
        conn: The Airflow connection.
        overrides: Hook arguments (account, warehouse, role, database, schema,
            session_parameters); None values are ignored.

    Returns:
        The settings; no Vault or Snowflake call is made.

    Raises:
        SnowflakeConfigError: No secret path, a credential in the connection, or a
            value of the wrong type.
    """
    conn_id = conn.conn_id
    if conn.password:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r} has a password. A {CONNECTION_TYPE} connection "
            "holds no credential: remove the password from the connection and keep it in "
            "the Vault secret named by extra.secret_path."
        )
    if conn.login:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r} has a login. In a {CONNECTION_TYPE} connection "
            "the Snowflake user comes from the Vault secret's 'user' field: remove the "
            "login from the connection."
        )
    extra = _unprefixed(conn.extra_dejson, conn_id)
    credentials = sorted(CREDENTIAL_EXTRAS & extra.keys())
    if credentials:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r} has {', '.join(credentials)} in its extra. A "
            f"{CONNECTION_TYPE} connection holds no credential: remove them and keep them "
            "in the Vault secret named by extra.secret_path."
        )
    unknown = sorted(extra.keys() - KNOWN_EXTRAS - DBAPI_EXTRAS)
    if unknown:
        logger.warning(
            "Airflow connection %r: ignoring extra fields %s (a %s connection reads %s)",
            conn_id,
            ", ".join(unknown),
            CONNECTION_TYPE,
            ", ".join(f.name for f in EXTRA_FIELDS),
        )
    secret_path = _text(extra, "secret_path", conn_id)
    if secret_path is None:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r} has no secret_path: add the Vault secret "
            f'to its extra, e.g. {{"secret_path": "secret/snowflake/etl"}}.'
        )
    values: dict[str, Any] = {name: _text(extra, name, conn_id) for name in OVERRIDABLE}
    values["schema"] = _schema(values["schema"], conn.schema, conn_id)
    values["session_parameters"] = _session_parameters(extra.get("session_parameters"), conn_id)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    return HookSettings(
        conn_id=conn_id,
        secret_path=secret_path,
        host=(conn.host or "").strip() or None,
        port=_port(conn.port, conn_id),
        protocol=_protocol(_text(extra, "protocol", conn_id), conn_id),
        **values,
    )


def _unprefixed(extra: Mapping[str, Any], conn_id: str) -> dict[str, Any]:
    """Extras without the ``extra__gds_snowflake__`` prefix older forms wrote."""
    result: dict[str, Any] = {}
    for key, value in extra.items():
        name = key[len(EXTRA_PREFIX) :] if key.startswith(EXTRA_PREFIX) else key
        if name in result and result[name] != value:
            raise SnowflakeConfigError(
                f"Airflow connection {conn_id!r} sets {name} twice, as {name} and as "
                f"{EXTRA_PREFIX}{name}, with different values: keep {name} only."
            )
        result[name] = value
    return result


def _text(extra: Mapping[str, Any], name: str, conn_id: str) -> str | None:
    value = extra.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r}: extra.{name} must be text, not "
            f"{type(value).__name__}."
        )
    return value.strip() or None


def _schema(from_extra: str | None, from_field: str | None, conn_id: str) -> str | None:
    from_field = (from_field or "").strip() or None
    if from_extra and from_field and from_extra != from_field:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r} names two schemas, {from_field!r} in its schema "
            f"field and {from_extra!r} in extra.schema: keep one."
        )
    return from_extra or from_field


def _session_parameters(value: Any, conn_id: str) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):  # a text field on the form stores the JSON as text
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SnowflakeConfigError(
                f"Airflow connection {conn_id!r}: extra.session_parameters is not valid "
                f'JSON ({exc.msg}); write an object, e.g. {{"QUERY_TAG": "etl"}}.'
            ) from None
    if not isinstance(value, dict):
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r}: extra.session_parameters must be a JSON "
            f'object, e.g. {{"QUERY_TAG": "etl"}}, not {type(value).__name__}.'
        )
    return value


def _port(value: Any, conn_id: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r}: port must be a number from 1 to 65535, not {value!r}."
        )
    return port


def _protocol(value: str | None, conn_id: str) -> str | None:
    if value is None:
        return None
    protocol = value.lower()
    if protocol not in PROTOCOLS:
        raise SnowflakeConfigError(
            f"Airflow connection {conn_id!r}: extra.protocol must be https or http, not {value!r}."
        )
    return protocol
