"""The public surface changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import gds_snowflake
import gds_vault


def test_gds_vault_all():
    """gds_vault exports exactly these names, and each exists."""
    assert sorted(gds_vault.__all__) == sorted(
        [
            "AWSIAMAuth", "AppRoleAuth", "AuthMethod", "CertAuth", "JWTAuth", "LDAPAuth",
            "Lease", "RedactionFilter", "RetryPolicy", "TokenAuth", "UserpassAuth",
            "TokenStatus", "VaultAuthError", "VaultClient", "VaultClientClosedError", "VaultConfigError",
            "VaultConnectionError", "VaultError", "VaultHealth", "VaultInsecureWarning",
            "VaultInvalidRequestError", "VaultLeaseError", "VaultLeasedSecretError",
            "VaultPathError", "VaultPermissionError",
            "VaultResponseError", "VaultSecretDeletedError", "VaultSecretNotFoundError",
            "VaultStats", "VaultTLSError", "VaultTimeoutError", "VaultUnavailableError", "__version__", "configure_logging",
            "get_default_client", "get_secret_from_vault", "redact", "register_secret",
            "reset_default_client", "set_default_client",
        ]
    )
    for name in gds_vault.__all__:
        assert hasattr(gds_vault, name)


def test_gds_vault_retry_all():
    """The public retry module exports the policy, its predicate and the operation's time left."""
    import gds_vault.retry

    assert sorted(gds_vault.retry.__all__) == ["RetryPolicy", "is_retryable", "time_left"]
    assert gds_vault.retry.RetryPolicy is gds_vault.RetryPolicy


def test_error_tree():
    """Every error is a VaultError, except API misuse which is a RuntimeError."""
    for name in gds_vault.__all__:
        obj = getattr(gds_vault, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and not issubclass(obj, Warning)
            and name != "VaultClientClosedError"
        ):
            assert issubclass(obj, gds_vault.VaultError), name
    assert issubclass(gds_vault.VaultTLSError, gds_vault.VaultConnectionError)
    assert issubclass(gds_vault.VaultClientClosedError, RuntimeError)
    assert not issubclass(gds_vault.VaultClientClosedError, gds_vault.VaultError)


def test_imports_are_cheap():
    """Importing either package imports no HTTP, retry, crypto, connector, SQLAlchemy, pandas
    or Airflow."""
    code = (
        "import sys, gds_vault, gds_snowflake; "
        "heavy = [m for m in ('requests', 'tenacity', 'cryptography', 'snowflake.connector', "
        "'sqlalchemy', 'pandas', 'airflow', 'gds_snowflake.airflow') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gds_snowflake_importable():
    """gds_snowflake imports and declares a public surface."""
    assert hasattr(gds_snowflake, "__all__")
    assert "get_snowflake_engine" in gds_snowflake.__all__
