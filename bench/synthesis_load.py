"""Synthesis under Discord's limits: many communities at once, 4 worker processes.

    python bench/synthesis_load.py [--communities 100] [--members 100] [--workers 4]

Each community synthesizes the Sietch template (7 categories, 15 channels, 9 tier roles and a
badge role, category overwrites) and then gets one role update for each of its members, against
our fake Discord at its strictest (at most 50 requests in any sliding 1-s window, counted on
arrival; per-route windows; a slow role-create window). Prints: 429s received (target 0), the
busiest 1-s window the fake saw (target <= 50), the achieved request rate over the active span as
a share of 50/s (target >= 90 %), total time against the ideal (requests / 50 s), and the longest any community waited
for its first call (target <= 5 s). Then single-process ``acquire`` throughput on real Redis
(target >= 5,000/s).
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
from bench.harness import parse_args, scratch_database  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402
from arrakis_engine.synthesis.redis_bucket import RedisTokenBucket  # noqa: E402
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
    args = parse_args(ap, communities=2, members=5, workers=1)

    with scratch_database() as url:
        return run(args, url)


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
        theme = get_theme("sietch")
        communities = []
        conn = psycopg2.connect(url)
        for i in range(args.communities):
            c = engine.communities.create(name=f"Bench {i}", guild_id=str(100000000000000800 + i), theme_id="sietch",
                                          subscription="premium", actor="bench")
            g = discord.guild(c.guild_id)
            rows = []
            for m in range(args.members):
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

        worker_env = {**os.environ, **env}
        for _ in range(args.workers):
            procs.append(subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "worker"], env=worker_env,
                                          start_new_session=True, stdout=subprocess.DEVNULL))
        from rq import Worker

        while len(Worker.all(connection=engine.redis)) < args.workers:
            time.sleep(0.1)
        print(f"{args.communities} communities x {args.members} members; {args.workers} worker processes ready")

        svc = engine.synthesis
        enqueued_at = {}
        t0 = time.monotonic()
        for c in communities:
            enqueued_at[c.guild_id] = time.monotonic()
            svc.synthesize(c.id, actor="bench")
        waiting = {c.id: c for c in communities}
        while waiting:
            for cid in list(waiting):
                if svc.status(cid)["synthesized"]:
                    svc.sync_members(cid, actor="bench")
                    del waiting[cid]
            time.sleep(0.2)
        from arrakis_engine.synthesis.rq_queue import outstanding

        # queued, scheduled (a retry in its backoff, a later slice) or running: all of it is the run
        while outstanding(engine.redis):
            time.sleep(0.2)
        done = time.monotonic()

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
        return 0
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(20)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
        engine.close()
        discord.close()


if __name__ == "__main__":
    sys.exit(main())
