"""Kill switch activation under load: 1,000 live wizard sessions and 4 busy workers.

    python bench/killswitch.py [--runs 20] [--sessions 1000] [--workers 4]

Each run: 1,000 wizard sessions are started, communities are synthesizing on 4 worker processes
against our strict fake Discord; a platform admin activates the global kill switch (TOTP checked,
freeze flags, sessions revoked, signing cut off, audit), then releases it. Prints the activation
time (p50 and p99 over the runs; target < 1 s) as the operator sees it (call to return), the slowest
part, and the time from activation's return to the last Discord request the fake saw (target:
nothing after it but a request already on the wire, a few ms).
Uses BENCH_DATABASE_URL and BENCH_REDIS_URL (defaults: loopback, Redis database 12).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.bootstrap import build_engine  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402
from bench.harness import parse_args, pct, scratch_database, verdict  # noqa: E402
from tests.fakes.discord_api import FakeDiscord  # noqa: E402
from tests.fixtures.operators import add_operator, reenrol  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--communities", type=int, default=8)
    args = parse_args(ap, runs=2, sessions=10, workers=1, communities=2)
    logging.basicConfig(level=logging.ERROR)  # the kill switch's own warnings would drown the figures
    with scratch_database() as url:
        return run(args, url)


def run(args, url: str) -> int:
    discord = FakeDiscord(route_limits={"create_role": (3, 1.0)})  # slow role creation keeps workers busy
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": tempfile.mkdtemp(prefix="arrakis-bench-"),
           "DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token, "ARRAKIS_LOG_LEVEL": "ERROR"}
    engine = build_engine(Settings.from_env(env, env_file=None))
    procs: list[subprocess.Popen] = []
    try:
        engine.migrator.upgrade()
        engine.redis.flushdb()
        enrolment = add_operator(engine, "bench-admin", ["platform_admin"], fake=discord)
        backups = list(enrolment.backup_codes)
        actor = engine.operators.get("bench-admin").actor()
        communities = []
        for i in range(args.communities):
            c = engine.communities.create(name=f"KS {i}", guild_id=str(10**18 + 770_000 + i), theme_id="sietch",
                                          subscription="premium", actor="bench")
            discord.guild(c.guild_id)
            communities.append(c)
        for _ in range(args.workers):
            procs.append(subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "worker"],
                                          env={**os.environ, **env}, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        activation, tails, slowest = [], [], {}
        codes_used = 0
        for r in range(args.runs):
            for i in range(args.sessions):
                engine.wizard.start(communities[i % len(communities)].guild_id, str(10**17 + r * 100_000 + i))
            # Keep the workers busy: new communities to synthesize every run (role creation at
            # 3/s on the fake keeps each one going for seconds).
            for k in range(2):
                c = engine.communities.create(name=f"KS run {r}.{k}", guild_id=str(10**18 + 780_000 + r * 100 + k), theme_id="sietch",
                                              subscription="premium", actor="bench")
                discord.guild(c.guild_id)
                engine.synthesis.synthesize(c.id)
            start_requests = discord.requests
            deadline = time.monotonic() + 20
            while discord.requests < start_requests + 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            # A fresh TOTP step every run is 30 s apart; backup codes stand in (10 per enrolment).
            if codes_used >= 9:
                enrolment = reenrol(engine, "bench-admin", fake=discord)
                backups, codes_used = list(enrolment.backup_codes), 0
            code_on, code_off = backups.pop(), backups.pop()
            codes_used += 2
            t0 = time.perf_counter()
            report = engine.killswitch.activate(actor, scope="global", reason=f"bench run {r}", code=code_on)
            returned = time.monotonic()
            activation.append((time.perf_counter() - t0) * 1000)
            for p in report.parts:
                slowest[p.part] = max(slowest.get(p.part, 0.0), p.ms)
            time.sleep(1.0)
            late = [t - returned for t, _, _ in discord.request_log if t > returned]
            tails.append(max(late) * 1000 if late else 0.0)
            engine.killswitch.release(actor, scope="global", code=code_off)
        print(f"runs: {args.runs}, live wizard sessions per run: {args.sessions}, busy workers: {args.workers}")
        print(f"activation (call to return): p50 {pct(activation, 50):.1f} ms, p99 {pct(activation, 99):.1f} ms, "
              f"max {max(activation):.1f} ms (target < 1000 ms)")
        print("slowest part over all runs: " + ", ".join(f"{k} {v:.1f} ms" for k, v in
                                                          sorted(slowest.items(), key=lambda kv: -kv[1])))
        print(f"last Discord request after activation returned: max {max(tails):.1f} ms, "
              f"median {statistics.median(tails):.1f} ms (0 = none arrived after it)")
        print(f"Discord requests in all: {discord.requests}, 429s: {discord.count_429}")
        return verdict(args, pct(activation, 99) < 1000)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:  # a worker held by a freeze: never left running
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        engine.close()
        discord.close()


if __name__ == "__main__":
    raise SystemExit(main())
