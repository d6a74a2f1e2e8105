"""What Airflow learns about this distribution before it imports any hook.

Airflow calls :func:`get_provider_info` (the ``apache_airflow_provider`` entry point)
while it configures itself, in every scheduler, worker, API server and CLI process, so
this module imports nothing but the standard library: no Airflow, no connector.

The connection form is described here too, declaratively, the way Airflow 3.2+ wants it
(``conn-fields`` and ``ui-field-behaviour``; the UI then never imports the hook). The
hook builds Airflow 2's WTForms widgets from the same :data:`EXTRA_FIELDS`, so the two
forms cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONNECTION_TYPE = "gds_snowflake"
HOOK_CLASS_NAME = "gds_snowflake.airflow.VaultSnowflakeHook"
HOOK_NAME = "Snowflake (credentials from Vault)"
PACKAGE_NAME = "gds-vault-snowflake"  # must equal the distribution's name; Airflow checks
EXTRA_PREFIX = f"extra__{CONNECTION_TYPE}__"  # how connection forms name extra fields


@dataclass(frozen=True, slots=True)
class ExtraField:
    """One field of the connection's ``extra``, as the connection form shows it."""

    name: str
    label: str
    description: str
    placeholder: str
    required: bool = False
    json_type: str = "string"  # JSON schema type of the value in ``extra``

    def conn_field(self) -> dict[str, Any]:
        """The field as Airflow 3's ``conn-fields`` entry."""
        types: str | list[str] = self.json_type if self.required else [self.json_type, "null"]
        return {"label": self.label, "description": self.description, "schema": {"type": types}}


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "secret_path",
        "Vault secret path",
        "Required. The Vault secret holding the Snowflake user and its private key or "
        "password, written as `vault kv` writes it (mount + path). The worker logs in to "
        "Vault with its own VAULT_* environment; no credential is stored in Airflow.",
        "secret/snowflake/etl",
        required=True,
    ),
    ExtraField(
        "account",
        "Account",
        "Optional. Snowflake account identifier (orgname-account or locator.region); "
        "overrides the secret's account field.",
        "myorg-myaccount",
    ),
    ExtraField(
        "warehouse",
        "Warehouse",
        "Optional. Overrides the secret's warehouse field.",
        "ETL_WH",
    ),
    ExtraField("role", "Role", "Optional. Overrides the secret's role field.", "ETL_ROLE"),
    ExtraField(
        "database", "Database", "Optional. Overrides the secret's database field.", "ANALYTICS"
    ),
    ExtraField("schema", "Schema", "Optional. Overrides the secret's schema field.", "PUBLIC"),
    ExtraField(
        "protocol",
        "Protocol",
        "Optional. https (the default) or http, e.g. for a local test server.",
        "https",
    ),
    ExtraField(
        "session_parameters",
        "Session parameters",
        'Optional. A JSON object of Snowflake session parameters, e.g. {"QUERY_TAG": "etl"}.',
        '{"QUERY_TAG": "airflow"}',
        json_type="object",
    ),
)

# Credentials have no place on the form: the user, key and password come from Vault.
HIDDEN_FIELDS = ("login", "password", "schema")
RELABELING = {"host": "Host (optional)", "port": "Port (optional)"}
PLACEHOLDERS = {
    "host": "only for private link or a proxy: myaccount.privatelink.snowflakecomputing.com",
    "port": "443",
}


def ui_field_behaviour() -> dict[str, Any]:
    """Which standard fields the form hides, relabels and fills with placeholders."""
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        # Extra fields carry the prefix: unprefixed, Airflow takes "schema" for the
        # standard field of that name rather than the extra.
        "placeholders": {
            **PLACEHOLDERS,
            **{f"{EXTRA_PREFIX}{field.name}": field.placeholder for field in EXTRA_FIELDS},
        },
    }


def get_provider_info() -> dict[str, Any]:
    """What Airflow reads through the ``apache_airflow_provider`` entry point."""
    behaviour = ui_field_behaviour()
    return {
        "package-name": PACKAGE_NAME,
        "name": "Snowflake with credentials from Vault",
        "description": (
            "A `gds_snowflake` connection type: Snowflake connections whose credentials "
            "are read from HashiCorp Vault or OpenBao when a task runs, and that log in "
            "again when the session expires or the credentials rotate."
        ),
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": HOOK_CLASS_NAME,
                "hook-name": HOOK_NAME,
                "ui-field-behaviour": {
                    "hidden-fields": behaviour["hidden_fields"],
                    "relabeling": behaviour["relabeling"],
                    "placeholders": behaviour["placeholders"],
                },
                "conn-fields": {field.name: field.conn_field() for field in EXTRA_FIELDS},
            }
        ],
    }
