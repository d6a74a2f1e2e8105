"""The demo: everything a data job does, on a local OpenBao server and Snowflake double.

It starts both servers on loopback, provisions an AppRole and a key-pair secret as a
Vault administrator would, then calls get_snowflake_connection() exactly as a user's job
does (configured only by VAULT_* variables), runs queries, expires the session to show
the transparent reconnect, rotates the key to show Vault being read again, connects a
service user with a programmatic access token (PAT) and rotates that, and cleans up.
Nothing leaves the machine.

The Snowflake double runs in a process of its own, from an environment of its own (built
with pip on first use, then cached; see ``gds_snowflake.testing._environment``), so the
demo works with whichever connector line this environment has and never changes it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import IO, Any

SECRET_PATH = "secret/snowflake/demo"  # noqa: S105 - a path, not a password
# Set while the demo runs, as its job would have them; put back as they were afterwards.
_ENVIRONMENT = (
    "VAULT_ADDR",
    "VAULT_ROLE_ID",
    "VAULT_SECRET_ID",
    "SNOWFLAKE_DISABLE_PLATFORM_DETECTION",
)
_CONNECTOR = "snowflake-connector-python"
USER = "DEMO_ETL"
PAT_USER = "DEMO_SVC"  # a service user that logs in with a programmatic access token
PAT_NAME = "DEMO_JOB"  # the token's name in Snowflake
PAT_SECRET_PATH = "secret/snowflake/demo-pat"  # noqa: S105 - a path, not a password
POLICY = 'path "secret/data/snowflake/*" { capabilities = ["read"] }\n'
NEXT_STEPS = (
    "Next steps:",
    "  gds-snowflake sandbox               keep both servers running and try your own code",
    "                                      or your own Vault against them (Ctrl-C stops)",
    "  gds-snowflake doctor SECRET_PATH    check every step against your Vault and Snowflake",
    "  README.md: 'Try it against your own Vault' and 'For the Vault administrator' (the",
    "  commands that store the key, write the policy and create the AppRole shown above)",
)


def run_demo(out: IO[str] | None = None) -> int:
    """Run the demo, printing each step; returns the process exit code (0 on success)."""
    stream = out or sys.stdout
    step_number = [0]

    def step(text: str) -> None:
        step_number[0] += 1
        print(f"\n[{step_number[0]}] {text}", file=stream, flush=True)

    def info(text: str) -> None:
        print(f"    {text}", file=stream, flush=True)

    try:
        from gds_snowflake.testing._double import SnowflakeDouble
        from gds_snowflake.testing._environment import DoubleEnvironmentError, server_interpreter
        from gds_vault.testing import OpenBaoServer
    except ImportError as exc:
        print(
            f"The demo needs its extra: pip install 'gds-vault-snowflake[demo]' ({exc})",
            file=sys.stderr,
        )
        return 2

    started = time.monotonic()
    saved_env = {name: os.environ.get(name) for name in _ENVIRONMENT}
    # Everything stays on loopback: without this, connector 5.x probes cloud metadata
    # endpoints (169.254.169.254, ...) at every login.
    os.environ.setdefault("SNOWFLAKE_DISABLE_PLATFORM_DETECTION", "true")
    step("Starting a local OpenBao dev server and the Snowflake double (loopback only)")
    try:
        server_interpreter(report=lambda line: info(line + " ..."))
    except DoubleEnvironmentError as exc:
        _restore(saved_env)
        print(f"gds-snowflake demo: {exc}", file=sys.stderr)
        return 1
    try:
        with OpenBaoServer() as vault, SnowflakeDouble() as snowflake:
            server = snowflake.server_info()
            info(f"OpenBao   {vault.addr}")
            info(
                f"Snowflake http://{snowflake.host}:{snowflake.port} (account {snowflake.account})"
            )
            info(
                f"the double: fakesnow {server['fakesnow']} in a process of its own (connector "
                f"{server['connector']} there); this job: connector {version(_CONNECTOR)}"
            )
            return _scenario(vault, snowflake, step, info, started)
    finally:
        _restore(saved_env)
        from gds_vault import set_default_client

        set_default_client(None)


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _new_key() -> tuple[Any, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"demo-passphrase"),
    ).decode()
    return key, encrypted


def _scenario(
    vault: Any,
    snowflake: Any,
    step: Callable[[str], None],
    info: Callable[[str], None],
    started: float,
) -> int:
    from gds_snowflake import SnowflakeConnectionProvider, get_snowflake_connection
    from gds_snowflake.testing._double import public_key_fingerprint
    from gds_vault import get_default_client

    step("Vault administrator: key-pair secret, read-only policy, AppRole for the job")
    key, encrypted_pem = _new_key()
    snowflake.register_user(USER, public_key=key.public_key())
    vault.kv_put(
        "secret",
        "snowflake/demo",
        {
            "account": snowflake.account,
            "user": USER,
            "private_key": encrypted_pem.replace("\n", "\\n"),  # as pasted into a web form
            "private_key_passphrase": "demo-passphrase",
            "warehouse": "DEMO_WH",
            "database": "DEMO_DB",
            "schema": "PUBLIC",
        },
    )
    vault.write_policy("snowflake-demo", POLICY)
    role_id, secret_id = vault.approle(
        "etl-demo",
        policies=["snowflake-demo"],
        token_ttl="1h",  # noqa: S106 - a duration
    )
    info(
        f"secret {SECRET_PATH}: account, user, encrypted private_key (escaped newlines), passphrase"
    )
    info(f"Snowflake user {USER} has RSA_PUBLIC_KEY_FP {public_key_fingerprint(key.public_key())}")

    step("The job's environment: VAULT_ADDR, VAULT_ROLE_ID, VAULT_SECRET_ID (and nothing else)")
    os.environ["VAULT_ADDR"] = vault.addr
    os.environ["VAULT_ROLE_ID"] = role_id
    os.environ["VAULT_SECRET_ID"] = secret_id
    info("(values not shown: they are credentials)")

    step(f"conn = get_snowflake_connection({SECRET_PATH!r})")
    where = {k: v for k, v in snowflake.connect_kwargs().items() if k != "account"}
    conn = get_snowflake_connection(SECRET_PATH, **where)
    info(f"connected: {conn!r}")
    cursor = conn.cursor()
    cursor.execute("create or replace table demo_orders (id int, amount number(10, 2))")
    cursor.execute("insert into demo_orders values (1, 10.50), (2, 99.99), (3, 5.25)")
    total = cursor.execute("select count(*), sum(amount) from demo_orders").fetchone()
    info(f"select count(*), sum(amount) -> {tuple(total)}")

    step("The notebook sits idle: Snowflake expires the session")
    snowflake.expire_sessions(USER)
    logins_before = snowflake.login_count(USER)
    mark = vault.mark()
    total = cursor.execute("select count(*) from demo_orders").fetchone()
    reads = len(vault.requests_since(mark, "secret/data/snowflake/demo"))
    info(f"select count(*) -> {tuple(total)}   (same cursor, no error for the user)")
    info(
        f"behind the scenes: {conn.reconnects} reconnect, "
        f"{snowflake.login_count(USER) - logins_before} extra Snowflake login, "
        f"{reads} Vault reads (the secret came from the cache)"
    )

    step("Security rotates the key in Snowflake and in Vault, then the session expires")
    new_key, new_pem = _new_key()
    snowflake.set_public_key(USER, new_key.public_key())
    vault.kv_put(
        "secret",
        "snowflake/demo",
        {
            "account": snowflake.account,
            "user": USER,
            "private_key": new_pem,
            "private_key_passphrase": "demo-passphrase",
            "database": "DEMO_DB",
            "schema": "PUBLIC",
        },
    )
    snowflake.expire_sessions(USER)
    mark = vault.mark()
    rejected_before = snowflake.failed_login_count(USER)
    total = cursor.execute("select sum(amount) from demo_orders").fetchone()
    reads = len(vault.requests_since(mark, "secret/data/snowflake/demo"))
    rejected = snowflake.failed_login_count(USER) - rejected_before
    info(f"select sum(amount) -> {tuple(total)}")
    info(
        f"behind the scenes: old key rejected {rejected} time(s), {reads} fresh Vault read, "
        f"new key {public_key_fingerprint(new_key.public_key())} used"
    )

    step("A service user with a programmatic access token (PAT) instead of a key")
    snowflake.register_user(PAT_USER)
    pat_secret = {
        "account": snowflake.account,
        "user": PAT_USER,
        "database": "DEMO_DB",
        "schema": "PUBLIC",
    }
    pat = snowflake.add_pat(PAT_USER, PAT_NAME)
    vault.kv_put("secret", "snowflake/demo-pat", {**pat_secret, "token": pat})
    info(f"ALTER USER {PAT_USER} ADD PROGRAMMATIC ACCESS TOKEN {PAT_NAME}; its token is in")
    info(f"{PAT_SECRET_PATH}, field 'token' (value not shown)")
    provider = SnowflakeConnectionProvider(PAT_SECRET_PATH, **where)
    pat_conn = provider.connect()
    pat_cursor = pat_conn.cursor()
    count = pat_cursor.execute("select count(*) from demo_orders").fetchone()
    info(
        f"get_snowflake_connection({PAT_SECRET_PATH!r}): {provider.credentials().method}, "
        f"select count(*) -> {tuple(count)}"
    )
    pat = snowflake.rotate_pat(PAT_USER, PAT_NAME)
    vault.kv_put("secret", "snowflake/demo-pat", {**pat_secret, "token": pat})
    snowflake.expire_sessions(PAT_USER)
    mark = vault.mark()
    count = pat_cursor.execute("select count(*) from demo_orders").fetchone()
    reads = len(vault.requests_since(mark, "secret/data/snowflake/demo-pat"))
    info(f"PAT rotated in Snowflake and Vault, session expired: select count(*) -> {tuple(count)}")
    info(
        f"behind the scenes: old PAT rejected {snowflake.failed_login_count(PAT_USER)} time(s), "
        f"{reads} fresh Vault read"
    )
    pat_conn.close()

    step("Many connections in one process cost one Vault login")
    for _ in range(5):
        with get_snowflake_connection(SECRET_PATH, **where) as extra:
            extra.cursor().execute("select 1").fetchall()
    info(f"Vault logins by this process: {get_default_client().stats.logins}")

    conn.close()
    step(f"Done in {time.monotonic() - started:.1f} s; servers stopped, nothing left behind")
    for line in NEXT_STEPS:
        info(line)
    return 0
