"""The Snowflake double, driven by the real snowflake.connector over loopback HTTP."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import snowflake.connector
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from snowflake.connector.errors import DatabaseError, OperationalError, ProgrammingError

from gds_snowflake.testing._double import SnowflakeDouble, public_key_fingerprint

pytestmark = [
    # duckdb 2.0 warns from fakesnow's cursor, in the double's server threads, on every
    # query; warning filters are process-wide, so -W error would fail those queries.
    pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning:fakesnow"),
    pytest.mark.timeout(60),
]

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_names = itertools.count(1)


def _no_backoff() -> Iterator[int]:
    """A connector backoff policy that retries at once."""
    while True:
        yield 0


def _private_der(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: _PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def snowflake_double() -> Iterator[SnowflakeDouble]:
    """One double for the module: starting one costs a fraction of a second."""
    with SnowflakeDouble() as double:
        yield double


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the connector straight to 127.0.0.1 whatever proxies the machine sets."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def user() -> str:
    """A login name no other test uses, since the double lives for the whole module."""
    return f"user_{next(_names)}"


@pytest.fixture
def connect(snowflake_double: SnowflakeDouble) -> Iterator[Callable[..., Any]]:
    """Connects to the double with the real connector; closes what it opened."""
    opened: list[Any] = []

    def _connect(**kwargs: Any) -> Any:
        conn = snowflake.connector.connect(**{**snowflake_double.connect_kwargs(), **kwargs})
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def _select_one(conn: Any) -> Any:
    with conn.cursor() as cur:
        return cur.execute("select 1").fetchall()


def test_password_login_runs_statements(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """A registered user logs in with its password and runs DDL, DML and queries."""
    snowflake_double.register_user(user, password="s3cret")
    conn = connect(user=user, password="s3cret", database="demo_db", schema="demo")
    with conn.cursor() as cur:
        assert cur.execute("select 1").fetchall() == [(1,)]
        cur.execute("create table if not exists pets (name varchar, legs int)")
        cur.execute("insert into pets values ('cat', 4), ('hen', 2)")
        assert cur.rowcount == 2
        assert cur.execute("select name from pets order by legs").fetchall() == [
            ("hen",),
            ("cat",),
        ]
        # fakesnow passes current_user() to DuckDB, which names itself.
        assert cur.execute("select current_user()").fetchall() == [("duckdb",)]
    assert conn.session_id is not None


def test_wrong_password_is_390100(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """A wrong password fails at once with Snowflake's 390100, not retried."""
    snowflake_double.register_user(user, password="right")
    with pytest.raises(DatabaseError) as info:
        connect(user=user, password="wrong")
    assert info.value.errno == 390100
    assert info.value.sqlstate == "28000"
    assert "Incorrect username or password was specified." in str(info.value)
    assert snowflake_double.failed_login_count(user) == 1


def test_unknown_user_is_390100(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """An unregistered user gets the same 390100 as a wrong password."""
    with pytest.raises(DatabaseError) as info:
        connect(user=user, password="anything")
    assert info.value.errno == 390100


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="rsa-2048"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="ec-p256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
    ],
)
def test_key_pair_login(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    make_key: Callable[[], Any],
) -> None:
    """A JWT signed with the registered key (RS256, ES256, ES384) logs in."""
    key = make_key()
    snowflake_double.register_user(user, public_key=_public_pem(key))
    conn = connect(user=user, private_key=_private_der(key))
    assert _select_one(conn) == [(1,)]
    assert snowflake_double.login_count(user) == 1


def test_wrong_key_is_390144(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
) -> None:
    """A JWT signed with a key the user does not have fails with 390144."""
    snowflake_double.register_user(user, public_key=_public_pem(rsa_key))
    with pytest.raises(DatabaseError) as info:
        connect(user=user, private_key=_private_der(other_rsa_key))
    assert info.value.errno == 390144
    assert "JWT token is invalid." in str(info.value)
    assert snowflake_double.failed_login_count(user) == 1


