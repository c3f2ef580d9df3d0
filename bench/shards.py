"""The bot's start-up in many servers, sharded, against the fake Discord's gateway.

    python bench/shards.py [--guilds 3000,10000] [--max-concurrency 1]

For each number of servers: the fake Discord (REST and gateway, with Discord's sharding rules:
one recommended shard per 1,000 servers, 4011 for a session of 2,500 or more, one identify per
bucket every 5 s) holds that many servers; `arrakis bot` (as the Procfile runs it, no flag) starts.
Prints the shards Discord recommended and the bot ran, the time until every shard had identified
and until a command in a server of each shard was answered from that shard, the REST requests the
start-up sent (and how many named a server: the target is 0), identifies refused or closed, and
the smallest gap between two identifies of one bucket (Discord: at least 5 s). Then the same
servers (at least 2,500) with `--shard-count 1`, to show what Discord says to an unsharded bot there.
Uses BENCH_DATABASE_URL and BENCH_REDIS_URL (defaults: loopback, Redis database 12).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_bot.sharding import shard_of  # noqa: E402
from arrakis_engine.bootstrap import build_engine  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402
from bench.harness import parse_args, scratch_database, verdict  # noqa: E402
from tests.fakes.discord_gateway import FakeDiscordBot  # noqa: E402

MEMBER = "240000000000000001"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--guilds", default="3000,10000", help="numbers of servers, comma-separated")
    ap.add_argument("--max-concurrency", type=int, default=1, help="the fake's session_start_limit.max_concurrency")
    args = parse_args(ap, guilds="30")
    logging.basicConfig(level=logging.ERROR)
    with scratch_database() as url:
        return run(args, url)


def _env(url: str, fake: FakeDiscordBot) -> dict:
    return {**os.environ, "DATABASE_URL": url,
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
            "ARRAKIS_DATA_DIR": tempfile.mkdtemp(prefix="arrakis-bench-"), "DISCORD_API_BASE": fake.url,
            "DISCORD_BOT_TOKEN": fake.token, "ARRAKIS_LOG_LEVEL": "ERROR"}


def _until(cond, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def one_size(url: str, n: int, max_concurrency: int) -> bool:
    fake = FakeDiscordBot(max_concurrency=max_concurrency)
    for i in range(n):
        fake.guild(str(10**18 + (i << 22) + i * 7))
    shards = fake.recommended_shards()
    env = _env(url, fake)
    started = time.monotonic()
    bot = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "bot"], env=env, stdout=subprocess.DEVNULL,
                           stderr=open(Path(env["ARRAKIS_DATA_DIR"]) / "bot.log", "w"))
    try:
        ready = lambda: [(s, at) for s, at, why in fake.identifies if why == "ready"]  # noqa: E731
        per_shard_ok, first_answer = [], None
        for shard in range(shards):  # each as soon as its shard is connected
            guild = next(g for g in fake.guilds if shard_of(g, shards) == shard)
            deadline = time.monotonic() + 60 + 6 * shards
            while time.monotonic() < deadline:
                if "leaderboard" not in fake.commands.get("global", {}) or fake.session_for(guild) is None:
                    time.sleep(0.05)
                    continue
                it = fake.command(guild, MEMBER, "leaderboard")
                if it.answered.wait(10) and "not set up with Arrakis yet" in it.text():
                    per_shard_ok.append(it.shard == (shard, shards) and it.attempts == 1)
                    first_answer = first_answer or time.monotonic() - started
                    break
                time.sleep(0.2)  # "starting up": every shard is not ready yet
        answered_at = time.monotonic() - started
        identified = _until(lambda: len(ready()) >= shards, 30 + 6 * shards)
        all_identified = max((at for _, at in ready()), default=started) - started
        paths = [p for _, _, p in fake.request_log]
        per_server = [p for p in paths if any(g in fake.guilds for g in re.findall(r"\d{17,20}", p))]
        refused = [why for *_, why in fake.identifies if why != "ready"]
        by_bucket: dict[int, list[float]] = {}
        for (sid, _), at in ready():
            by_bucket.setdefault(sid % max_concurrency, []).append(at)
        gaps = [b - a for ats in by_bucket.values() for a, b in zip(sorted(ats), sorted(ats)[1:])]
        ran = sorted({s for s, _ in ready()})
        print(f"{n:,} servers, max_concurrency {max_concurrency}: Discord recommends {shards} shard(s); the bot ran "
              f"{len(ran)} ({', '.join(f'{a}/{b}' for a, b in ran)})")
        first = f"{first_answer:.1f} s" if first_answer is not None else "never"
        print(f"  every shard identified after {all_identified:.1f} s; a command answered in a server of each shard "
              f"({len(per_shard_ok)}/{shards}, each from its own shard: {all(per_shard_ok) and bool(per_shard_ok)}), "
              f"shard 0's after {first}, the last after {answered_at:.1f} s")
        gap = f"{min(gaps):.2f} s (Discord: 5 s)" if gaps else "none to measure (one identify per bucket)"
        print(f"  REST requests during start-up: {len(paths)}, naming a server: {len(per_server)} (target 0); "
              f"identifies refused or closed: {refused or 'none'}; smallest gap between identifies of a bucket: "
              f"{gap}")
        return identified and len(per_shard_ok) == shards and all(per_shard_ok) and not per_server and not refused \
            and (not gaps or min(gaps) >= 5.0)
    finally:
        bot.terminate()
        bot.wait(30)
        fake.close()


def unsharded(url: str, n: int) -> None:
    fake = FakeDiscordBot()
    for i in range(n):
        fake.guild(str(10**18 + (i << 22) + i * 7))
    try:
        out = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "bot", "--shard-count", "1"],
                             env=_env(url, fake), capture_output=True, text=True, timeout=120)
        said = [line for line in out.stderr.splitlines() if line.startswith("error:")]
        print(f"{n:,} servers with --shard-count 1: exit {out.returncode}, gateway closes {fake.closes or 'none'}; "
              f"{said[0] if said else 'no error line'}")
    finally:
        fake.close()


def run(args, url: str) -> int:
    env = {"DATABASE_URL": url, "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
           "ARRAKIS_DATA_DIR": tempfile.mkdtemp(prefix="arrakis-bench-")}
    engine = build_engine(Settings.from_env(env, env_file=None))
    try:
        engine.migrator.upgrade()
        engine.redis.flushdb()
    finally:
        engine.close()
    ok = True
    sizes = [int(x) for x in str(args.guilds).split(",") if x.strip()]
    for n in sizes:
        ok = one_size(url, n, args.max_concurrency) and ok
    unsharded(url, max(2500, max(sizes)))  # Discord's limit for one session
    return verdict(args, ok)


if __name__ == "__main__":
    raise SystemExit(main())
