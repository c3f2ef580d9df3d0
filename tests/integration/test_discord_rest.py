"""Global token bucket on real Redis, and the Discord adapter against the fake Discord API."""

from __future__ import annotations

import threading
import time

import pytest

from arrakis_engine import keys
from arrakis_engine.adapters.discord.rest import DiscordError, DiscordREST
from arrakis_engine.synthesis.freeze import FreezeFlags
from arrakis_engine.adapters.discord.redis_bucket import BucketTimeout, RedisTokenBucket


@pytest.fixture
def redis(engine):
    engine.redis.flushdb()
    return engine.redis


@pytest.fixture
def role_create_limit():
    return (5, 1.0)


def make_client(redis, discord, *, limit=49, window=1.06):
    bucket = RedisTokenBucket(redis, limit=limit, window=window)
    return DiscordREST(discord.url, discord.token, redis, bucket, FreezeFlags(redis, poll=0.05)), bucket


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times)), default=0)


def test_the_global_limit_holds_in_every_sliding_window(redis):
    """``limit`` grants in any ``window`` seconds -- not capacity + rate in one second, as a token
    bucket allows -- and waiting callers are let through as soon as the oldest grant ages out."""
    b = RedisTokenBucket(redis, name="t1", limit=5, window=0.05)
    assert [b.acquire() for _ in range(6)] == [True] * 5 + [False]
    granted: list[float] = []  # the grant times Redis recorded (the times we observe carry jitter)
    start = time.perf_counter()
    for _ in range(20):
        b.acquire_with_wait(timeout=5)
        granted.append(redis.zrange(keys.bucket("t1"), -1, -1, withscores=True)[0][1])
    elapsed = time.perf_counter() - start
    assert 0.15 <= elapsed <= 0.8  # 20 grants, 5 per 50 ms, after the 5 taken at once
    assert len(set(granted)) == 20 and most_in_any_window(granted, 0.05) <= 5
    stats = b.stats()
    assert stats.granted == 25 and stats.refused == 0 and stats.capacity == 5


def test_the_limit_times_out_with_a_clear_error(redis):
    b = RedisTokenBucket(redis, name="t2", limit=1, window=5)
    b.acquire()
    with pytest.raises(BucketTimeout, match="backed up"):
        b.acquire_with_wait(timeout=2)
    assert b.stats().refused == 1 and b.stats().granted == 1  # the refused call took nothing


def test_the_limit_is_shared_across_processes(redis, redis_url):
    """Two OS processes drawing from one limit together stay within it."""
    import subprocess
    import sys

    code = ("import redis,sys,time; from arrakis_engine.adapters.discord.redis_bucket import RedisTokenBucket;"
            f"b=RedisTokenBucket(redis.Redis.from_url({redis_url!r}), name='shared', limit=10, window=0.05);"
            "[b.acquire_with_wait(timeout=10) for _ in range(200)]")
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert all(p.wait(60) == 0 for p in procs)
    elapsed = time.perf_counter() - start
    assert elapsed >= (400 - 10) / 200 * 0.95  # 400 grants at 10 per 50 ms, less the first window
    assert RedisTokenBucket(redis, name="shared", limit=10, window=0.05).stats().granted == 400


def test_crud_and_member_roles(redis, discord):
    client, bucket = make_client(redis, discord)
    g = discord.guild("111", members=2)
    role = client.create_role("111", name="Gold", color=0xFFD700, permissions=1024)
    cat = client.create_channel("111", name="INFO", type="category")
    ch = client.create_channel("111", name="rules", parent_id=cat["id"], topic="read me")
    client.update_role("111", role["id"], name="Gold!")
    user = next(iter(g.members))
    client.set_member_roles("111", user, [role["id"]])
    assert g.roles[role["id"]]["name"] == "Gold!" and g.channels[ch["id"]]["parent_id"] == cat["id"]
    assert g.members[user] == {role["id"]}
    assert bucket.stats().granted == client.calls == 5
    with pytest.raises(DiscordError) as err:
        client.delete_role("111", "424242")
    assert err.value.status == 404 and not err.value.retryable


def test_bad_token_is_final(redis, discord):
    bucket = RedisTokenBucket(redis)
    client = DiscordREST(discord.url, "wrong", redis, bucket, FreezeFlags(redis))
    discord.guild("111")
    with pytest.raises(DiscordError) as err:
        client.list_roles("111")
    assert err.value.status == 401 and not err.value.retryable


