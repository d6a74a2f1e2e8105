"""What gds_snowflake does differently per connector line (gds_snowflake._connector), and
the error classification cases the double cannot produce (gds_snowflake._classify).

The suite runs on 5.x after the README's dev install and on 4.x in CI's second pass;
these tests hold on both, asking the installed connector what it is.
"""

from __future__ import annotations

import warnings

import pytest
from snowflake.connector import errors

from gds_snowflake import get_snowflake_connection
from gds_snowflake._classify import (
    is_credential_rejection,
    is_parameter_rejection,
    is_session_gone,
    is_transient_login_failure,
)
from gds_snowflake._connector import (
    KEEP_ALIVE_AUTO_DETECTION,
    adapt_connect_arguments,
    integer_parameters,
    known_parameters,
)

from .conftest import CONNECTOR_MAJOR

pytestmark = pytest.mark.timeout(60)


def test_the_installed_line_is_introspected():
    """Parameters and their integer-ness come from the connector itself, on either line."""
    known = known_parameters()
    assert {"account", "user", "login_timeout", "port"} <= known
    assert {"login_timeout", "port"} <= integer_parameters()
    assert (KEEP_ALIVE_AUTO_DETECTION in known) == (CONNECTOR_MAJOR >= 5)


def test_floats_for_integer_parameters_are_rounded_up():
    """30.0 becomes 30 and 0.5 becomes 1 (a timeout is never shortened); ints, bools,
    strings and non-integer parameters pass unchanged; the input is not modified."""
    given = {"login_timeout": 0.5, "port": 8080.0, "account": "a", "autocommit": True}
    adapted = adapt_connect_arguments(given)
    assert adapted["login_timeout"] == 1 and type(adapted["login_timeout"]) is int
    assert adapted["port"] == 8080 and type(adapted["port"]) is int
    assert (adapted["account"], adapted["autocommit"]) == ("a", True)
    assert given["login_timeout"] == 0.5
    assert adapt_connect_arguments({"login_timeout": 30})["login_timeout"] == 30


def test_logout_behaviour_is_set_where_the_connector_knows_it():
    """On 5.x the keep-alive auto-detection is set (True, its default and 4.x's behaviour)
    unless the caller chose; on 4.x, which does not know it, nothing is added."""
    adapted = adapt_connect_arguments({"account": "a"})
    if CONNECTOR_MAJOR >= 5:
        assert adapted[KEEP_ALIVE_AUTO_DETECTION] is True
        chosen = adapt_connect_arguments({KEEP_ALIVE_AUTO_DETECTION: False})
        assert chosen[KEEP_ALIVE_AUTO_DETECTION] is False
    else:
        assert KEEP_ALIVE_AUTO_DETECTION not in adapted


def test_a_connection_raises_no_deprecation_or_future_warning(world):
    """Connect, query, expire, reconnect and close through gds_snowflake: the connector
    line installed warns about nothing (the whole suite also runs with -W error)."""
    user, path = world.user(password="pw-no-warnings")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with get_snowflake_connection(
            path, vault_client=world.client(), login_timeout=10.0, **world.connect_kwargs()
        ) as conn:
            assert conn.cursor().execute("select 1").fetchall() == [(1,)]
            world.snowflake.expire_sessions(user)
            assert conn.cursor().execute("select 2").fetchall() == [(2,)]
    noisy = [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert noisy == []
    assert world.snowflake.login_count(user) == 2


# -- cases no local server produces -------------------------------------------------------


def test_connectors_before_4_7_2_rejections_are_recognised_by_their_text():
    """Before 4.7.2 a rejected password or key came as 250001 with the server's text and
    no sqlstate; that text is the one thing matched (the documented last resort)."""
    old = errors.DatabaseError(
        msg="Failed to connect to DB: acme.snowflakecomputing.com:443. Incorrect username "
        "or password was specified.",
        errno=250001,
    )
    assert is_credential_rejection(old) and not is_transient_login_failure(old)
    plain = errors.OperationalError(msg="Could not connect to Snowflake backend", errno=250001)
    assert is_transient_login_failure(plain) and not is_credential_rejection(plain)


def test_a_rejection_is_never_a_renewal_failure():
    """250001 with sqlstate 08001 is a failed renewal at statement time, unless it says the
    credentials were refused (sqlstate 28000)."""
    renewal = errors.DatabaseError(msg="Failed to refresh session", errno=250001, sqlstate="08001")
    assert is_session_gone(renewal)
    refused = errors.DatabaseError(msg="refused", errno=390100, sqlstate="28000")
    assert is_credential_rejection(refused) and not is_session_gone(refused)


def test_network_errors_without_errno_are_transient_and_argument_errors_are_not():
    """The connector's OperationalError/InterfaceError without an errno (a network error) is
    retried; Python's ValueError/TypeError from converting an argument is not."""
    assert is_transient_login_failure(errors.InterfaceError(msg="connection reset", errno=None))
    for argument_error in (ValueError("invalid literal for int()"), TypeError("not a str")):
        assert is_parameter_rejection(argument_error)
        assert not is_transient_login_failure(argument_error)
