"""The cost of lease bookkeeping on a warm connect: a leased path beside a KV secret.

Both sides are ``get_snowflake_connection()`` with a warm Vault client against the same
double, the same kind of user (a password checked by the double), alternating one by one
as in ``_snowflake.warm_connect``; only opening is timed. The leased side reads
``database/creds/bench`` of OpenBao's database secrets engine on a real PostgreSQL
(``tests/postgres.py``, started for this row); its user is registered with the double as
well, so the double checks its password as it checks the KV user's and the comparison is
of the library's own work: the lease holder's look-up, the connection tracked for
renewal, the user taken from the lease. The lease lasts an hour: no renewal falls in
the run. This interpreter's connector line only (the other line would need its own
PostgreSQL and engine set-up; the bookkeeping is the same Python on both).
"""

from __future__ import annotations

import time
from statistics import median

from bench._report import Row, us
from bench._world import SF_PATH, World


def leased_warm_connect(world: World, rounds: int, per_round: int = 24, *, line: str) -> Row:
    from gds_snowflake import SnowflakeConnectionProvider, get_snowflake_connection
    from gds_vault import AppRoleAuth, VaultClient
    from tests.postgres import PostgresServer, database_role, enable_database_engine

    with PostgresServer() as postgres:
        enable_database_engine(world.vault, postgres)
        path = database_role(world.vault, "bench", ttl="1h", max_ttl="2h")
        role_id, secret_id = world.vault.approle("bench-leases", policies=["bench", "leases"])
        with VaultClient(world.vault.addr, auth=AppRoleAuth(role_id, secret_id)) as client:
            kwargs = world.sf_connect_kwargs()
            leased_kwargs = {**kwargs, "account": world.snowflake.account}
            provider = SnowflakeConnectionProvider(path, vault_client=client)
            provider.credentials()  # the first read: the lease
            holder = provider.lease_holder()
            assert holder is not None and holder.lease is not None
            lease = holder.lease
            world.snowflake.register_user(
                lease.data["username"], password=lease.data["password"]
            )

            def kv() -> object:
                return get_snowflake_connection(SF_PATH, vault_client=client, **kwargs)

            def leased() -> object:
                return get_snowflake_connection(path, vault_client=client, **leased_kwargs)

            for opener in (kv, leased, kv, leased):  # warm
                opener().close()  # type: ignore[attr-defined]
            ratios: list[float] = []
            t_leased: list[float] = []
            t_kv: list[float] = []
            clock = time.perf_counter
            for _ in range(rounds):
                spent: dict[object, list[float]] = {kv: [], leased: []}
                for i in range(per_round):
                    for opener in (kv, leased) if i % 2 == 0 else (leased, kv):
                        started = clock()
                        conn = opener()
                        spent[opener].append(clock() - started)
                        conn.close()  # type: ignore[attr-defined]
                ratios.append(median(spent[leased]) / median(spent[kv]))
                t_leased.extend(spent[leased])
                t_kv.extend(spent[kv])
            stats = client.stats
    return Row(
        f"`get_snowflake_connection('database/creds/...')`, warm, {line}",
        "the same with a KV secret (leased / KV)",
        "≤ 1.1x",
        median(ratios) <= 1.1,
        ratios=ratios,
        detail=f"median call {us(median(t_leased))} vs {us(median(t_kv))}; "
        f"{stats.lease_reads} lease read, {stats.lease_renewals} renewals in "
        f"{rounds * per_round} leased connections",
    )
