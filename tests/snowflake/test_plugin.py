"""gds_snowflake.testing: the pytest plugin users get (snowflake_double, make_snowflake_user)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import gds_snowflake.testing
from gds_snowflake import get_snowflake_connection
from gds_snowflake.testing._double import SnowflakeDouble
from gds_vault import VaultPermissionError

pytestmark = pytest.mark.timeout(60)


def _one(conn) -> object:
    return conn.cursor().execute("select 1").fetchall()


def test_plugin_is_opt_in(pytestconfig):
    """The plugins load because the suite asks (-p), as users opt in; installing registers none."""
    from importlib.metadata import entry_points

    assert pytestconfig.pluginmanager.get_plugin("gds_snowflake.testing") is gds_snowflake.testing
    assert not [ep for ep in entry_points(group="pytest11") if ep.value.startswith("gds_")]


def test_public_surface():
    """gds_snowflake.testing exports exactly these names, and each exists."""
    assert sorted(gds_snowflake.testing.__all__) == [
        "SnowflakeDouble", "SnowflakeTestUser", "create_snowflake_user",
    ]
    for name in gds_snowflake.testing.__all__:
        assert getattr(gds_snowflake.testing, name) is not None


def test_project_tests_use_the_plugins_double(snowflake_double, request):
    """The project's own tests get snowflake_double from the plugin, not from a conftest."""
    from tests.snowflake import conftest

    assert isinstance(snowflake_double, SnowflakeDouble)
    assert snowflake_double.running
    assert not hasattr(conftest, "snowflake_double")
    [definition] = request._fixturemanager.getfixturedefs("snowflake_double", request.node)
    assert definition.func.__module__ == "gds_snowflake.testing"