def test_jwt_for_another_account_is_390144(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """A JWT whose iss and sub name another account is refused even with the right key."""
    snowflake_double.register_user(user, public_key=_public_pem(rsa_key))
    with pytest.raises(DatabaseError) as info:
        connect(user=user, private_key=_private_der(rsa_key), account="elsewhere")
    assert info.value.errno == 390144


def test_jwt_living_over_an_hour_is_390144(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A JWT whose exp is more than an hour after iat is refused, as Snowflake does."""
    snowflake_double.register_user(user, public_key=_public_pem(rsa_key))
    monkeypatch.setenv("JWT_LIFETIME_IN_SECONDS", "7200")
    with pytest.raises(DatabaseError) as info:
        connect(user=user, private_key=_private_der(rsa_key))
    assert info.value.errno == 390144


def test_second_key_slot_and_unset(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
) -> None:
    """Either of two keys logs in, and an unset key is refused from then on."""
    snowflake_double.register_user(user, public_key=rsa_key.public_key())
    snowflake_double.set_public_key(user, _public_pem(other_rsa_key).decode(), slot=2)
    connect(user=user, private_key=_private_der(rsa_key))
    connect(user=user, private_key=_private_der(other_rsa_key))
    snowflake_double.unset_public_key(user, slot=1)
    with pytest.raises(DatabaseError) as info:
        connect(user=user, private_key=_private_der(rsa_key))
    assert info.value.errno == 390144
    connect(user=user, private_key=_private_der(other_rsa_key))


def test_bare_base64_public_key_is_accepted(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """A key given as ALTER USER's RSA_PUBLIC_KEY takes it (base64 DER, no armour) works."""
    armoured = _public_pem(rsa_key).decode()
    bare = "".join(line for line in armoured.splitlines() if "-----" not in line)
    snowflake_double.register_user(user, public_key=bare)
    connect(user=user, private_key=_private_der(rsa_key))


def test_expired_session_raises_390114_and_a_new_login_works(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """After expire_sessions the next execute raises 390114 and a new connection works."""
    snowflake_double.register_user(user, password="pw")
    conn = connect(user=user, password="pw")
    assert _select_one(conn) == [(1,)]
    assert snowflake_double.expire_sessions(user) == 1
    with pytest.raises(ProgrammingError) as info:
        _select_one(conn)
    assert info.value.errno == 390114
    assert info.value.sqlstate == "08001"
    assert "Authentication token has expired." in str(info.value)
    assert conn.expired
    assert _select_one(connect(user=user, password="pw")) == [(1,)]


def test_expiry_leaves_other_users_alone(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """expire_sessions(user) ends only that user's sessions."""
    bystander = f"{user}_bystander"
    snowflake_double.register_user(user, password="pw")
    snowflake_double.register_user(bystander, password="pw")
    mine, theirs = connect(user=user, password="pw"), connect(user=bystander, password="pw")
    snowflake_double.expire_sessions(user)
    assert _select_one(theirs) == [(1,)]
    with pytest.raises(ProgrammingError):
        _select_one(mine)


def test_renewable_expiry_is_invisible_to_the_caller(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """With renewable=True the connector renews with its master token and carries on."""
    snowflake_double.register_user(user, password="pw")
    conn = connect(user=user, password="pw")
    snowflake_double.expire_sessions(user, renewable=True)
    assert _select_one(conn) == [(1,)]
    assert snowflake_double.login_count(user) == 1


def test_dropped_user_cannot_log_in_or_query(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """drop_user refuses new logins and ends the user's open sessions."""
    snowflake_double.register_user(user, password="pw")
    conn = connect(user=user, password="pw")
    snowflake_double.drop_user(user)
    with pytest.raises(ProgrammingError) as info:
        _select_one(conn)
    assert info.value.errno == 390114
    with pytest.raises(DatabaseError) as login:
        connect(user=user, password="pw")
    assert login.value.errno == 390100


def test_password_rotation(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """After set_password the old password fails and the new one works."""
    snowflake_double.register_user(user, password="old")
    connect(user=user, password="old")
    snowflake_double.set_password(user, "new")
    with pytest.raises(DatabaseError) as info:
        connect(user=user, password="old")
    assert info.value.errno == 390100
    assert _select_one(connect(user=user, password="new")) == [(1,)]


def test_transient_login_failures_are_retried_then_exhausted(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """One 503 is retried by the connector; two exhaust its password retries (250001)."""
    snowflake_double.register_user(user, password="pw")
    snowflake_double.fail_next_logins(1)
    connect(user=user, password="pw", backoff_policy=_no_backoff)
    assert snowflake_double.login_count(user) == 1

    snowflake_double.fail_next_logins(2)
    with pytest.raises(OperationalError) as info:
        connect(user=user, password="pw", backoff_policy=_no_backoff)
    assert info.value.errno == 250001
    assert "Could not connect to Snowflake backend after 2 attempt(s)" in str(info.value)
    assert _select_one(connect(user=user, password="pw")) == [(1,)]
    assert snowflake_double.login_count(user) == 2
    assert snowflake_double.failed_login_count(user) == 0


def test_key_pair_logins_retry_longer(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    """Key-pair logins ride out more transient failures (JWT_CNXN_RETRY_ATTEMPTS, 10)."""
    snowflake_double.register_user(user, public_key=_public_pem(rsa_key))
    snowflake_double.fail_next_logins(3, status=502)
    connect(user=user, private_key=_private_der(rsa_key), backoff_policy=_no_backoff)
    assert snowflake_double.login_count(user) == 1


def test_login_counts(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """Successful and refused logins are counted per user, case-insensitively."""
    snowflake_double.register_user(user, password="pw")
    for _ in range(3):
        connect(user=user, password="pw")
    for _ in range(2):
        with pytest.raises(DatabaseError):
            connect(user=user.upper(), password="nope")
    assert snowflake_double.login_count(user) == 3
    assert snowflake_double.failed_login_count(user.upper()) == 2
    assert snowflake_double.login_count("nobody_at_all") == 0


def test_sixteen_threads_log_in_concurrently(snowflake_double: SnowflakeDouble, user: str) -> None:
    """Sixteen threads logging in and querying at once all succeed."""
    snowflake_double.register_user(user, password="pw")

    def login_and_query(_: int) -> Any:
        conn = snowflake.connector.connect(
            user=user, password="pw", **snowflake_double.connect_kwargs()
        )
        try:
            return _select_one(conn)
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(login_and_query, range(16)))
    assert results == [[(1,)]] * 16
    assert snowflake_double.login_count(user) == 16


def test_no_secret_in_repr_or_logs(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the double's repr nor its log lines show a password or a key."""
    password = "hunter2-do-not-log"
    caplog.set_level(logging.DEBUG, logger="gds_snowflake")
    snowflake_double.register_user(user, password=password, public_key=_public_pem(rsa_key))
    connect(user=user, password=password)
    with pytest.raises(DatabaseError):
        connect(user=user, password=password + "x")
    text = repr(snowflake_double) + caplog.text
    assert user.upper() in caplog.text
    assert password not in text
    assert public_key_fingerprint(rsa_key.public_key()) not in text
    assert "127.0.0.1" in repr(snowflake_double)


def test_registry_rejects_misuse(snowflake_double: SnowflakeDouble, user: str) -> None:
    """Duplicate users, unknown users, bad slots and non-keys raise at once."""
    snowflake_double.register_user(user, password="pw")
    with pytest.raises(ValueError, match="already registered"):
        snowflake_double.register_user(user.upper())
    with pytest.raises(KeyError):
        snowflake_double.set_password("no_such_user", "pw")
    with pytest.raises(ValueError, match="slot"):
        snowflake_double.unset_public_key(user, slot=3)
    with pytest.raises(TypeError):
        snowflake_double.set_public_key(user, 12345)
    with pytest.raises(ValueError, match="0 or more"):
        snowflake_double.fail_next_logins(-1)


def test_start_is_quick_and_stop_is_clean() -> None:
    """A second double starts in well under 2 s on its own port, and stops cleanly."""
    double = SnowflakeDouble(account="other")
    with pytest.raises(RuntimeError):
        _ = double.port
    started = time.monotonic()
    with double:
        assert time.monotonic() - started < 2.0
        assert double.running
        assert double.connect_kwargs() == {
            "account": "other",
            "host": "127.0.0.1",
            "port": double.port,
            "protocol": "http",
            "platform_detection_timeout_seconds": 0.0,
        }
        with pytest.raises(RuntimeError, match="already running"):
            double.start()
    assert not double.running
    assert "stopped" in repr(double)
