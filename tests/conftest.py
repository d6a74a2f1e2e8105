"""Shared test setup: a clean environment for every test.

The machine exports REQUESTS_CA_BUNDLE, SSL_CERT_FILE and possibly VAULT_*/SNOWFLAKE_*
variables; none of them may change a result, so each test starts without them. Tests
that need a variable set it with monkeypatch.
"""

from __future__ import annotations

import os

import pytest

_PREFIXES = ("VAULT_", "BAO_", "HVAULT_", "SNOWFLAKE_", "GDS_")
_AMBIENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable that could change how the libraries behave."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES) or name in _AMBIENT:
            monkeypatch.delenv(name, raising=False)
