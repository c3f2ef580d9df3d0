"""200 concurrent slash commands against the fake Discord's gateway.

    python bench/bot.py [--commands 200] [--rounds 3] [--compare-runs 6]

The bot runs as its own process (`arrakis bot`, as the Procfile runs it) and connects to our
strict fake Discord (gateway and REST), which runs here; a community of 200 ranked members; each round sends 200 INTERACTION_CREATE events at once
(/profile, /leaderboard and /badges by 200 different members). Prints the time from an
interaction being sent to its first response (an answer or a deferral) as p50 / p99 / max
(target p99 < 1 s, always < 3 s), how many were deferred, and the heartbeat delay (how late
heartbeats came against their 1 s interval while the commands ran).

Then what recording metrics costs, in the same run: ``--compare-runs`` times, two bots run side
by side, one with ``ARRAKIS_METRICS=on`` and one with ``off``, each on its own fake Discord, and
are given the same commands at the same moments (the machine's other load falls on both alike;
which fake has which setting swaps every time); one warm-up round, then ``--rounds`` measured
rounds. Prints the median over the pairs of each setting's p50 and p99 and of the bot process's
CPU time per command (what recording adds to each answer), and on/off as ratios (target within 5 %).
Uses BENCH_DATABASE_URL and BENCH_REDIS_URL (defaults: loopback, Redis database 12).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.bootstrap import build_engine  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402
from arrakis_engine.themes import get_theme  # noqa: E402
from bench.harness import cpu_seconds, parse_args, pct, scratch_database  # noqa: E402
from tests.fakes.discord_gateway import FakeDiscordBot  # noqa: E402

GUILD = "100000000000000042"
COMMANDS = ("profile", "leaderboard", "badges")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare-runs", type=int, default=6,
                    help="pairs of bots, one with ARRAKIS_METRICS on and one off, side by side (0: no comparison)")
    args = parse_args(ap, commands=5, rounds=1, compare_runs=1)
    logging.basicConfig(level=logging.ERROR)
    with scratch_database() as url:
        return run(args, url)


def one_round(fake, members: list[str]) -> tuple[list[float], int, int]:
    """One command per member, all at once: (times to first response, deferred, without their answer)."""
    sent = [fake.command(GUILD, did, COMMANDS[i % len(COMMANDS)]) for i, did in enumerate(members)]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(it.callbacks and it.original and not
                                                  it.original.get("loading") for it in sent):
        time.sleep(0.02)
    firsts, deferred, failed = [], 0, 0
    for it in sent:
        if not it.callbacks:
            failed += 1
            continue
        firsts.append(it.first_response_after)
        deferred += it.callbacks[0]["type"] == 5
        failed += not (it.original and it.original.get("embeds"))
    time.sleep(1.0)
    return firsts, deferred, failed


def start_bot(fake, env: dict, metrics: str) -> subprocess.Popen:
    """`arrakis bot` as its own process on ``fake``, with ARRAKIS_METRICS=``metrics``; returns once it is ready."""
    fake.identified.clear()
    bot = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "bot"],
                           env={**os.environ, **env, "DISCORD_API_BASE": fake.url, "DISCORD_BOT_TOKEN": fake.token,
                                "ARRAKIS_METRICS": metrics}, stdout=subprocess.DEVNULL,
                           stderr=open(Path(env["ARRAKIS_DATA_DIR"]) / "bot.log", "a"))
    fake.wait_identified(60)
    deadline = time.monotonic() + 60
    while "profile" not in fake.commands.get("global", {}) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the client marks itself ready after registering
    return bot


def paired_round(fakes: list, members: list[str]) -> list[list[float]]:
    """One command per member to each fake's bot at once, interleaved (both bots answer under the
    same load of the machine): each bot's times to first response."""
    sent: list[list] = [[] for _ in fakes]
    for i, did in enumerate(members):
        order = range(len(fakes)) if i % 2 == 0 else reversed(range(len(fakes)))  # neither always first
        for n in order:
            sent[n].append(fakes[n].command(GUILD, did, COMMANDS[i % len(COMMANDS)]))
    everything = [it for group in sent for it in group]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(it.callbacks and it.original and not
                                                  it.original.get("loading") for it in everything):
        time.sleep(0.02)
    time.sleep(1.0)
    return [[it.first_response_after for it in group if it.callbacks] for group in sent]


