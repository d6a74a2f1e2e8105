"""gds_snowflake against the raw connector on the Snowflake double."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from statistics import median

from bench import _lines
from bench._report import Row, us
from bench._world import SF_PATH, SF_USER, World

WORKERS = 8
CONNECTIONS_PER_WORKER = 25


def _labelled(what: str, line: str) -> str:
    return f"{what}, {line}" if line else what


def warm_connect(world: World, rounds: int, per_round: int = 24, *, line: str = "") -> Row:
    """get_snowflake_connection() with a warm Vault cache vs snowflake.connector.connect().

    The same credentials and connect arguments for both (the raw side gets them as
    gds_snowflake adapts them for the connector line, so 5.x does not warn on every
    call); calls alternate one by one (and who goes first alternates too). Only opening
    is timed; each connection is then closed. ``line`` labels the row.
    """
    import snowflake.connector

    from gds_snowflake import get_snowflake_connection
    from gds_snowflake._connector import adapt_connect_arguments

    client = world.client()
    kwargs = world.sf_connect_kwargs()
    raw_kwargs = adapt_connect_arguments(
        {
            "account": world.snowflake.account,
            "user": SF_USER,
            "password": world.sf_password,
            **kwargs,
        }
    )

    def ours() -> object:
        return get_snowflake_connection(SF_PATH, vault_client=client, **kwargs)

    def raw() -> object:
        return snowflake.connector.connect(**raw_kwargs)

    for opener in (ours, raw, ours, raw):  # warm: Vault cache, parsed credentials, imports
        opener().close()  # type: ignore[attr-defined]
    mark = world.vault.mark()
    ratios: list[float] = []
    t_ours: list[float] = []  # every call, for the median call time shown
    t_raw: list[float] = []
    clock = time.perf_counter
    for _ in range(rounds):
        spent: dict[object, list[float]] = {ours: [], raw: []}
        for i in range(per_round):
            for opener in (ours, raw) if i % 2 == 0 else (raw, ours):
                started = clock()
                conn = opener()
                spent[opener].append(clock() - started)
                conn.close()  # type: ignore[attr-defined]
        # Medians of the calls, so one stalled login (a shared machine) does not decide.
        ratios.append(median(spent[ours]) / median(spent[raw]))
        t_ours.extend(spent[ours])
        t_raw.extend(spent[raw])
    vault = world.count(mark)
    return Row(
        _labelled("`get_snowflake_connection()`, warm Vault cache", line),
        "raw `snowflake.connector.connect()`, same credentials (ours / raw)",
        "≤ 1.1x",
        median(ratios) <= 1.1,
        ratios=ratios,
        detail=f"median call {us(median(t_ours))} vs {us(median(t_raw))}; "
        f"{vault['total']} Vault requests in {rounds * per_round} connections",
    )


def recovery(world: World, rounds: int = 3, *, line: str = "") -> Row:
    """After the double expires the session, the next statement: logins and Vault reads."""
    from gds_snowflake import get_snowflake_connection

    client = world.client()
    logins, reads, others, reconnects = [], [], [], []
    for _ in range(rounds):
        with get_snowflake_connection(
            SF_PATH, vault_client=client, **world.sf_connect_kwargs()
        ) as conn:
            cursor = conn.cursor()
            assert cursor.execute("select 1").fetchall() == [(1,)]
            before = world.snowflake.login_count(SF_USER)
            mark = world.vault.mark()
            world.snowflake.expire_sessions(SF_USER)
            assert cursor.execute("select 2").fetchall() == [(2,)]  # re-run after re-login
            logins.append(world.snowflake.login_count(SF_USER) - before)
            vault = world.count(mark)
            reads.append(vault["read"])
            others.append(vault["total"] - vault["read"])
            reconnects.append(conn.reconnects)
    met = max(logins) == 1 and min(logins) == 1 and max(reads) <= 1
    return Row(
        _labelled("recovery after a session expiry", line),
        "an ideal client: one extra login",
        "exactly 1 extra Snowflake login, ≤ 1 Vault read",
        met,
        figure=f"**{max(logins)}** login, **{max(reads)}** Vault reads "
        f"(ratio to ideal {max(logins) / 1:.2f}x)",
        detail=f"over {rounds} expiries: extra logins {logins}, Vault reads {reads}, "
        f"other Vault requests {others}, statement re-run each time",
    )


def forked_workers(world: World, python: str = sys.executable, *, line: str = "") -> Row:
    """8 forked workers x 25 connections each, configured only by VAULT_* variables.

    Run twice in a fresh ``python`` process that forks the workers, as an Airflow
    LocalExecutor or a multiprocessing pool does: once with a parent that never touched
    Vault before forking, once with a parent that read the secret first. ``python`` must
    have connector 4.x: the parent imports the connector before forking, as a scheduler
    that parsed the DAG file has, and 5.x cannot log in after that (SnowflakeForkError).
    """
    results = {}
    for warm in (False, True):
        mark = world.vault.mark()
        before = world.snowflake.login_count(SF_USER)
        env = {k: v for k, v in _lines.env().items() if not k.startswith(("VAULT_", "HVAULT_"))}
        env.update(
            VAULT_ADDR=world.vault.addr,
            VAULT_ROLE_ID=world.role_id,
            VAULT_SECRET_ID=world.secret_id,
        )
        spec = {
            "path": SF_PATH,
            "workers": WORKERS,
            "connections": CONNECTIONS_PER_WORKER,
            "warm": warm,
            "connect_kwargs": world.sf_connect_kwargs(),
        }
        started = time.perf_counter()
        subprocess.run(
            [python, "-m", "bench._forkjob", json.dumps(spec)],
            env=env,
            cwd=_lines.ROOT,  # where `bench` is importable
            check=True,
            timeout=300,
        )
        elapsed = time.perf_counter() - started
        counts = world.count(mark)
        counts["snowflake"] = world.snowflake.login_count(SF_USER) - before
        counts["seconds"] = elapsed  # type: ignore[assignment]
        results[warm] = counts
    cold, warm_ = results[False], results[True]
    total = WORKERS * CONNECTIONS_PER_WORKER
    return Row(
        _labelled(
            f"{WORKERS} forked workers x {CONNECTIONS_PER_WORKER} connections (Airflow-like)",
            line,
        ),
        "one Vault login per process",
        "report Vault logins and reads",
        None,
        figure=(
            f"**{cold['login']}** logins, **{cold['read']}** reads for {WORKERS} processes "
            f"({cold['login'] / WORKERS:.2f} per process)"
        ),
        detail=(
            f"parent untouched before fork: {cold['login']} logins, {cold['read']} reads, "
            f"{cold['mounts']} mount lookups, {cold['snowflake']} Snowflake logins for "
            f"{total} connections; parent read the secret before fork: {warm_['login']} "
            f"login, {warm_['read']} read, {warm_['mounts']} mount lookup (children reuse "
            f"token and cache), {warm_['snowflake']} Snowflake logins"
        ),
    )
