"""The Snowflake double, driven by the real snowflake.connector over loopback HTTP.

Every test runs on the connector line installed (5.x after the README's dev install,
4.x in CI's second pass); where the two lines answer differently, the expectation is
looked up by line, and the table in gds_snowflake/_classify.py says the same.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from snowflake.connector.errors import DatabaseError, OperationalError

from gds_snowflake._classify import (
    is_credential_rejection,
    is_session_gone,
    is_transient_login_failure,
)
from gds_snowflake._connector import adapt_connect_arguments, known_parameters
from gds_snowflake.testing._double import (
    SnowflakeDouble,
    public_key_fingerprint,
)
from gds_snowflake.testing._environment import (
    ENV_VARIABLE,
    DoubleEnvironmentError,
    _build,
    environment_location,
    requirements,
)

from .conftest import CONNECTOR_MAJOR, expired_statement_errno

pytestmark = pytest.mark.timeout(60)

_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_names = itertools.count(1)

# How many login attempts the connector makes by itself when the server answers 5xx
# (4.x: MAX_CON_RETRY_ATTEMPTS=1 retry for a password, JWT_CNXN_RETRY_ATTEMPTS=10 for a
# key pair; 5.x: retry_max_attempts=6 for every request), and what it raises after them.
CONNECTOR_LOGIN_ATTEMPTS = {
    4: {"password": 2, "key pair": 11},
    5: {"password": 6, "key pair": 6},
}[CONNECTOR_MAJOR]
EXHAUSTED_LOGIN_ERROR = {4: OperationalError, 5: DatabaseError}[CONNECTOR_MAJOR]


def _no_backoff() -> Iterator[int]:
    """A connector 4.x backoff policy that retries at once."""
    while True:
        yield 0


def _immediate_retries() -> dict[str, Any]:
    """The connector's own login retries, as many as by default, without waiting."""
    if "backoff_policy" in known_parameters():
        return {"backoff_policy": _no_backoff}
    return {"retry_backoff_base_ms": 1, "retry_backoff_cap_ms": 1}


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
def snowflake_double(snowflake_double_environment: str) -> Iterator[SnowflakeDouble]:
    """One double for the module (its own process, so its settings are this module's)."""
    with SnowflakeDouble() as double:
        yield double


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
    """Connects to the double with the real connector; closes what it opened.

    The arguments go through gds_snowflake's adaptation to the connector line (the
    logout setting 5.x warns without), so these tests run under ``-W error`` too.
    """
    opened: list[Any] = []

    def _connect(**kwargs: Any) -> Any:
        conn = snowflake.connector.connect(
            **adapt_connect_arguments({**snowflake_double.connect_kwargs(), **kwargs})
        )
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def _select_one(conn: Any) -> Any:
    with conn.cursor() as cur:
        return cur.execute("select 1").fetchall()


# -- logins ------------------------------------------------------------------------------


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


@pytest.mark.parametrize("registered", [True, False], ids=["wrong-password", "unknown-user"])
def test_refused_password_is_390100(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str, registered: bool
) -> None:
    """A wrong password, or a user that does not exist, fails at once with 390100 / 28000."""
    if registered:
        snowflake_double.register_user(user, password="right")
    with pytest.raises(DatabaseError) as info:
        connect(user=user, password="wrong")
    assert type(info.value) is DatabaseError
    assert (info.value.errno, info.value.sqlstate) == (390100, "28000")
    assert "Incorrect username or password was specified." in str(info.value)
    assert is_credential_rejection(info.value) and not is_transient_login_failure(info.value)
    assert snowflake_double.failed_login_count(user) == 1


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="rsa-2048"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="ec-p256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP521R1()), id="ec-p521"),
    ],
)
def test_key_pair_login(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    make_key: Callable[[], Any],
) -> None:
    """A JWT the connector signs with the registered key (RS256, ES256/384/512) logs in."""
    key = make_key()
    snowflake_double.register_user(user, public_key=_public_pem(key))
    conn = connect(user=user, private_key=_private_der(key))
    assert _select_one(conn) == [(1,)]
    assert snowflake_double.login_count(user) == 1