def test_outage_is_retryable(redis, discord):
    client, _ = make_client(redis, discord)
    discord.guild("111")
    discord.outage(5)
    with pytest.raises(DiscordError) as err:
        client.list_roles("111")
    assert err.value.status == 503 and err.value.retryable


def test_route_bucket_is_honoured_without_429(redis, discord):
    client, _ = make_client(redis, discord)
    discord.guild("222")
    for i in range(12):  # role creation: 5 per second here
        client.create_role("222", name=f"r{i}", color=0, permissions=0)
    assert discord.count_429 == 0
    assert len(discord.guilds["222"].roles) == 13


def test_429_is_honoured_and_counted(redis, discord):
    """A client that does not know the route yet runs into a 429 once, then waits it out."""
    client, bucket = make_client(redis, discord)
    discord.guild("333")
    other, _ = make_client(redis, discord)
    for i in range(5):
        other.create_role("333", name=f"x{i}", color=0, permissions=0)
    redis.delete("arrakis:route:POST roles 333")  # forget what the headers said
    client.create_role("333", name="late", color=0, permissions=0)
    assert discord.count_429 >= 1 and bucket.stats().rate_limited == discord.count_429


def test_freeze_holds_calls_until_lifted(redis, discord):
    client, _ = make_client(redis, discord)
    discord.guild("444")
    flags = FreezeFlags(redis)
    flags.freeze("c1")
    done = threading.Event()
    threading.Thread(target=lambda: (client.list_roles("444", community_id="c1"), done.set()), daemon=True).start()
    deadline = time.monotonic() + 5
    while not flags.waiting() and time.monotonic() < deadline:
        done.wait(0.01)
    assert flags.waiting() and not done.is_set() and discord.requests == 0
    flags.unfreeze("c1")
    assert done.wait(5) and discord.requests == 1


def test_many_members_at_fifty_per_second_without_429(redis):
    """Five guilds (member route limit 10/s each here) updated by five threads: only the global
    bucket paces them."""
    from tests.fakes.discord_api import FakeDiscord

    discord = FakeDiscord(route_limits={"member": (10, 1.0)})
    try:
        _many_members(redis, discord)
    finally:
        discord.close()