def compare(args, fake, env: dict, members: list[str]) -> bool:
    """Two bots at once, one recording metrics and one not, each on its own fake Discord and
    given the same commands at the same moments (so the machine's other load falls on both);
    which fake has which setting swaps at every pair. True if within 5 %."""
    # Discord's own heartbeat interval here: what is compared is the answers, and two bots and two
    # fakes on a loaded machine may miss a 1-s heartbeat (the session would time out midway)
    fake.heartbeat_interval_ms = 41250
    other = FakeDiscordBot()
    other.guild(GUILD, members=members, name="Bench")
    fakes = [fake, other]
    figures: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
    try:
        for i in range(args.compare_runs):
            settings = ["on", "off"] if i % 2 == 0 else ["off", "on"]
            bots = [start_bot(f, env, s) for f, s in zip(fakes, settings)]
            try:
                paired_round(fakes, members)  # warm-up: connections, caches
                firsts: list[list[float]] = [[], []]
                cpu0 = [cpu_seconds(b.pid) for b in bots]
                for _ in range(args.rounds):
                    for n, got in enumerate(paired_round(fakes, members)):
                        firsts[n] += got
                cpu = [(cpu_seconds(b.pid) - c) / max(1, len(f)) for b, c, f in zip(bots, cpu0, firsts)]
            finally:
                for b in bots:
                    b.terminate()
                for b in bots:
                    b.wait(20)
            line = []
            for n, setting in enumerate(settings):
                figures[setting].append((statistics.median(firsts[n]), pct(firsts[n], 99), cpu[n]))
                line.append(f"metrics {setting}: p50 {figures[setting][-1][0] * 1000:.0f} ms, p99 "
                            f"{figures[setting][-1][1] * 1000:.0f} ms, CPU {cpu[n] * 1000:.2f} ms per command")
            print(f"  pair {i + 1}: " + "; ".join(line))
    finally:
        other.close()
    def figure(i: int) -> tuple[float, float, float]:
        """(median with metrics on, median off, median of the pairs' on/off ratios) of figure ``i``."""
        return (statistics.median(f[i] for f in figures["on"]), statistics.median(f[i] for f in figures["off"]),
                statistics.median(a[i] / b[i] for a, b in zip(figures["on"], figures["off"])))

    (on50, off50, r50), (on99, off99, r99), (on_cpu, off_cpu, r_cpu) = figure(0), figure(1), figure(2)
    within = abs(r50 - 1) <= 0.05 and r_cpu <= 1.05
    print(f"metrics recording on vs off ({len(figures['on'])} pairs of bots side by side; medians, and the median "
          f"of the pairs' ratios): p50 {on50 * 1000:.0f} ms vs {off50 * 1000:.0f} ms, ratio {r50:.3f}; "
          f"p99 {on99 * 1000:.0f} ms vs {off99 * 1000:.0f} ms, ratio {r99:.3f}; bot CPU per command "
          f"{on_cpu * 1000:.2f} ms vs {off_cpu * 1000:.2f} ms, ratio {r_cpu:.3f} (target p50 and CPU within 5 %)  "
          f"{'PASS' if within else 'FAIL'}")
    return within or args.quick


def run(args, url: str) -> int:
    fake = FakeDiscordBot(heartbeat_interval_ms=1000)
    env = {"DATABASE_URL": url, "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"),
           "ARRAKIS_DATA_DIR": tempfile.mkdtemp(prefix="arrakis-bench-"), "DISCORD_API_BASE": fake.url,
           "DISCORD_BOT_TOKEN": fake.token, "ARRAKIS_LOG_LEVEL": "ERROR"}
    engine = build_engine(Settings.from_env(env, env_file=None))
    bot = None
    try:
        engine.migrator.upgrade()
        engine.redis.flushdb()
        members = [str(200000000000000000 + i) for i in range(args.commands)]
        fake.guild(GUILD, members=members, name="Bench")
        c = engine.communities.create(name="Bench", guild_id=GUILD, theme_id="basic", subscription="free",
                                      actor="bench")
        theme = get_theme("basic")
        with engine.db.tenant(c.id):
            for i, did in enumerate(members):
                p = engine.repos.profiles.create(discord_id=did)
                engine.repos.profiles.update_standing(p.id, tier=theme.tier_for_rank(i % 100 + 1), rank=i + 1)
        bot = start_bot(fake, env, "on")
        session = next(s for s in fake.sessions.values() if s.ws is not None)
        firsts, deferred, failed = [], 0, 0
        started = time.monotonic()
        for _ in range(args.rounds):
            f, d, bad = one_round(fake, members)
            firsts += f
            deferred += d
            failed += bad
        ended = time.monotonic()
        beats = [t for t in session.heartbeats if started - 1 <= t <= ended]
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        late = [max(0.0, g - fake.heartbeat_interval_ms / 1000) for g in gaps]
        n = len(firsts)
        print(f"{args.rounds} rounds of {args.commands} concurrent slash commands ({', '.join(COMMANDS)}): "
              f"{n} answered, {failed} without their answer, {deferred} deferred")
        print(f"time to first response: p50 {statistics.median(firsts) * 1000:.0f} ms, "
              f"p99 {pct(firsts, 99) * 1000:.0f} ms, max {max(firsts) * 1000:.0f} ms (target p99 < 1000 ms, "
              f"always < 3000 ms)")
        print(f"heartbeats during the run: {len(gaps)} intervals of {fake.heartbeat_interval_ms} ms; late by "
              f"at most {max(late) * 1000:.0f} ms (mean {statistics.mean(late) * 1000:.0f} ms); gateway closes: "
              f"{fake.closes or 'none'}")
        ok = failed == 0 and max(firsts) < 3
        if args.compare_runs:
            bot.terminate()
            bot.wait(20)
            bot = None
            ok = compare(args, fake, env, members) and ok
        return 0 if ok else 1
    finally:
        if bot is not None:
            bot.terminate()
            bot.wait(20)
        engine.close()
        fake.close()


if __name__ == "__main__":
    sys.exit(main())