def _long_lived_jwt(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Have the connector sign JWTs valid for 2 hours (4.x: a variable; 5.x: jwt_timeout)."""
    if "jwt_timeout" in known_parameters():
        return {"jwt_timeout": 7200}
    monkeypatch.setenv("JWT_LIFETIME_IN_SECONDS", "7200")
    return {}


@pytest.mark.parametrize("refusal", ["other-key", "other-account", "lifetime-over-an-hour"])
def test_refused_key_pair_is_390144(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    """A JWT signed by a key the user lacks, naming another account, or living over an
    hour (as Snowflake refuses) fails with 390144 / 28000."""
    snowflake_double.register_user(user, public_key=_public_pem(rsa_key))
    arguments: dict[str, Any] = {"user": user, "private_key": _private_der(rsa_key)}
    if refusal == "other-key":
        arguments["private_key"] = _private_der(other_rsa_key)
    elif refusal == "other-account":
        arguments["account"] = "elsewhere"
    else:
        arguments.update(_long_lived_jwt(monkeypatch))
    with pytest.raises(DatabaseError) as info:
        connect(**arguments)
    assert (info.value.errno, info.value.sqlstate) == (390144, "28000")
    assert "JWT token is invalid." in str(info.value)
    assert is_credential_rejection(info.value)
    assert snowflake_double.failed_login_count(user) == 1


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


# -- sessions ----------------------------------------------------------------------------


def test_expired_session_fails_statements_and_a_new_login_works(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    renewal_failure_body: str,
) -> None:
    """After expire_sessions every execute fails as this line reports a refused renewal
    (sqlstate 08001), which gds_snowflake counts as "session gone"; a new connection works."""
    snowflake_double.register_user(user, password="pw")
    conn = connect(user=user, password="pw")
    assert _select_one(conn) == [(1,)]
    assert snowflake_double.expire_sessions(user) == 1
    for _ in range(2):  # and again: the connection stays dead
        with pytest.raises(DatabaseError) as info:
            _select_one(conn)
        assert info.value.errno == expired_statement_errno(renewal_failure_body)
        assert info.value.sqlstate == "08001"
        assert is_session_gone(info.value)
    assert not conn.is_closed()
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
    with pytest.raises(DatabaseError):
        _select_one(mine)


def test_renewable_expiry_is_invisible_to_the_caller(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """With renewable=True the connector renews with its master token and carries on."""
    snowflake_double.register_user(user, password="pw")
    conn = connect(user=user, password="pw")
    snowflake_double.expire_sessions(user, renewable=True)
    assert _select_one(conn) == [(1,)]
    assert _select_one(conn) == [(1,)]  # the renewed session token is the one in use now
    assert snowflake_double.login_count(user) == 1


def test_dropped_user_cannot_log_in_or_query(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """drop_user refuses new logins and ends the user's open sessions."""
    snowflake_double.register_user(user, password="pw")
    conn = connect(user=user, password="pw")
    snowflake_double.drop_user(user)
    with pytest.raises(DatabaseError) as info:
        _select_one(conn)
    assert is_session_gone(info.value)
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


# -- injected failures and counters -------------------------------------------------------


@pytest.mark.parametrize("method", ["password", "key pair"])
def test_connector_retries_transient_login_failures_itself_then_gives_up(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    method: str,
) -> None:
    """The connector rides out one 5xx fewer than its attempts; one more exhausts them,
    raising 250001, which gds_snowflake's login retry counts as transient."""
    snowflake_double.register_user(user, password="pw", public_key=rsa_key.public_key())
    credentials = (
        {"password": "pw"} if method == "password" else {"private_key": _private_der(rsa_key)}
    )
    attempts = CONNECTOR_LOGIN_ATTEMPTS[method]
    snowflake_double.fail_next_logins(attempts - 1, status=502)
    connect(user=user, **credentials, **_immediate_retries())
    assert snowflake_double.login_count(user) == 1

    snowflake_double.fail_next_logins(attempts)
    with pytest.raises(EXHAUSTED_LOGIN_ERROR) as info:
        connect(user=user, **credentials, **_immediate_retries())
    assert info.value.errno == 250001
    assert is_transient_login_failure(info.value) and not is_credential_rejection(info.value)
    assert _select_one(connect(user=user, **credentials)) == [(1,)]
    assert snowflake_double.login_count(user) == 2
    assert snowflake_double.failed_login_count(user) == 0


def test_login_that_runs_out_of_time_is_transient(
    snowflake_double: SnowflakeDouble, connect: Callable[..., Any], user: str
) -> None:
    """A login still failing when login_timeout runs out raises what gds_snowflake's login
    retry counts as transient (5.x: OperationalError 14, HYT00; 4.x gives up on 250001
    first, its password retries being fewer)."""
    snowflake_double.register_user(user, password="pw")
    snowflake_double.fail_next_logins(10_000)
    # 5.x: more attempts than 2 s hold (its default backoff starts at 250 ms).
    retries = {"retry_max_attempts": 100} if CONNECTOR_MAJOR >= 5 else _immediate_retries()
    expected = OperationalError if CONNECTOR_MAJOR >= 5 else EXHAUSTED_LOGIN_ERROR
    try:
        with pytest.raises(expected) as info:
            connect(user=user, password="pw", login_timeout=2, **retries)
    finally:
        snowflake_double.fail_next_logins(0)
    if CONNECTOR_MAJOR >= 5:
        assert (info.value.errno, info.value.sqlstate) == (14, "HYT00")
    assert is_transient_login_failure(info.value)
    assert snowflake_double.failed_login_count(user) == 0


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
            **adapt_connect_arguments(
                {"user": user, "password": "pw", **snowflake_double.connect_kwargs()}
            )
        )
        try:
            return _select_one(conn)
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(login_and_query, range(16)))
    assert results == [[(1,)]] * 16
    assert snowflake_double.login_count(user) == 16


# -- the double itself -------------------------------------------------------------------


