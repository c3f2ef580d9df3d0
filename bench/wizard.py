"""Wizard sessions under load on real Redis.

    python bench/wizard.py [--sessions 1000] [--threads 32]

Starts ``--sessions`` wizard sessions at once (``--threads`` threads driving them) and steps
each through to REVIEW. Prints p50/p99 step latency (target p99 < 50 ms) and Redis memory per
session. Uses BENCH_REDIS_URL (default loopback database 11, emptied first); deploy is not part
of this run, so no database is touched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.wizard.wizard_service import WizardService  # noqa: E402
from arrakis_engine.storage.wizard_sessions import SessionStore  # noqa: E402
from bench.harness import parse_args  # noqa: E402

STEPS = [None, {"chain": "berachain"},
         {"assets": [{"kind": "erc20", "address": "0x" + "ab" * 20, "decimals": 18},
                     {"kind": "erc721", "address": "0x" + "cd" * 20}]},
         {"template": "basic"}, {"roles": {"Gold": "create", "Silver": "create", "Bronze": "create"}},
         {"channel_template": "basic"}]



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=32)
    args = parse_args(ap, sessions=10, threads=4)
    r = redis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"))
    r.flushdb()
    before = r.info("memory")["used_memory"]
    # No database in this run: every guild is new, on the free plan.
    wiz = WizardService(SessionStore(r), subscription_of=lambda guild_id: "free")
    latencies: list[float] = []

    def drive(i: int) -> None:
        guild, user = str(10**17 + i), str(i)
        t = time.perf_counter()
        s = wiz.start(guild, user)
        latencies.append(time.perf_counter() - t)
        for data in STEPS:
            t = time.perf_counter()
            s = wiz.step(s.id, user, data, submission_id=f"{i}-{s.state}")
            latencies.append(time.perf_counter() - t)
        assert s.state == "REVIEW"

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(drive, range(args.sessions)))
    elapsed = time.perf_counter() - t0
    after = r.info("memory")["used_memory"]
    q = statistics.quantiles(latencies, n=100)
    print(f"{args.sessions} sessions to REVIEW with {args.threads} threads in {elapsed:.1f} s "
          f"({len(latencies)} calls, {len(latencies) / elapsed:,.0f}/s)")
    print(f"step latency p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms (target p99 < 50 ms)  "
          f"{'PASS' if q[98] < 0.050 else 'FAIL'}")
    print(f"Redis memory per session: {(after - before) / args.sessions / 1024:.1f} KiB")
    r.flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
