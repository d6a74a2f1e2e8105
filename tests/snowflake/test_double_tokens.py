"""The double's programmatic access tokens and OAuth tokens, through the real connector.

What each connector line raises for a refused token is pinned here (the table in
``gds_snowflake._classify`` quotes it): ``DatabaseError`` with Snowflake's code and
sqlstate 08001 on both lines, classified as a credential rejection, never as transient.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import snowflake.connector
from snowflake.connector.errors import DatabaseError

from gds_snowflake._classify import is_credential_rejection, is_transient_login_failure
from gds_snowflake._connector import adapt_connect_arguments
from gds_snowflake.testing._double import SnowflakeDouble

pytestmark = pytest.mark.timeout(60)

_names = itertools.count()
PAT = "PROGRAMMATIC_ACCESS_TOKEN"


@pytest.fixture
def user(snowflake_double: SnowflakeDouble) -> str:
    """A registered login name no other test uses, without a password."""
    name = f"token_user_{next(_names)}"
    snowflake_double.register_user(name)
    return name


@pytest.fixture
def connect(snowflake_double: SnowflakeDouble) -> Iterator[Callable[..., Any]]:
    """Connects to the double with the real connector; closes what it opened."""
    opened: list[Any] = []

    def _connect(**kwargs: Any) -> Any:
        arguments = {**snowflake_double.connect_kwargs(), "login_timeout": 20, **kwargs}
        conn = snowflake.connector.connect(**adapt_connect_arguments(arguments))
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def _select_one(conn: Any) -> Any:
    with conn.cursor() as cur:
        return cur.execute("select 1").fetchall()


def _refused(connect: Callable[..., Any], **kwargs: Any) -> DatabaseError:
    with pytest.raises(DatabaseError) as info:
        connect(**kwargs)
    error = info.value
    assert type(error) is DatabaseError
    assert is_credential_rejection(error)
    assert not is_transient_login_failure(error)
    return error


@pytest.mark.parametrize("authenticator", [PAT, "programmatic_access_token"])
def test_pat_logs_in(snowflake_double, connect, user, authenticator):
    """A PAT the double issued logs in with authenticator PROGRAMMATIC_ACCESS_TOKEN (any case)."""
    token = snowflake_double.add_pat(user)
    conn = connect(user=user, authenticator=authenticator, token=token)
    assert _select_one(conn) == [(1,)]
    assert snowflake_double.login_count(user) == 1


def test_pat_works_as_the_password(snowflake_double, connect, user):
    """As in Snowflake, a PAT is accepted in place of the password."""
    token = snowflake_double.add_pat(user)
    assert _select_one(connect(user=user, password=token)) == [(1,)]


def test_oauth_token_logs_in(snowflake_double, connect, user):
    """An OAuth access token the double issued logs in with authenticator oauth."""
    token = snowflake_double.issue_oauth_token(user)
    assert token.startswith("ver:1-hint:")
    assert _select_one(connect(user=user, authenticator="oauth", token=token)) == [(1,)]


@pytest.mark.parametrize("fault", ["unknown", "rotated", "revoked", "expired", "other-user"])
def test_refused_pat_is_394400(snowflake_double, connect, user, fault):
    """A PAT that is unknown, rotated away, removed, expired or another user's fails at
    once with 394400 / 08001 "Programmatic access token is invalid."."""
    token = snowflake_double.add_pat(user)
    login_as = user
    if fault == "unknown":
        token = "not-a-token-" + token[:8]
    elif fault == "rotated":
        snowflake_double.rotate_pat(user)
    elif fault == "revoked":
        assert snowflake_double.revoke_pat(user) == 1
    elif fault == "expired":
        assert snowflake_double.expire_pat(user) == 1
    else:
        login_as = f"token_user_{next(_names)}"
        snowflake_double.register_user(login_as)
    error = _refused(connect, user=login_as, authenticator=PAT, token=token)
    assert (error.errno, error.sqlstate) == (394400, "08001")
    assert "Programmatic access token is invalid." in str(error)
    assert token not in str(error)
    assert snowflake_double.failed_login_count(login_as) == 1


def test_rotation_with_grace_keeps_both_until_revoked(snowflake_double, connect, user):
    """rotate_pat(keep_old=True) leaves the old value valid beside the new one (Snowflake's
    EXPIRE_ROTATED_TOKEN_AFTER_HOURS); revoke_pat removes both."""
    old = snowflake_double.add_pat(user, "etl")
    new = snowflake_double.rotate_pat(user, "ETL", keep_old=True)
    for token in (old, new):
        assert _select_one(connect(user=user, authenticator=PAT, token=token)) == [(1,)]
    assert snowflake_double.revoke_pat(user, "etl") == 2
    _refused(connect, user=user, authenticator=PAT, token=new)


def test_rotation_without_grace_leaves_only_the_new_value(snowflake_double, connect, user):
    """A plain rotation after a keep_old one: only the newest value works (the earlier
    grace period ends too), as after EXPIRE_ROTATED_TOKEN_AFTER_HOURS = 0."""
    first = snowflake_double.add_pat(user)
    second = snowflake_double.rotate_pat(user, keep_old=True)
    third = snowflake_double.rotate_pat(user)
    for gone in (first, second):
        _refused(connect, user=user, authenticator=PAT, token=gone)
    assert _select_one(connect(user=user, authenticator=PAT, token=third)) == [(1,)]


@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        ("unknown", 390303, "Invalid OAuth access token."),
        ("revoked", 390303, "Invalid OAuth access token."),
        ("expired", 390318, "OAuth access token expired."),
    ],
)
def test_refused_oauth_token(snowflake_double, connect, user, fault, code, message):
    """An unknown or revoked OAuth token fails with 390303, an expired one with 390318
    (sqlstate 08001 both); neither connector line tries to renew a token given to it."""
    token = snowflake_double.issue_oauth_token(user)
    if fault == "unknown":
        token = "ver:1-hint:0-not-issued"
    elif fault == "revoked":
        assert snowflake_double.revoke_oauth_tokens(user) == 1
    else:
        assert snowflake_double.expire_oauth_tokens(user) == 1
    error = _refused(connect, user=user, authenticator="oauth", token=token)
    assert (error.errno, error.sqlstate) == (code, "08001")
    assert message in str(error)
    assert snowflake_double.failed_login_count(user) == 1


def test_a_pat_is_not_an_oauth_token(snowflake_double, connect, user):
    """Each kind is checked against its own tokens: a PAT sent as OAuth is refused."""
    token = snowflake_double.add_pat(user)
    assert _refused(connect, user=user, authenticator="oauth", token=token).errno == 390303


def test_token_control_errors(snowflake_double, user):
    """The control API says what is wrong: a PAT name taken, a PAT or user that does not
    exist; counts say what changed."""
    snowflake_double.add_pat(user, "one")
    with pytest.raises(ValueError, match="already has a pat token named 'ONE'"):
        snowflake_double.add_pat(user, "One")
    with pytest.raises(KeyError, match="no pat token named 'TWO'"):
        snowflake_double.rotate_pat(user, "two")
    with pytest.raises(KeyError, match="no user 'nobody_here'"):
        snowflake_double.add_pat("nobody_here")
    assert snowflake_double.revoke_pat(user, "two") == 0
    assert snowflake_double.expire_pat(user, None) == 1
    assert snowflake_double.expire_oauth_tokens(user) == 0


def test_dropping_the_user_drops_its_tokens(snowflake_double, connect, user):
    """A dropped user's PAT stops working, and a user made again under the name has none."""
    token = snowflake_double.add_pat(user)
    snowflake_double.drop_user(user)
    snowflake_double.register_user(user)
    _refused(connect, user=user, authenticator=PAT, token=token)
