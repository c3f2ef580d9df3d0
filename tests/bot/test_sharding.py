"""The bot sharded, against the fake gateway with Discord's sharding rules (``arrakis_engine/
sandbox/gateway.py``): in 3,000 servers it runs the 3 shards GET /gateway/bot recommends, is not
closed 4011, sends no request per server and answers in a server of each shard from that shard;
a shard whose session drops resumes while the others keep answering; two processes splitting the
shards answer each interaction exactly once, identifying 5 s apart in their shared bucket; bad
flags and an exhausted session start limit stop with one line; a command an earlier version
registered in a server is answered and that server's copies removed once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from arrakis_bot.sharding import ShardPlan, check_session_starts, shard_of
from arrakis_engine.errors import ArrakisError
from tests.bot.conftest import RunningBot
from tests.bot.test_bot_process import process_env
from tests.fakes.discord_gateway import APP_ID, FakeDiscordBot
from tests.bot.test_gateway_session import _wait

MEMBER = "230000000000000001"
GUILDS = 3000


def _ids(n: int, start: int) -> list[str]:
    return [str(start + (i << 22) + i * 7) for i in range(n)]


@pytest.fixture(scope="module")
def fake():
    """Discord with the bot in 3,000 servers; identifies of 16 buckets at once (a large bot's
    max_concurrency), so that three shards start in seconds."""
    d = FakeDiscordBot(max_concurrency=16)  # Discord's heartbeat interval (41.25 s)
    for g in _ids(GUILDS, 10**18):
        d.guild(g)
    yield d
    d.close()


@pytest.fixture(scope="module")
def started(bot_engine, fake):
    requests = fake.requests
    running = RunningBot(bot_engine, fake)
    deadline = time.monotonic() + 20  # the commands are compared once every shard is ready
    while "verify" not in fake.commands.get("global", {}) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield running, fake.request_log[requests:]
    running.stop()


def guild_on(fake, shard: int, count: int = 3) -> str:
    return next(g for g in fake.guilds if shard_of(g, count) == shard)


def ask(fake, guild: str, timeout: float = 20):
    it = fake.wait(fake.command(guild, MEMBER, "leaderboard"), timeout=timeout)
    assert "not set up with Arrakis yet" in it.text()
    return it




def test_three_thousand_servers_three_shards_no_request_per_server(started, fake):
    _, requests = started
    assert sorted(shard for shard, _, why in fake.identifies if why == "ready") == [(0, 3), (1, 3), (2, 3)]
    assert 4011 not in fake.closes and not [why for *_, why in fake.identifies if why != "ready"]
    paths = [p for _, _, p in requests]
    per_server = [p for p in paths if any(g in p for g in re.findall(r"\d{17,20}", p) if g in fake.guilds)]
    assert per_server == []
    assert len(paths) < 20, paths  # login, /gateway/bot, one /gateway per shard, the global commands
    assert len([p for p in paths if p.endswith("/commands")]) <= 3
    for shard in range(3):
        it = ask(fake, guild_on(fake, shard))
        assert it.shard == (shard, 3) and it.attempts == 1  # its shard answered it, once


def test_a_dropped_shard_resumes_while_the_others_answer(started, bot_engine, fake):
    running, _ = started
    key = ("arrakis_gateway_reconnects_total", ("1",))
    before = bot_engine.metrics.totals().counters.get(key, 0)
    identifies = len(fake.identifies)
    resumes = len([c for c in fake.connects if c[1] == 6])
    dropped = next(s for s in fake.sessions.values() if s.ws is not None and s.shard == (1, 3))
    fake.run(fake._close(dropped.ws, 4000, "Unknown error"))
    for shard in (0, 2):  # the others answer meanwhile
        assert ask(fake, guild_on(fake, shard)).shard == (shard, 3)
    _wait(lambda: len([c for c in fake.connects if c[1] == 6]) > resumes and dropped.ws is not None, 15,
          "shard 1 to resume")
    assert [c[0] for c in fake.connects if c[1] == 6][-1] == "/gateway/resume"  # READY's resume_gateway_url
    it = ask(fake, guild_on(fake, 1))
    assert it.shard == (1, 3)
    assert len(fake.identifies) == identifies  # resumed, not identified again
    _wait(lambda: bot_engine.metrics.totals().counters.get(key, 0) == before + 1, 5, "the reconnect counted")
    assert bot_engine.metrics.totals().gauges[("arrakis_gateway_connected", ("1",))] == 1


def _bot(env: dict, log_path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "bot", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "a"))


def test_two_processes_split_the_shards_and_answer_each_interaction_once(database_url, redis_url, tmp_path):
    """Two shards in one bucket (max_concurrency 1): the processes identify 5 s apart, never
    refused, whichever starts first; each interaction reaches one of them and is answered once."""
    fake = FakeDiscordBot(heartbeat_interval_ms=1000)
    procs = []
    try:
        for g in _ids(40, 2 * 10**18):
            fake.guild(g)
        env = process_env(database_url, redis_url, tmp_path, fake)
        procs.append(_bot(env, tmp_path / "bot0.log", "--shard-count", "2", "--shard-ids", "0"))
        procs.append(_bot({**env, "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1"}, tmp_path / "bot1.log"))
        _wait(lambda: len([1 for *_, why in fake.identifies if why == "ready"]) == 2, 60, "both shards")
        _wait(lambda: "verify" in fake.commands.get("global", {}), 30, "the commands")
        time.sleep(1.0)  # each client is ready once its commands are compared
        ready = [(shard, at) for shard, at, why in fake.identifies if why == "ready"]
        assert sorted(s for s, _ in ready) == [(0, 2), (1, 2)]
        assert abs(ready[0][1] - ready[1][1]) >= 5.0  # one identify per bucket every 5 s, across processes
        assert [why for *_, why in fake.identifies] == ["ready", "ready"]  # no op 9
        answered = []
        for i in range(6):
            guild = guild_on(fake, i % 2, 2)
            it = ask(fake, guild, timeout=30)
            answered.append((it.shard[0], it.attempts, len(it.callbacks)))
            fake.guilds.pop(guild)  # the next one is another server
        assert answered == [(i % 2, 1, 1) for i in range(6)]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        fake.close()


def _one_line(args: list[str], env: dict) -> tuple[int, list[str]]:
    out = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "bot", *args], env=env, capture_output=True,
                         text=True, timeout=90)
    assert "Traceback" not in out.stderr + out.stdout
    return out.returncode, [line for line in out.stderr.splitlines() if line.startswith("error:")]


def test_no_session_start_left_stops_with_one_line_saying_when(database_url, redis_url, tmp_path):
    fake = FakeDiscordBot(session_start_total=2)
    try:
        fake.session_starts += [time.monotonic() - 3600, time.monotonic()]  # two starts today: none left
        code, errors = _one_line([], process_env(database_url, redis_url, tmp_path, fake))
        assert code == 1
        assert len(errors) == 1 and re.fullmatch(
            r"error: Discord allows no more gateway session starts now \(0 of 2 left today, 1 needed: one per "
            r"shard\); they reset in 22 h 59 min \(at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)", errors[0]), errors
        assert fake.identifies == []  # nothing identified, so nothing reset
    finally:
        fake.close()


def test_too_few_shards_for_the_servers_stops_with_one_line(started, fake, database_url, redis_url, tmp_path):
    code, errors = _one_line(["--shard-count", "1"], process_env(database_url, redis_url, tmp_path, fake))
    assert code == 1
    assert errors == ["error: Discord closed the gateway session (4011, sharding required): a shard would hold "
                      "2,500 servers or more with 1 shard(s); run more (--shard-count, or no flag for Discord's "
                      "recommendation)"]
    assert fake.closes[-1] == 4011


@pytest.mark.parametrize("args, env, message", [
    (["--shard-count", "2", "--shard-ids", "0,2"], {}, "shard 2 does not exist with --shard-count 2"),
    (["--shard-ids", "0-1"], {}, "--shard-ids (DISCORD_SHARD_IDS) needs --shard-count"),
    # `--shard-ids "$IDS"` with IDS unset: refused, not read as "every shard" (answered twice)
    (["--shard-count", "2", "--shard-ids", ""], {}, "--shard-ids names no shard (it is empty)"),
    ([], {"DISCORD_SHARD_COUNT": "two"}, "must be a whole number of shards"),
    ([], {"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "3-1"}, "the range 3-1 goes backwards"),
])
def test_bad_shard_values_one_line(args, env, message, database_url, redis_url, tmp_path):
    code, errors = _one_line(args, {**process_env(database_url, redis_url, tmp_path), **env})
    assert code == 2 and len(errors) == 1 and message in errors[0], errors  # a bad value, as a usage error


def test_shard_plans():
    assert ShardPlan.parse(None, None).shards(3) == (3, [0, 1, 2])
    assert ShardPlan.parse("4", None).shards(3) == (4, [0, 1, 2, 3])
    assert ShardPlan.parse("8", "0-2,5").shards(1) == (8, [0, 1, 2, 5])
    assert ShardPlan.parse(" 4 ", " 3 , 1 ").shards(9) == (4, [1, 3])
    for count, ids in (("0", None), ("-1", None), ("4", "4"), ("4", "1,1"), ("4", "0-2,2"), ("4", "a"),
                       ("4", ","), ("4", "1-"), (None, "0")):
        with pytest.raises(ArrakisError):
            ShardPlan.parse(count, ids)
    # the Procfile's bot on 3 dynos: each takes every third shard, by the DYNO the platform sets
    assert [ShardPlan.parse("10", "dyno/3", f"bot.{n}").ids for n in (1, 2, 3)] == [(0, 3, 6, 9), (1, 4, 7),
                                                                                    (2, 5, 8)]
    for ids, dyno in (("dyno/3", None), ("dyno/3", "bot.4"), ("dyno/11", "bot.1"), ("dyno/0", "bot.1"),
                      ("dyno", "bot.1")):
        with pytest.raises(ArrakisError, match="DISCORD_SHARD_IDS"):
            ShardPlan.parse("10", ids, dyno)
    check_session_starts({"total": 1000, "remaining": 3, "reset_after": 1000, "max_concurrency": 1}, 3)
    with pytest.raises(ArrakisError, match=r"\(2 of 1000 left today, 3 needed: one per shard\); they reset in "
                                           r"1 h 0 min"):
        check_session_starts({"total": 1000, "remaining": 2, "reset_after": 3_600_000, "max_concurrency": 1}, 3)
    check_session_starts({}, 3)  # unknown: said in a warning, not taken for "none left"
    assert os.environ.get("DISCORD_SHARD_IDS") is None  # the processes above got theirs explicitly


def test_copies_an_earlier_version_registered_in_a_server_are_removed_when_used(started, fake):
    """Earlier versions registered the admin commands in each server: a copy used is answered,
    and that server's copies are removed once (one request), not at start."""
    import aiohttp

    guild = guild_on(fake, 2)
    old = [{k: v for k, v in c.items() if k in ("name", "description", "options", "default_member_permissions")}
           for name, c in fake.commands["global"].items() if name in ("onboard", "resume", "arrakis", "badge")]

    async def put_as_the_old_version():
        async with aiohttp.ClientSession() as s:
            async with s.put(f"{fake.url}/applications/{APP_ID}/guilds/{guild}/commands", json=old,
                             headers={"Authorization": f"Bot {fake.token}"}) as r:
                assert r.status == 200, await r.text()

    fake.run(put_as_the_old_version())
    puts = len(fake.put_bodies)
    copy = fake.commands[guild]["badge"]
    data = {"id": copy["id"], "name": "badge", "type": 1, "guild_id": guild, "options": [
        {"name": "award", "type": 1, "options": [{"name": "member", "type": 6, "value": MEMBER},
                                                 {"name": "badge", "type": 3, "value": "contributor"}]}]}
    it = fake.wait(fake.raw_command(guild, MEMBER, data, permissions=1 << 5), timeout=20)
    assert it.callbacks  # the old copy still answers
    _wait(lambda: fake.commands.get(guild) == {}, 10, "the server's copies removed")
    assert fake.put_bodies[puts:] == [(guild, [])]
    again = fake.wait(fake.raw_command(guild, MEMBER, {**data, "id": copy["id"]}, permissions=1 << 5), timeout=20)
    assert again.callbacks and fake.put_bodies[puts:] == [(guild, [])]  # once


