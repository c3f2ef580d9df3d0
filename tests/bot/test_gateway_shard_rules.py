"""The fake gateway's sharding rules, as Discord documents them at their strictest, seen by a bare
websocket client: one recommended shard per 1,000 guilds, 4010 for an invalid shard, 4011 for a
session of 2,500 guilds or more, op 9 for a second identify of a bucket within 5 seconds, the
session starts counting down (and, at zero, every session ended), a guild's events only on its
shard."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from tests.fakes.discord_gateway import FakeDiscordBot


def guild_ids(n: int, start: int = 10**18) -> list[str]:
    return [str(start + (i << 22) + i) for i in range(n)]  # consecutive shards, 0, 1, 2, ...


@pytest.fixture
def fake():
    f = FakeDiscordBot(max_concurrency=2, session_start_total=8)
    yield f
    f.close()


async def _identify(fake, shard, *, token=None) -> tuple:
    """Connect and identify: ("ready", READY's d, ws, session) / ("op9",) / ("closed", code)."""
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"ws://127.0.0.1:{fake.port}/gateway/ws?v=10&encoding=json")
    hello = json.loads((await ws.receive()).data)
    assert hello["op"] == 10
    d = {"token": token or fake.token, "intents": 1, "properties": {}}
    if shard is not None:
        d["shard"] = shard
    await ws.send_str(json.dumps({"op": 2, "d": d}))
    msg = await ws.receive(timeout=10)
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
        code = ws.close_code
        await session.close()
        return ("closed", code)
    payload = json.loads(msg.data)
    if payload["op"] == 9:
        await ws.close()
        await session.close()
        return ("op9", payload["d"])
    assert payload["t"] == "READY"
    creates = []
    for _ in payload["d"]["guilds"]:
        creates.append(json.loads((await ws.receive(timeout=10)).data)["d"]["id"])
    return ("ready", payload["d"], creates, ws, session)


async def _gateway_bot(fake) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{fake.url}/gateway/bot", headers={"Authorization": f"Bot {fake.token}"}) as r:
            assert r.status == 200
            return await r.json()


def test_recommended_shards_and_invalid_or_oversized_sessions(fake):
    assert fake.run(_gateway_bot(fake))["shards"] == 1
    for g in guild_ids(1001):
        fake.guild(g)
    assert fake.run(_gateway_bot(fake))["shards"] == 2  # one per 1,000 guilds
    for bad in ([2, 2], [-1, 2], [0, 0], [1], ["0", "2"]):
        assert fake.run(_identify(fake, bad)) == ("closed", 4010), bad
    for g in guild_ids(1499, start=2 * 10**18):
        fake.guild(g)
    assert len(fake.guilds) == 2500
    assert fake.run(_gateway_bot(fake))["shards"] == 3
    assert fake.run(_identify(fake, None)) == ("closed", 4011)  # unsharded at 2,500 guilds
    time.sleep(5.05)  # bucket 0 identified just now
    assert fake.run(_identify(fake, [0, 1])) == ("closed", 4011)


def test_each_shard_gets_only_its_guilds_and_buckets_are_paced(fake):
    ids = guild_ids(6)

    async def scenario():
        for g in ids:
            fake.guild(g)
        first = await _identify(fake, [0, 3])   # bucket 0
        second = await _identify(fake, [1, 3])  # bucket 1: at the same time is fine
        again = await _identify(fake, [2, 3])   # bucket 0 again within 5 s: op 9
        try:
            return first[0], first[2], second[0], second[2], again
        finally:
            for r in (first, second):
                await r[3].close()
                await r[4].close()

    a, a_guilds, b, b_guilds, again = fake.run(scenario())
    assert (a, b) == ("ready", "ready")
    assert a_guilds == [g for g in ids if (int(g) >> 22) % 3 == 0] and len(a_guilds) == 2
    assert b_guilds == [g for g in ids if (int(g) >> 22) % 3 == 1] and len(b_guilds) == 2
    assert again == ("op9", False)
    assert [why for _, _, why in fake.identifies] == ["ready", "ready", "identified too fast"]


def test_session_starts_count_down_and_none_left_ends_every_session():
    fake = FakeDiscordBot(max_concurrency=4, session_start_total=4)
    try:
        _session_starts(fake)
    finally:
        fake.close()


def _session_starts(fake):
    left = [fake.run(_gateway_bot(fake))["session_start_limit"]["remaining"]]
    assert fake.run(_gateway_bot(fake))["session_start_limit"]["max_concurrency"] == 4
    fake.guild(guild_ids(1)[0])

    async def scenario():
        open_ = []
        for shard in range(4):  # four buckets: no wait between them
            r = await _identify(fake, [shard, 4])
            assert r[0] == "ready", r
            open_.append(r)
            left.append((await _gateway_bot(fake))["session_start_limit"]["remaining"])
        over = await _identify(fake, [0, 4])
        codes = set()
        for r in open_:
            msg = await r[3].receive(timeout=5)
            codes.add(msg.data if msg.type == aiohttp.WSMsgType.CLOSE else msg.type)
        for r in open_:
            await r[4].close()
        return over, codes

    over, codes = fake.run(scenario(), timeout=60)
    assert left == [4, 3, 2, 1, 0]
    limit = fake.session_start_limit()
    assert limit["remaining"] == 0 and 0 < limit["reset_after"] <= 86_400_000
    assert over == ("closed", 4004)
    assert codes == {4004}  # Discord ends every session and resets the token
    assert fake.run(_identify(fake, [1, 4])) == ("closed", 4004)  # the old token no longer works
