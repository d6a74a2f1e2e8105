"""Shared test setup: a clean environment for every test.

The machine exports REQUESTS_CA_BUNDLE, SSL_CERT_FILE and possibly VAULT_*/SNOWFLAKE_*/
AWS_* variables; none of them may change a result, so each test starts without them.
Tests that need a variable set it with monkeypatch.

HOME points at an empty directory of the session's own: the client falls back to the
Vault CLI's ``~/.vault-token`` (and botocore reads ``~/.aws``), so no test may see, let
alone write, the real ones of the machine. Session fixtures (the servers) are set up
before this per-test fixture runs and keep the real HOME; OpenBao is started with
``-dev-no-store-token`` so it does not write ``~/.vault-token`` either.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Secret hygiene: every test fails if a known secret shows in a log record, a library
# error or a library object's repr (see tests/reliability/hygiene.py).
from tests.reliability.hygiene import _hygiene_hooks, secret_hygiene  # noqa: F401

_PREFIXES = ("VAULT_", "BAO_", "HVAULT_", "SNOWFLAKE_", "GDS_", "AWS_")
_AMBIENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


# Where the Snowflake double's own environment lives: the gds_snowflake.testing plugin
# resolves it once per session and exports it, so commands a test runs find the same one.
_KEEP = ("GDS_SNOWFLAKE_DOUBLE_ENV",)


@pytest.fixture(scope="session")
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home directory for the tests: no ~/.vault-token, no ~/.aws, nothing."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, empty_home: Path) -> Iterator[None]:
    """Remove every variable that could change how the libraries behave."""
    for name in list(os.environ):
        if name in _KEEP:
            continue
        if name.startswith(_PREFIXES) or name in _AMBIENT or name in _PROXIES:
            monkeypatch.delenv(name, raising=False)
    # Every server in the tests is on loopback; no proxy may sit in between.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("HOME", str(empty_home))
    # botocore's credential chain ends with the EC2 instance metadata service, an HTTP
    # call to 169.254.169.254: tests reach nothing beyond loopback.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Nor may the connector probe cloud metadata endpoints (169.254.169.254, ...) at
    # login: 5.x does unless told so here (its platform_detection_timeout_seconds is
    # ignored), 4.x honours this too.
    monkeypatch.setenv("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true")
    yield
    stray = empty_home / ".vault-token"
    if stray.exists():  # a test or a server wrote the shared home's token file
        stray.unlink()
        pytest.fail("~/.vault-token appeared in the tests' shared HOME; use a tmp_path HOME")


@pytest.fixture
def restore_package_loggers():
    """Put the package loggers' level and handlers back after a test configures them
    (configure_logging, or a CLI's -v)."""
    import logging

    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers))
        for name in ("gds_vault", "gds_snowflake")
    }
    yield
    for name, (level, handlers) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).handlers[:] = handlers


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL on loopback (tests/postgres.py), started for the lease tests only."""
    from tests.postgres import PostgresServer

    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def lease_servers_session(openbao, snowflake_double, postgres):
    from tests.postgres import MONITOR_USER, LeaseServers, enable_database_engine

    enable_database_engine(openbao, postgres)
    snowflake_double.accept_postgres_users(postgres.port, monitor_user=MONITOR_USER)
    return LeaseServers(openbao, snowflake_double, postgres)


@pytest.fixture
def leases(lease_servers_session):
    """OpenBao's database engine on a real PostgreSQL, the double taking its users; Vault
    clients made by the test are closed after it."""
    yield lease_servers_session
    lease_servers_session.close_clients()
