"""Session parameters passed to a connection survive its logins unchanged."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(60)


def test_logins_do_not_write_into_the_callers_session_parameters(make_snowflake_user):
    """The connector writes into the session_parameters dict it gets; the caller's dict (and
    so the next login's, after an expiry) stays as given."""
    user = make_snowflake_user()
    params = {"QUERY_TAG": "nightly-etl"}
    conn = user.connect(session_parameters=params)
    assert conn.cursor().execute("select 1").fetchall() == [(1,)]
    assert params == {"QUERY_TAG": "nightly-etl"}
    assert user.expire_sessions() >= 1
    assert conn.cursor().execute("select 2").fetchall() == [(2,)]
    assert conn.reconnects == 1
    assert params == {"QUERY_TAG": "nightly-etl"}
    conn.close()
