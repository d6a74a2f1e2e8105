"""Profile one hot path with pyinstrument: ``python -m bench.profile uncached|cached|connect``.

Not needed by ``python -m bench``; install pyinstrument first (``pip install pyinstrument``).
Prints pyinstrument's text report of many calls of the chosen path against the same local
servers the benchmark starts. ``hvac`` and ``raw`` profile the comparison side instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench import _world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", choices=["cached", "uncached", "hvac", "connect", "raw"])
    parser.add_argument("-n", type=int, default=0, help="calls (default depends on the path)")
    parser.add_argument("--interval", type=float, default=0.0001, help="sampling interval, s")
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pip install pyinstrument first", file=sys.stderr)
        return 2
    world, stops = _world.start()
    try:
        if args.what in ("cached", "uncached", "hvac"):
            client = world.client(cache_ttl=300 if args.what == "cached" else 0)
            client.get_secret(_world.SECRET_PATH)
            hv = world.hvac_client()
            n = args.n or (1_000_000 if args.what == "cached" else 2000)

            def call() -> object:
                if args.what == "hvac":
                    return world.hvac_read(hv)
                return client.get_secret(_world.SECRET_PATH)

        else:
            import snowflake.connector

            from gds_snowflake import get_snowflake_connection

            client = world.client()
            kwargs = world.sf_connect_kwargs()
            raw_kwargs = {
                "account": world.snowflake.account,
                "user": _world.SF_USER,
                "password": world.sf_password,
                **kwargs,
            }
            n = args.n or 200

            def call() -> object:
                conn: Any
                if args.what == "raw":
                    conn = snowflake.connector.connect(**raw_kwargs)
                else:
                    conn = get_snowflake_connection(_world.SF_PATH, vault_client=client, **kwargs)
                conn.close()
                return conn

        call()
        profiler = Profiler(interval=args.interval)
        profiler.start()
        for _ in range(n):
            call()
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        for stop in stops:
            stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
