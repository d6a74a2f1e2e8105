"""The Snowflake double for your tests, and users whose secrets live in a throwaway OpenBao.

An opt-in pytest plugin (``pytest_plugins = ["gds_vault.testing",
"gds_snowflake.testing"]``, or ``-p gds_snowflake.testing``), next to
``gds_vault.testing`` (``openbao``, ``openbao_tls``), for projects that install
gds-vault-snowflake with its ``demo`` or ``dev`` extra:

- ``snowflake_double`` (session): a running :class:`SnowflakeDouble`: fakesnow (DuckDB
  behind the real connector's HTTP protocol) behind password, key-pair, programmatic
  access token and OAuth token checks, with
  session expiry, injected login failures and login counts. It runs in a process of its
  own, with connector 4.x, from an environment of its own, so it serves clients on
  either connector line (see ``gds_snowflake.testing._environment``).
- ``snowflake_double_environment`` (session): the interpreter that serves the double,
  its environment built if need be. The plugin builds it after collection, before the
  first test that needs it (about half a minute, once per machine), and puts its
  location in ``GDS_SNOWFLAKE_DOUBLE_ENV`` so commands your tests run find it too.
- ``make_snowflake_user`` (function): a factory. Each call registers a Snowflake user
  with the double, writes its secret to the ``openbao`` server (KV v2), and makes an
  AppRole whose policy reads only that secret. It returns a :class:`SnowflakeTestUser`
  with the job's environment, where the double listens, and rotation and expiry helpers.
  ``make_snowflake_user(kind="pat")`` makes a user who logs in with a programmatic
  access token (``kind="oauth"``: an OAuth access token), with ``rotate_pat()``,
  ``revoke_pat()``, ``refresh_oauth_token()`` and friends (``_token_users``).
  Vault clients it made are closed, and the process-wide default client reset, after
  the test.

Testing a data job end to end, configured the way it is in production::

    def test_daily_load(make_snowflake_user, monkeypatch):
        user = make_snowflake_user(key="rsa", warehouse="ETL_WH")
        user.apply_env(monkeypatch)          # VAULT_ADDR, VAULT_ROLE_ID, VAULT_SECRET_ID,
                                             # SNOWFLAKE_VAULT_PATH
        daily_load.run(**user.connect_kwargs())   # calls get_snowflake_connection()
        user.expire_sessions()                    # the session dies, as after idle hours
        daily_load.run(**user.connect_kwargs())
        assert user.login_count == 2

``connect_kwargs()`` (host, port, protocol) is the one thing the job must let a caller
pass on: nothing in Snowflake's connector or in gds_snowflake reads a host from the
environment, so a job reaches the double only through arguments it forwards to
``get_snowflake_connection(**kwargs)``.

Set ``SNOWFLAKE_DISABLE_PLATFORM_DETECTION=true`` in your tests' environment: connector
5.x otherwise probes cloud metadata endpoints at every login, which ``connect_kwargs()``
cannot switch off.

Importing this module is cheap and needs neither fakesnow nor uvicorn: only the double's
own environment has them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from gds_snowflake.testing._users import (
    SnowflakeTestUser,
    _reset_default_client,
    create_snowflake_user,
)

if TYPE_CHECKING:
    from gds_snowflake.testing._double import SnowflakeDouble
    from gds_vault.testing import OpenBaoServer

__all__ = ["SnowflakeDouble", "SnowflakeTestUser", "create_snowflake_user"]

_build_failures: list[Exception] = []  # a failed build of the double's environment, once


def __getattr__(name: str) -> Any:
    # The double's module is imported only when asked for, to keep plugin loading cheap.
    if name == "SnowflakeDouble":
        from gds_snowflake.testing._double import SnowflakeDouble

        return SnowflakeDouble
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:  # pytest is optional for users of this module's helpers
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def pytest_configure(config: pytest.Config) -> None:
        """Fix where the double's environment lives now, before any test moves HOME.

        The location also goes to GDS_SNOWFLAKE_DOUBLE_ENV, so commands the tests run
        (``gds-snowflake demo``) use the same one; keep that variable if your tests
        clear the environment.
        """
        from gds_snowflake.testing._environment import DoubleEnvironmentError, export_location

        # Not installed (a bare source tree): said when a test needs the double, not here.
        with contextlib.suppress(DoubleEnvironmentError):
            export_location()

    def pytest_collection_finish(session: pytest.Session) -> None:
        """Build the double's environment before the first test that needs it, if needed.

        A first build takes about half a minute; done here, it counts against no test's
        timeout, and it is skipped when no collected test uses the double.
        """
        from gds_snowflake.testing._environment import DoubleEnvironmentError, server_interpreter

        if not any(
            "snowflake_double_environment" in getattr(item, "fixturenames", ())
            for item in session.items
        ):
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")

        def report(line: str) -> None:
            if reporter is not None:
                reporter.write_line(line)

        try:
            server_interpreter(report=report)
        except DoubleEnvironmentError as exc:
            # The tests that need the double fail with this; the others still run.
            _build_failures.append(exc)
            report(f"gds_snowflake.testing: {exc}")

    @pytest.fixture(scope="session")
    def snowflake_double_environment() -> str:
        """The interpreter that serves the double, its environment built if need be.

        Ask for it in a test that starts a double itself (or runs ``gds-snowflake demo``)
        so that the first build happens before the test, not inside its timeout.
        """
        from gds_snowflake.testing._environment import server_interpreter

        if _build_failures:
            raise _build_failures[0]
        return server_interpreter()

    @pytest.fixture(scope="session")
    def snowflake_double(snowflake_double_environment: str) -> Iterator[SnowflakeDouble]:
        """A running Snowflake double (fakesnow behind real auth), shared by the session."""
        from gds_snowflake.testing._double import SnowflakeDouble

        with SnowflakeDouble() as double:
            yield double

    @pytest.fixture
    def make_snowflake_user(
        openbao: OpenBaoServer, snowflake_double: SnowflakeDouble
    ) -> Iterator[Callable[..., SnowflakeTestUser]]:
        """Make Snowflake users whose secrets live in OpenBao (see create_snowflake_user)."""
        made: list[SnowflakeTestUser] = []

        def make(name: str | None = None, **kwargs: Any) -> SnowflakeTestUser:
            user = create_snowflake_user(openbao, snowflake_double, name, **kwargs)
            made.append(user)
            return user

        yield make
        for user in made:
            user.close()
        if any(user._env_applied for user in made):
            _reset_default_client()
