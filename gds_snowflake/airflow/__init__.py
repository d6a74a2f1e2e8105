"""Airflow integration: the ``gds_snowflake`` connection type and :class:`VaultSnowflakeHook`.

Install with the ``airflow`` extra (``pip install 'gds-vault-snowflake[airflow]'``) on
the workers, the scheduler and the API server. Airflow finds the connection type through
the ``apache_airflow_provider`` entry point (:func:`get_provider_info`); a connection::

    AIRFLOW_CONN_SF_VAULT='{"conn_type": "gds_snowflake",
                            "extra": {"secret_path": "secret/snowflake/etl",
                                      "warehouse": "ETL_WH"}}'

then works with ``SQLExecuteQueryOperator(conn_id="sf_vault", sql=...)`` and
``VaultSnowflakeHook(snowflake_conn_id="sf_vault")``. The workers' ``VAULT_*``
environment says how to log in to Vault; the connection holds no credential.

Importing this package is cheap: the hook (and with it Airflow and the Snowflake
provider) is imported on first access to ``VaultSnowflakeHook``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gds_snowflake.airflow._provider_info import CONNECTION_TYPE, get_provider_info

if TYPE_CHECKING:
    from gds_snowflake.airflow._hook import VaultSnowflakeHook

__all__ = ["CONNECTION_TYPE", "VaultSnowflakeHook", "get_provider_info"]


def __getattr__(name: str) -> Any:
    # Airflow loads get_provider_info while it configures itself; importing the hook
    # (Airflow, the Snowflake provider, pandas...) must wait until someone asks for it.
    if name == "VaultSnowflakeHook":
        try:
            from gds_snowflake.airflow._hook import VaultSnowflakeHook
        except ImportError as missing:
            raise ImportError(
                "VaultSnowflakeHook needs Apache Airflow and its Snowflake provider: "
                f"pip install 'gds-vault-snowflake[airflow]' ({missing})"
            ) from missing
        return VaultSnowflakeHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
