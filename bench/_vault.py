"""gds_vault against hvac on the same OpenBao server: cached and uncached reads, threads."""

from __future__ import annotations

import threading
import time
import timeit
from statistics import median as _median
from typing import Any

from bench._report import Row, us
from bench._world import SECRET, SECRET_PATH, World
from gds_vault import VaultClient

THREADS = 32
READS = 1000


def cached_reads(world: World, rounds: int) -> list[Row]:
    """Cached get_secret per call vs an hvac read and vs a bare dict lookup, per round."""
    client = world.client()
    assert client.get_secret(SECRET_PATH) == SECRET  # warm: login, mount, read
    hv = world.hvac_client()
    assert world.hvac_read(hv) == SECRET
    table = {SECRET_PATH: SECRET}
    # timeit runs each statement in the same compiled loop with the GC off, so the two
    # in-process timings carry the same loop overhead.
    ours = timeit.Timer("get(p)", globals={"get": client.get_secret, "p": SECRET_PATH})
    bare = timeit.Timer("d[p]", globals={"d": table, "p": SECRET_PATH})
    n_ours, n_dict, n_hvac = 20_000, 200_000, 40
    faster, slower = [], []
    t_ours, t_dict, t_hvac = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n_hvac):
            world.hvac_read(hv)
        hvac_call = (time.perf_counter() - started) / n_hvac
        ours_call = ours.timeit(n_ours) / n_ours
        dict_call = bare.timeit(n_dict) / n_dict
        faster.append(hvac_call / ours_call)
        slower.append(ours_call / dict_call)
        t_ours.append(ours_call)
        t_dict.append(dict_call)
        t_hvac.append(hvac_call)
    med = _median(t_ours)
    return [
        Row(
            "cached `get_secret` per call",
            "hvac `read_secret_version` (hvac time / ours: times faster)",
            "≥ 500x faster",
            _median(faster) >= 500,
            ratios=faster,
            detail=f"median call {us(med)} vs {us(_median(t_hvac))}",
        ),
        Row(
            "cached `get_secret` per call",
            "a bare dict lookup `d[path]` (ours / dict)",
            "≤ 20x",
            _median(slower) <= 20,
            ratios=slower,
            detail=f"median call {us(med)} vs {us(_median(t_dict))}",
        ),
    ]


def uncached_reads(world: World, rounds: int) -> Row:
    """get_secret with cache_ttl=0 (one HTTP read per call) vs hvac, interleaved call by call."""
    client = world.client(cache_ttl=0)
    assert client.get_secret(SECRET_PATH) == SECRET  # login and mount detection done
    hv = world.hvac_client()
    assert world.hvac_read(hv) == SECRET
    per_round = 80
    ratios: list[float] = []
    t_ours: list[float] = []  # every call, for the median call time shown
    t_hvac: list[float] = []
    clock = time.perf_counter
    for _ in range(rounds):
        ours: list[float] = []
        theirs: list[float] = []
        for i in range(per_round):
            # Alternate who goes first, so neither always follows the other.
            for which in (0, 1) if i % 2 else (1, 0):
                started = clock()
                if which == 0:
                    client.get_secret(SECRET_PATH)
                    ours.append(clock() - started)
                else:
                    world.hvac_read(hv)
                    theirs.append(clock() - started)
        # Medians of the calls, so one stalled call (a shared machine) does not decide.
        ratios.append(_median(ours) / _median(theirs))
        t_ours.extend(ours)
        t_hvac.extend(theirs)
    return Row(
        "uncached `get_secret` per call (`cache_ttl=0`)",
        "hvac `read_secret_version` (ours / hvac)",
        "≤ 1.1x",
        _median(ratios) <= 1.1,
        ratios=ratios,
        detail=f"median call {us(_median(t_ours))} vs {us(_median(t_hvac))}",
    )


def _in_threads(work: Any) -> None:
    """Run ``work(i)`` in THREADS threads that start together; re-raise the first error."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _share(i: int) -> int:
    return READS // THREADS + (1 if i < READS % THREADS else 0)


def threaded_requests(world: World, rounds: int) -> Row:
    """Vault requests (audit log) for 1,000 reads from 32 threads: one client vs hvac's 32."""
    ours: list[dict[str, int]] = []
    theirs: list[dict[str, int]] = []
    for _ in range(rounds):
        client = world.client()  # a new client: nothing cached, no token yet
        mark = world.vault.mark()

        def our_thread(i: int, client: VaultClient = client) -> None:
            for _ in range(_share(i)):
                client.get_secret(SECRET_PATH)

        _in_threads(our_thread)
        ours.append(world.count(mark))

        mark = world.vault.mark()

        def hvac_thread(i: int) -> None:
            hv = world.hvac_client()  # one client per thread: hvac clients are not shared
            for _ in range(_share(i)):
                world.hvac_read(hv)

        _in_threads(hvac_thread)
        theirs.append(world.count(mark))
    worst = max(ours, key=lambda c: c["total"])
    hv = max(theirs, key=lambda c: c["total"])
    # A second secret on the same mount needs no mount lookup: measured, not assumed.
    client = world.client()
    client.get_secret(SECRET_PATH)
    mark = world.vault.mark()
    client.get_secret("secret/bench/snowflake")
    second = world.count(mark)
    logins_reads = worst["login"] + worst["read"]
    return Row(
        f"Vault requests for {READS:,} reads from {THREADS} threads (audit log)",
        "hvac, one client per thread",
        "≤ 2 (one login, one read)",
        worst["total"] <= 2,
        figure=(
            f"**{worst['total']}** vs {hv['total']:,} "
            f"({worst['total'] / hv['total']:.4f}x, worst of {rounds})"
        ),
        detail=(
            f"ours: {worst['login']} login + {worst['read']} read + {worst['mounts']} KV mount "
            f"lookup{' + ' + str(worst['other']) + ' other' if worst['other'] else ''} "
            f"(login + read = {logins_reads}); hvac: {hv['login']} logins + {hv['read']:,} "
            f"reads; a 2nd secret on the same mount then costs "
            f"{second['total']} request ({second['read']} read, {second['mounts']} lookup)"
        ),
    )