def test_each_shard_answers_as_soon_as_it_is_up(bot_engine):
    """Two shards in one bucket identify 5 s apart: the first answers its servers meanwhile
    (not "starting up" until every shard is in)."""
    import asyncio
    import threading

    from arrakis_bot.app import STARTING_UP, build_bot, shutdown

    fake = FakeDiscordBot()
    for g in _ids(1001, 3 * 10**18):
        fake.guild(g)
    client = build_bot(bot_engine, token=fake.token, api_base=fake.url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(client.astart()), daemon=True)
    thread.start()
    try:
        ready = lambda: [s for s, _, why in fake.identifies if why == "ready"]  # noqa: E731
        _wait(lambda: ready() == [(0, 2)] and "verify" in fake.commands.get("global", {}), 20, "shard 0")
        time.sleep(0.3)
        it = fake.wait(fake.command(guild_on(fake, 0, 2), MEMBER, "leaderboard"), timeout=10)
        assert ready() == [(0, 2)] and not client.is_ready  # shard 1 has not identified yet
        assert it.text() != STARTING_UP and "not set up with Arrakis yet" in it.text()
        _wait(lambda: client.is_ready, 20, "every shard")
        assert ready() == [(0, 2), (1, 2)]
        assert "not set up with Arrakis yet" in ask(fake, guild_on(fake, 1, 2)).text()
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(client), loop).result(15)
        thread.join(15)
        fake.close()