def test_no_secret_in_repr_or_logs(
    snowflake_double: SnowflakeDouble,
    connect: Callable[..., Any],
    user: str,
    rsa_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the double's repr nor its log lines (here and in its process) show a
    password or a key; they name the user."""
    password = "hunter2-do-not-log"
    caplog.set_level(logging.DEBUG, logger="gds_snowflake")
    snowflake_double.register_user(user, password=password, public_key=_public_pem(rsa_key))
    connect(user=user, password=password)
    with pytest.raises(DatabaseError):
        connect(user=user, password=password + "x")
    assert snowflake_double.log_path is not None
    server_log = snowflake_double.log_path.read_text(encoding="utf-8")
    text = repr(snowflake_double) + caplog.text + server_log
    assert user.upper() in caplog.text
    assert f"password login refused for {user.upper()}" in server_log
    assert password not in text
    assert public_key_fingerprint(rsa_key.public_key()) not in text
    assert "127.0.0.1" in repr(snowflake_double)


def test_misuse_is_refused_with_the_usual_exceptions(
    snowflake_double: SnowflakeDouble, user: str
) -> None:
    """Duplicate users, unknown users, bad slots, non-keys and bad shapes raise at once,
    as KeyError/ValueError/TypeError, whichever process noticed."""
    snowflake_double.register_user(user, password="pw")
    with pytest.raises(ValueError, match="already registered"):
        snowflake_double.register_user(user.upper())
    with pytest.raises(KeyError, match="no_such_user"):
        snowflake_double.set_password("no_such_user", "pw")
    with pytest.raises(KeyError):
        snowflake_double.drop_user("no_such_user")
    with pytest.raises(ValueError, match="slot"):
        snowflake_double.unset_public_key(user, slot=3)
    with pytest.raises(TypeError):
        snowflake_double.set_public_key(user, 12345)
    with pytest.raises(ValueError, match="0 or more"):
        snowflake_double.fail_next_logins(-1)
    with pytest.raises(ValueError, match="renewal_failure_body"):
        snowflake_double.set_renewal_failure_body("html")
    with pytest.raises(ValueError, match="renewal_failure_body"):
        SnowflakeDouble(renewal_failure_body="")


def test_server_runs_fakesnow_on_connector_4_in_its_own_process(
    snowflake_double: SnowflakeDouble,
) -> None:
    """The server is another process, with connector 4.x and fakesnow 0.12, whatever the
    connector line of the tests is."""
    info = snowflake_double.server_info()
    assert info["pid"] != os.getpid()
    assert info["connector"].startswith("4.")
    assert info["fakesnow"].startswith("0.12.")
    assert Path(info["python"]).name.startswith("python")


def test_start_and_stop() -> None:
    """A second double has its own port and process; stop ends the process and removes
    its log; an unstarted double knows no port."""
    double = SnowflakeDouble(account="other", renewal_failure_body="null")
    with pytest.raises(RuntimeError, match="not been started"):
        _ = double.port
    with pytest.raises(RuntimeError, match="not running"):
        double.login_count("anyone")
    with double:
        assert double.running
        assert double.renewal_failure_body == "null"
        log = double.log_path
        assert log is not None and log.exists()
        expected = {
            "account": "other",
            "host": "127.0.0.1",
            "port": double.port,
            "protocol": "http",
        }
        if "platform_detection_timeout_seconds" in known_parameters():
            expected["platform_detection_timeout_seconds"] = 0.0
        assert double.connect_kwargs() == expected
        with pytest.raises(RuntimeError, match="already running"):
            double.start()
    assert not double.running
    assert double.log_path is None and not log.exists()
    assert "stopped" in repr(double)
    double.stop()  # a second stop is a no-op


# -- its environment ---------------------------------------------------------------------


def test_requirements_are_the_packages_and_the_double_extra() -> None:
    """The double's environment gets the package's own requirements and the double extra,
    which holds the connector below 5 there only."""
    wanted = requirements()
    assert any(r.startswith("fakesnow[server]") for r in wanted)
    assert any(r.startswith("tenacity") for r in wanted)
    connector = [r for r in wanted if r.startswith("snowflake-connector-python")]
    assert len(connector) == 2 and any("<5" in r for r in connector)


def test_location_survives_a_new_home(tmp_path: Path) -> None:
    """A process started with another HOME (as a test's subprocess may be) finds the same
    environment through GDS_SNOWFLAKE_DOUBLE_ENV, which the plugin exported."""
    code = (
        "from gds_snowflake.testing._environment import environment_location; "
        "print(environment_location())"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert env[ENV_VARIABLE] == str(environment_location())
    assert result.stdout.strip() == str(environment_location())


@pytest.mark.timeout(120)
def test_failed_build_says_why_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build pip cannot complete (no index here) raises DoubleEnvironmentError with pip's
    words and the log's path, and leaves no completion marker."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    location = tmp_path / "double-env"
    with pytest.raises(DoubleEnvironmentError) as info:
        _build(location, report=None)
    message = str(info.value)
    assert str(location / "build.log") in message
    assert "fakesnow" in message  # pip's own last lines
    assert not (location / "gds-double-env.json").exists()
