"""Synthesis under Discord's limits: many communities at once, 4 worker processes.

    python bench/synthesis_load.py [--communities 100] [--members 100] [--workers 4] [--compare-runs 6]

Each community synthesizes the Sietch template (7 categories, 15 channels, 9 tier roles and a
badge role, category overwrites) and then gets one role update for each of its members, against
our fake Discord at its strictest (at most 50 requests in any sliding 1-s window, counted on
arrival; per-route windows; a slow role-create window). Prints: 429s received (target 0), the
busiest 1-s window the fake saw (target <= 50), the achieved request rate over the active span as
a share of 50/s (target >= 90 %), total time against the ideal (requests / 50 s), and the longest any community waited
for its first call (target <= 5 s). Then single-process ``acquire`` throughput on real Redis
(target >= 5,000/s).

Then what recording metrics costs, in the same run: ``--compare-runs`` smaller runs (fresh
communities, ``--compare-communities`` x ``--compare-members``), each with its own worker processes
started alternately with ``ARRAKIS_METRICS=on`` and ``off`` (in the order on, off, off, on, ... so
that a drift of the machine's load falls on both alike). Prints, as medians over each setting's
runs: the achieved request rate (Discord's pacing sets it: it must not drop) and the workers' CPU
time per request (what recording adds to each call), and on/off as ratios (target within 5 %).
Uses BENCH_DATABASE_URL and BENCH_REDIS_URL (defaults: loopback, Redis database 12).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import psycopg2.extras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.bootstrap import build_engine  # noqa: E402
from bench.harness import cpu_seconds, parse_args, scratch_database  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402
from arrakis_engine.adapters.discord.redis_bucket import RedisTokenBucket  # noqa: E402
from arrakis_engine.themes import get_theme  # noqa: E402
from tests.fakes.discord_api import FakeDiscord  # noqa: E402


def acquire_throughput(redis, n: int = 20_000) -> float:
    bucket = RedisTokenBucket(redis, name="bench-acquire", limit=10**9, window=1.0)
    bucket.reset()
    t = time.perf_counter()
    for _ in range(n):
        bucket.acquire()
    return n / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--communities", type=int, default=100)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--compare-runs", type=int, default=6,
                    help="runs alternating ARRAKIS_METRICS on and off (0: no comparison)")
    ap.add_argument("--compare-communities", type=int, default=10)
    ap.add_argument("--compare-members", type=int, default=30)
    args = parse_args(ap, communities=2, members=5, workers=1, compare_runs=2, compare_communities=1,
                      compare_members=3)

    with scratch_database() as url:
        return run(args, url)


def make_communities(engine, discord, url: str, count: int, members: int, first: int) -> list:
    """``count`` Sietch communities with ``members`` ranked members each (guild numbers from ``first``)."""
    theme = get_theme("sietch")
    communities = []
    conn = psycopg2.connect(url)
    for i in range(first, first + count):
        c = engine.communities.create(name=f"Bench {i}", guild_id=str(100000000000000800 + i), theme_id="sietch",
                                      subscription="premium", actor="bench")
        g = discord.guild(c.guild_id)
        rows = []
        for m in range(members):
            discord_id = str(10**17 + i * 10_000 + m)
            g.members[discord_id] = set()
            rank = (m * 37) % 1500 + 1
            rows.append((str(c.id), discord_id, theme.tier_for_rank(rank), rank))
        with conn, conn.cursor() as cur:
            psycopg2.extras.execute_values(cur, "INSERT INTO profiles (community_id, discord_id, tier, rank) "
                                                "VALUES %s", rows)
            # Steady state: we know what roles these members hold (none yet).
            psycopg2.extras.execute_values(cur, "INSERT INTO discord_member_roles (community_id, discord_id) "
                                                "VALUES %s", [(r[0], r[1]) for r in rows])
        communities.append(c)
    conn.close()
    return communities


def start_workers(engine, env: dict, n: int, metrics: str = "on") -> list[subprocess.Popen]:
    from rq import Worker

    procs = [subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "worker"],
                              env={**os.environ, **env, "ARRAKIS_METRICS": metrics}, start_new_session=True,
                              stdout=subprocess.DEVNULL) for _ in range(n)]
    while len(Worker.all(connection=engine.redis)) < n:
        time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)
        except Exception:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def synthesize_all(engine, communities, enqueued_at: dict | None = None) -> None:
    """Synthesize every community, then sync its members, and wait until the queue is empty
    (``enqueued_at``: guild -> when its synthesis was queued)."""
    from arrakis_engine.adapters.rq.queue import outstanding

    svc = engine.synthesis
    for c in communities:
        if enqueued_at is not None:
            enqueued_at[c.guild_id] = time.monotonic()
        svc.synthesize(c.id, actor="bench")
    waiting = {c.id: c for c in communities}
    while waiting:
        for cid in list(waiting):
            if svc.status(cid).synthesized:
                svc.sync_members(cid, actor="bench")
                del waiting[cid]
        time.sleep(0.2)
    while outstanding(engine.redis):
        time.sleep(0.2)


def compare(args, engine, discord, url: str, env: dict) -> bool:
    """The same workload with metrics recording on and off, interleaved; True if within 5 %."""
    import statistics

    figures: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    first = args.communities
    for i in range(args.compare_runs):
        setting = "on" if i % 4 in (0, 3) else "off"
        communities = make_communities(engine, discord, url, args.compare_communities, args.compare_members, first)
        first += args.compare_communities
        procs = start_workers(engine, env, args.workers, setting)
        try:
            cpu0 = sum(cpu_seconds(p.pid) for p in procs)
            seen = len(discord.request_log)
            synthesize_all(engine, communities)
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
            log = list(discord.request_log)[seen:]
        finally:
            stop_workers(procs)
        rate = len(log) / max(1e-9, log[-1][0] - log[0][0])
        figures[setting].append((rate, cpu / len(log)))
        print(f"  run {i + 1} (metrics {setting}): {len(log)} requests at {rate:.1f}/s; workers' CPU "
              f"{cpu / len(log) * 1000:.2f} ms per request")
    # runs 1-2, 3-4, ... are pairs (one on, one off, side by side in time): their ratios cancel drift
    pairs = [(figures["on"][i], figures["off"][i]) for i in range(min(len(figures["on"]), len(figures["off"])))]

    def figure(i: int) -> tuple[float, float, float]:
        """(median with metrics on, median off, median of the pairs' on/off ratios) of figure ``i``."""
        return (statistics.median(f[i] for f in figures["on"]), statistics.median(f[i] for f in figures["off"]),
                statistics.median(a[i] / b[i] for a, b in pairs))

    (on_rate, off_rate, r_rate), (on_cpu, off_cpu, r_cpu) = figure(0), figure(1)
    within = abs(r_rate - 1) <= 0.05 and r_cpu <= 1.05
    print(f"metrics recording on vs off ({len(figures['on'])} + {len(figures['off'])} runs; medians, and the median "
          f"of the pairs' ratios): rate {on_rate:.1f}/s vs {off_rate:.1f}/s, ratio {r_rate:.3f}; workers' CPU per "
          f"request {on_cpu * 1000:.2f} ms vs {off_cpu * 1000:.2f} ms, ratio {r_cpu:.3f} (target within 5 %)  "
          f"{'PASS' if within else 'FAIL'}")
    return within


def run(args, url: str) -> int:
    discord = FakeDiscord()
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": tempfile.mkdtemp(prefix="arrakis-bench-"),
           "DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token, "ARRAKIS_LOG_LEVEL": "WARNING"}
    engine = build_engine(Settings.from_env(env, env_file=None))
    procs: list[subprocess.Popen] = []
    try:
        engine.migrator.upgrade()
        engine.redis.flushdb()
        communities = make_communities(engine, discord, url, args.communities, args.members, 0)
        procs = start_workers(engine, env, args.workers)
        print(f"{args.communities} communities x {args.members} members; {args.workers} worker processes ready")

        enqueued_at: dict = {}
        t0 = time.monotonic()
        synthesize_all(engine, communities, enqueued_at)
        done = time.monotonic()
        stop_workers(procs)
        procs = []

        log = list(discord.request_log)
        first_call = {}
        for t, method, path in log:
            parts = path.split("/")
            if "guilds" in parts:
                gid = parts[parts.index("guilds") + 1]
                first_call.setdefault(gid, t)
        waits = [first_call[g] - enqueued_at[g] for g in enqueued_at]
        total = len(log)
        span = log[-1][0] - log[0][0]
        rate = total / span
        dead = engine.queue.dead_letters()
        members_ok = sum(1 for g in discord.guilds.values() for roles in g.members.values() if roles)
        print(f"requests: {total} in {span:.1f} s; dead letters: {len(dead)}; members given roles: {members_ok}")
        print(f"429s received: {discord.count_429} ({discord.global_429} on the global limit; target 0)  "
              f"{'PASS' if discord.count_429 == 0 else 'FAIL'}")
        busiest = discord.busiest_window
        print(f"busiest 1-s window at the fake: {busiest} requests (target <= 50)  {'PASS' if busiest <= 50 else 'FAIL'}")
        print(f"achieved rate: {rate:.1f}/s = {rate / 50:.0%} of 50/s (target >= 90 %)  "
              f"{'PASS' if rate >= 45 else 'FAIL'}")
        print(f"total time: {done - t0:.1f} s; ideal {total / 50:.1f} s ({(done - t0) / (total / 50):.2f}x)")
        print(f"longest wait for a first call: {max(waits):.2f} s (median {sorted(waits)[len(waits) // 2]:.2f} s; "
              f"target <= 5 s)  {'PASS' if max(waits) <= 5 else 'FAIL'}")
        acq = acquire_throughput(engine.redis, 500 if args.quick else 20_000)
        print(f"single-process acquire throughput on real Redis: {acq:,.0f}/s (target >= 5,000)  "
              f"{'PASS' if acq >= 5000 else 'FAIL'}")
        if args.compare_runs:
            compare(args, engine, discord, url, env)
        return 0
    finally:
        stop_workers(procs)
        engine.close()
        discord.close()


if __name__ == "__main__":
    sys.exit(main())