def _many_members(redis, discord):
    client, bucket = make_client(redis, discord)
    jobs = []
    for gi in range(5):
        gid = f"55{gi}"
        discord.guild(gid, members=30)
        role = client.create_role(gid, name="T", color=0, permissions=0)
        jobs.append([(gid, u, role["id"]) for u in discord.guilds[gid].members])
    jobs = [j for batch in zip(*jobs) for j in batch]  # guilds interleaved
    start_calls = bucket.stats().granted
    threads = [threading.Thread(target=lambda js=jobs[i::5]: [client.set_member_roles(g, u, [r]) for g, u, r in js])
               for i in range(5)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert discord.count_429 == 0 and discord.busiest_window <= 50
    assert bucket.stats().granted - start_calls == 150
    assert elapsed >= (150 - 49) / 49 * 1.06 * 0.95  # never faster than the limit allows
    assert all(discord.guilds[g].members[u] == {r} for g, u, r in jobs)


def test_the_member_route_draws_no_429_from_workers_sharing_its_bucket(redis):
    """Three clients (as three workers, sharing Redis) update members of one guild at once on a
    route none of them knows yet: one request goes first and its headers teach the bucket; then
    every worker keeps to it (a sliding window of our own sends, in-flight ones included), so the
    fake, which counts in any sliding window where requests arrive, never answers 429."""
    from tests.fakes.discord_api import FakeDiscord

    discord = FakeDiscord(route_limits={"member": (5, 2.0)})
    try:
        discord.guild("777", members=15)
        clients = [make_client(redis, discord)[0] for _ in range(3)]
        role = clients[0].create_role("777", name="T", color=0, permissions=0)
        users = sorted(discord.guilds["777"].members)
        start = time.monotonic()
        threads = [threading.Thread(target=lambda c=c, us=users[i::3]: [c.set_member_roles("777", u, [role["id"]])
                                                                        for u in us]) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        assert discord.count_429 == 0, discord.stats()
        assert all(discord.guilds["777"].members[u] == {role["id"]} for u in users)
        patches = [t for t, method, path in discord.request_log if method == "PATCH" and "/members/" in path]
        assert len(patches) == 15 and most_in_any_window(patches, 2.0) <= 5
        assert elapsed >= 4.0  # 15 updates at 5 per 2 s: three windows at least
    finally:
        discord.close()


def test_the_fake_counts_member_updates_per_guild_in_any_sliding_ten_seconds(discord):
    """Discord's member route at its strictest: 10 reads or updates per 10 s per guild, counted
    in any sliding window where they arrive, announced in X-RateLimit-* headers; another guild
    has its own bucket."""
    import httpx

    discord.guild("888", members=12)
    discord.guild("889", members=1)
    users = sorted(discord.guilds["888"].members)
    h = {"Authorization": f"Bot {discord.token}"}
    with httpx.Client(base_url=discord.url, headers=h) as http:
        answers = [http.patch(f"/guilds/888/members/{u}", json={"roles": []}) for u in users[:10]]
        assert [a.status_code for a in answers] == [200] * 10
        assert answers[0].headers["X-RateLimit-Limit"] == "10" and answers[-1].headers["X-RateLimit-Remaining"] == "0"
        assert 9.0 < float(answers[0].headers["X-RateLimit-Reset-After"]) <= 10.0
        refused = http.patch(f"/guilds/888/members/{users[10]}", json={"roles": []})
        assert refused.status_code == 429 and refused.headers["X-RateLimit-Scope"] == "user"
        assert refused.json()["global"] is False and 9.0 < refused.json()["retry_after"] <= 10.0
        other = sorted(discord.guilds["889"].members)[0]
        assert http.patch(f"/guilds/889/members/{other}", json={"roles": []}).status_code == 200
        assert http.get(f"/guilds/888/members/{users[11]}").status_code == 429  # the same bucket
    assert discord.route_429["member"] == 2


def test_requests_delivered_in_a_bunch_by_a_stalled_server_stay_within_the_global_limit(redis):
    """Discord counts a request where it arrives. A server (or network) that stalls for half a
    second and then takes in everything sent meanwhile sees those requests in a bunch: each one
    stays counted by our gate until its answer comes back, so a bunch plus what follows never
    passes 50 in any second where the server counts them (here: when its handler runs)."""
    import asyncio

    from tests.fakes.discord_api import FakeDiscord

    discord = FakeDiscord(route_limits={"default": (1000, 1.0)})
    try:
        for g in range(4):
            discord.guild(f"88{g}")
        clients = [make_client(redis, discord)[0] for _ in range(4)]
        stop = threading.Event()

        async def stall():
            time.sleep(0.5)  # the server's loop takes nothing in for half a second

        def stalls():
            while not stop.wait(0.7):
                asyncio.run_coroutine_threadsafe(stall(), discord._loop).result(5)

        def send(c, g):
            while not stop.is_set():
                c.list_roles(g)

        threads = [threading.Thread(target=send, args=(c, f"88{i}")) for i, c in enumerate(clients)]
        threads.append(threading.Thread(target=stalls))
        for t in threads:
            t.start()
        time.sleep(5)
        stop.set()
        for t in threads:
            t.join(10)
        assert discord.requests > 100  # it did run at the limit for a while
        assert discord.count_429 == 0 and discord.busiest_window <= 50, discord.stats()
    finally:
        discord.close()


def test_a_pause_written_into_redis_for_years_ends_when_it_is_lifted(redis, discord):
    """Someone who can write to Redis sets Discord's global pause for about three years: callers
    wait, but look again every few seconds, so lifting it lets them go at once (they used to
    sleep out the whole pause, lifted or not)."""
    client, _ = make_client(redis, discord)
    discord.guild("445")
    redis.set(keys.DISCORD_GLOBAL_PAUSE, "1", ex=100_000_000)
    done = threading.Event()
    threading.Thread(target=lambda: (client.list_roles("445"), done.set()), daemon=True).start()
    assert not done.wait(1.5) and discord.requests == 0  # held while the pause stands
    redis.delete(keys.DISCORD_GLOBAL_PAUSE)
    assert done.wait(10) and discord.requests == 1