def test_import_is_cheap_and_needs_no_demo_extra():
    """Importing the plugin loads neither the double's servers nor the connector; needs neither."""
    code = textwrap.dedent(
        """
        import sys
        for missing in ("fakesnow", "uvicorn", "starlette"):
            sys.modules[missing] = None  # as if the demo extra were not installed
        import gds_snowflake.testing as t
        heavy = ("fakesnow", "uvicorn", "snowflake.connector", "cryptography", "requests",
                 "sqlalchemy", "pandas", "gds_snowflake.testing._double")
        print(sorted(m for m in heavy if sys.modules.get(m) is not None))
        print(t.SnowflakeDouble.__name__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "SnowflakeDouble"]


def test_password_user_connects(make_snowflake_user):
    """A password user's secret is in OpenBao and its AppRole reads it: the connection works."""
    user = make_snowflake_user(warehouse="TEST_WH")
    with user.connect() as conn:
        assert _one(conn) == [(1,)]
    assert user.login_count == 1
    assert user.secret["warehouse"] == "TEST_WH"
    assert user.secret_path == f"secret/snowflake/{user.name.lower()}"


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_key_pair_user_connects(make_snowflake_user, key):
    """A key-pair user (RSA or EC, encrypted PEM) logs in with the key from Vault."""
    user = make_snowflake_user(key=key, passphrase="test-passphrase")
    with user.connect() as conn:
        assert _one(conn) == [(1,)]
    assert "password" not in user.secret
    assert "ENCRYPTED" in user.secret["private_key"]


def test_repr_shows_no_credentials(make_snowflake_user):
    """The user's repr names it and its path, never its password, secret_id or key."""
    user = make_snowflake_user(password="pw-repr-check-123")
    text = repr(user)
    assert user.name in text
    assert user.secret_path in text
    for secret in ("pw-repr-check-123", user.secret_id, user.role_id):
        assert secret not in text


def test_policy_reads_only_the_users_secret(make_snowflake_user):
    """Each user's AppRole reads its own secret and no other (least privilege, as in production)."""
    alice, bob = make_snowflake_user(), make_snowflake_user()
    assert alice.vault_client.get_secret(alice.secret_path)["user"] == alice.name
    with pytest.raises(VaultPermissionError):
        alice.vault_client.get_secret(bob.secret_path)


def test_apply_env_drives_the_default_client(make_snowflake_user, monkeypatch):
    """With apply_env, get_snowflake_connection() without path or client works as in production."""
    user = make_snowflake_user()
    user.apply_env(monkeypatch)
    with get_snowflake_connection(**user.connect_kwargs()) as conn:
        assert _one(conn) == [(1,)]
    assert user.env()["SNOWFLAKE_VAULT_PATH"] == user.secret_path


def test_rotate_password_and_expiry(make_snowflake_user):
    """rotate_password changes Snowflake, then Vault; after expiry the connection uses it."""
    user = make_snowflake_user()
    conn = user.connect()
    _one(conn)
    user.rotate_password()
    assert user.expire_sessions() == 1
    assert _one(conn) == [(1,)]
    assert (user.login_count, user.failed_login_count) == (2, 1)
    conn.close()


def test_rotate_key_with_and_without_overlap(make_snowflake_user):
    """rotate_key(keep_old=True) leaves the old key valid; by default the old key stops working."""
    user = make_snowflake_user(key="rsa")
    old_client = user.new_vault_client(cache_ttl=300)
    old_conn = get_snowflake_connection(
        user.secret_path, vault_client=old_client, **user.connect_kwargs()
    )
    user.rotate_key(keep_old=True)
    user.expire_sessions()
    assert _one(old_conn) == [(1,)]  # the cached old key still works during the overlap
    assert user.failed_login_count == 0
    user.rotate_key()
    user.expire_sessions()
    assert _one(old_conn) == [(1,)]  # rejected once, then the new key is read from Vault
    assert user.failed_login_count == 1
    old_conn.close()


def test_pat_user_rotation_and_revocation(make_snowflake_user):
    """make_snowflake_user(kind="pat") logs in with a PAT from Vault; rotate_pat changes
    Snowflake then Vault (refused once, Vault read again); revoke_pat leaves Vault stale."""
    from gds_snowflake import SnowflakeAuthenticationError

    user = make_snowflake_user(kind="pat")
    assert (user.token_kind, "password" in user.secret) == ("pat", False)
    conn = user.connect()
    assert _one(conn) == [(1,)]
    old = user.token
    assert user.rotate_pat() != old
    assert user.token != old
    user.expire_sessions()
    assert _one(conn) == [(1,)]
    assert (user.login_count, user.failed_login_count) == (2, 1)
    user.revoke_pat()
    user.expire_sessions()
    with pytest.raises(SnowflakeAuthenticationError, match="programmatic access token"):
        _one(conn)
    conn.close()
    assert old not in repr(user) and user.token not in repr(user)


def test_oauth_user_refresh_and_expiry(make_snowflake_user):
    """kind="oauth" stores the token with authenticator: oauth; refresh_oauth_token is what
    the token's refresher does; expire_oauth_token leaves Vault stale."""
    from gds_snowflake import SnowflakeAuthenticationError

    user = make_snowflake_user(kind="oauth")
    assert user.secret["authenticator"] == "oauth"
    assert user.token_kind == "oauth"
    with user.connect() as conn:
        assert _one(conn) == [(1,)]
    user.refresh_oauth_token()
    with user.connect() as conn:  # the Vault cache holds the old token: refused, read again
        assert _one(conn) == [(1,)]
    assert user.failed_login_count == 1
    user.expire_oauth_token()
    user.vault_client.invalidate(user.secret_path)
    with pytest.raises(SnowflakeAuthenticationError, match="errno 390318"):
        user.connect()
    with pytest.raises(ValueError, match="does not log in with a pat token"):
        user.rotate_pat()


def test_kind_key_and_unknown_kind(make_snowflake_user):
    """kind="key" makes an RSA key-pair user; an unknown kind is a ValueError naming the kinds."""
    user = make_snowflake_user(kind="key")
    assert "private_key" in user.secret and "password" not in user.secret
    assert user.token_kind is None
    with pytest.raises(ValueError, match="password, key, pat, oauth"):
        make_snowflake_user(kind="saml")


USER_TEST_FILE = '''
"""What a team writes: its job, tested end to end with the plugin's fixtures only."""
from gds_snowflake import get_snowflake_connection


def daily_count(**connect_kwargs):
    with get_snowflake_connection(**connect_kwargs) as conn:
        cur = conn.cursor()
        cur.execute("create or replace table plugin_user_orders (id int)")
        cur.execute("insert into plugin_user_orders values (1), (2)")
        return cur.execute("select count(*) from plugin_user_orders").fetchone()[0]


def test_daily_count(make_snowflake_user, monkeypatch):
    user = make_snowflake_user(key="rsa", database="ANALYTICS", schema="PUBLIC")
    user.apply_env(monkeypatch)
    assert daily_count(**user.connect_kwargs()) == 2
    user.rotate_key()
    assert daily_count(**user.connect_kwargs()) == 2
    assert user.login_count == 2 and user.failed_login_count == 1
'''


def test_a_users_test_file_runs_with_only_the_plugin(tmp_path):
    """A user's test file gets its fixtures once a conftest opts in to the plugins, not before."""
    (tmp_path / "test_user_job.py").write_text(USER_TEST_FILE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    without = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=50,
    )
    assert "fixture 'make_snowflake_user' not found" in without.stdout
    (tmp_path / "conftest.py").write_text(
        'pytest_plugins = ["gds_vault.testing", "gds_snowflake.testing"]\n'
    )
    # Warnings as errors, and nothing to ignore: the double's warnings stay in its process.
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=50,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
