"""Metrics on the real parts: Discord calls through the fake Discord, jobs through a real RQ
worker, the wizard, signing, MFA and the policy gate through the engine's use cases; the shared
figures in real Redis, exposed the way ``arrakis web`` exposes them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace

import pyotp
import pytest
from prometheus_client import generate_latest

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.errors import MfaRefused
from arrakis_engine.metrics import NULL_METRICS, success_metrics
from arrakis_engine.adapters.prometheus import platform_registry
from arrakis_engine.adapters.rq.queue import work_until_done
from tests.fixtures.workers import member_update
from tests.integration.test_approvals import medium_plan, rc, write_plan
from tests.integration.test_wizard import to_review


def scrape(engine) -> str:
    """What ``arrakis web``'s /metrics answers, after this engine's flusher sent its figures."""
    engine._flusher.flush()
    return generate_latest(platform_registry(engine.metrics_store, engine.platform_gauges)).decode()


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def snowflake() -> str:
    return str(10**17 + uuid.uuid4().int % (9 * 10**17))


def test_discord_calls_are_counted_by_route_template_with_no_ids(e, discord):
    gid, member = snowflake(), snowflake()
    g = discord.guild(gid, members=[member])
    c = e.communities.create(name="Counted", guild_id=gid, theme_id="basic", subscription="free", actor="test")
    role = e.discord.create_role(gid, name="Gold", color=0, permissions=0, community_id=c.id)
    for _ in range(3):
        e.discord.list_roles(gid, community_id=c.id)
    e.discord.set_member_roles(gid, member, [role["id"]], community_id=c.id)
    assert role["id"] in g.members[member]
    text = scrape(e)
    assert value(text, 'arrakis_discord_requests_total{route="/guilds/{guild_id}/roles",status="200"}') == 4
    assert value(text, 'arrakis_discord_requests_total{route="/guilds/{guild_id}/members/{user_id}",status="200"}') \
        == 1
    assert value(text, "arrakis_discord_bucket_wait_seconds_count") == 5
    # no guild, member, role or community id in any label: series stay bounded
    for secret in (gid, member, role["id"], str(c.id)):
        assert secret not in text
    assert value(text, 'arrakis_discord_429_total{scope="global"}') == 0  # exposed as 0 before any 429


def test_a_429_is_counted_by_its_scope(settings, engine):
    """A fake Discord that allows 3 calls a second while the engine paces at 49: Discord's
    429s (global) are counted, honoured and retried."""
    from tests.fakes.discord_api import FakeDiscord

    fake = FakeDiscord(global_limit=3)
    engine.redis.flushdb()
    eng = build_engine(replace(settings, discord_api_base=fake.url, discord_bot_token=fake.token))
    try:
        gid = snowflake()
        fake.guild(gid)
        for _ in range(6):
            eng.discord.list_roles(gid)
        text = scrape(eng)
        assert fake.count_429 > 0
        assert value(text, 'arrakis_discord_429_total{scope="global"}') == fake.global_429 > 0
        assert value(text, 'arrakis_discord_requests_total{route="/guilds/{guild_id}/roles",status="429"}') \
            == fake.count_429
        assert next(m for m in eng.operations.success() if m.name == "Discord 429s").met is False
    finally:
        eng.close()
        fake.close()


def test_recording_a_discord_call_adds_no_redis_round_trip(settings, engine, discord, tmp_path):
    """On a Redis of its own (nothing else talks to it), the commands Redis processes for five
    Discord calls are the same with the recorder as without it: figures go out with the flusher."""
    server, url = _private_redis(tmp_path)
    eng = build_engine(replace(settings, redis_url=url, discord_api_base=discord.url,
                               discord_bot_token=discord.token, metrics_flush=3600))
    try:
        gid = snowflake()
        discord.guild(gid)
        eng.discord.list_roles(gid)  # the route's first call probes its bucket; later ones do not

        def commands(n: int) -> int:
            """Commands this process sent for ``n`` calls (Lua scripts' own are no round trips)."""
            return len(_redis_commands(url, eng.redis, lambda: [eng.discord.list_roles(gid) for _ in range(n)]))

        recorder = eng.discord.metrics
        eng.discord.metrics = NULL_METRICS
        without = commands(5)
        eng.discord.metrics = recorder
        with_recorder = commands(5)
        assert with_recorder == without > 0
        assert recorder.totals().counters[("arrakis_discord_requests_total",
                                           ("/guilds/{guild_id}/roles", "200"))] == 6
        flushed = int(eng.redis.info("stats")["total_commands_processed"])
        eng._flusher.flush()  # one pipeline for everything recorded
        assert eng.redis.hlen("arrakis:metrics:counters") >= 1
        assert int(eng.redis.info("stats")["total_commands_processed"]) > flushed
    finally:
        eng.close()
        server.stop()


def test_recording_a_job_adds_no_redis_round_trip(settings, engine, discord, tmp_path):
    """On a Redis of its own, a worker running a member's role update (a job and its Discord call)
    sends Redis the same commands with metrics recording on as with ARRAKIS_METRICS=off: the job's
    figures go out with the flusher, later, in one pipeline."""
    server, url = _private_redis(tmp_path)
    common = dict(redis_url=url, discord_api_base=discord.url, discord_bot_token=discord.token, metrics_flush=3600)
    on, off = build_engine(replace(settings, **common)), build_engine(replace(settings, metrics=False, **common))
    try:
        gid, members = snowflake(), [snowflake() for _ in range(4)]
        discord.guild(gid, members=members)
        c = on.communities.create(name="Round trips", guild_id=gid, theme_id="basic", subscription="free",
                                  actor="test")

        def commands(eng, member: str) -> int:
            """Commands sent to Redis while ``eng`` runs one role update, as MONITOR saw them
            (those a Lua script ran inside Redis are not round trips)."""
            member_update(eng, c, member, key=f"round-trips-{member}")
            seen = _redis_commands(url, eng.redis, lambda: work_until_done(eng, timeout=60))
            # The worker's look for retries whose wait is over (ZRANGEBYSCORE of each queue's
            # scheduled jobs) runs on its own clock, at most once a second, whatever the job:
            # how many fall in a run depends on timing, not on recording, so it is left out.
            return sorted(cmd for cmd in (c.split(" ", 1)[0].upper() for c in seen) if cmd != "ZRANGEBYSCORE")

        commands(on, members[0])  # a process's first call of a route probes its bucket; later ones do not
        commands(off, members[1])
        with_recorder, without = commands(on, members[2]), commands(off, members[3])
        assert with_recorder == without and len(without) > 0
        assert not any("metrics" in c for c in with_recorder)
        assert on.metrics.totals().counters[("arrakis_jobs_total", ("ASSIGN_ROLE", "ok"))] == 2
        assert off.metrics.totals().counters == {}
    finally:
        on.close()
        off.close()
        server.stop()


def test_a_process_with_metrics_off_records_nothing_and_still_reads_the_shared_figures(settings, discord, engine):
    """ARRAKIS_METRICS=off (what the benchmarks compare with): Discord calls leave no figure in
    the process or in Redis; `arrakis web` of such a process still exports the
    figures the other processes send."""
    engine.redis.flushdb()
    on = build_engine(replace(settings, discord_api_base=discord.url, discord_bot_token=discord.token))
    off = build_engine(replace(settings, discord_api_base=discord.url, discord_bot_token=discord.token,
                               metrics=False))
    try:
        gid = snowflake()
        discord.guild(gid)
        for _ in range(3):
            off.discord.list_roles(gid)
        assert not off.metrics.enabled and off.metrics.totals().counters == {}
        route = 'arrakis_discord_requests_total{route="/guilds/{guild_id}/roles",status="200"}'
        exported = generate_latest(platform_registry(off.metrics_store, off.platform_gauges)).decode()
        assert value(exported, route) == 0
        on.discord.list_roles(gid)
        assert value(scrape(on), route) == 1  # the other process's call, and only it
        exported = generate_latest(platform_registry(off.metrics_store, off.platform_gauges)).decode()
        assert value(exported, route) == 1
    finally:
        off.close()
        on.close()
    assert engine.metrics_store.snapshot().counters[("arrakis_discord_requests_total",
                                                     ("/guilds/{guild_id}/roles", "200"))] == 1


def test_jobs_are_counted_and_figures_from_two_processes_add_up(e, discord, engine):
    gid = snowflake()
    discord.guild(gid)
    c = e.communities.create(name="Jobs", guild_id=gid, theme_id="basic", subscription="free", actor="test")
    e.synthesis.synthesize(c.id, actor="test")
    work_until_done(e, timeout=120)
    other = build_engine(e.settings)  # another process: its own recorder, the same Redis
    try:
        other.metrics.inc("arrakis_jobs_total", "SYNTHESIZE_COMMUNITY", "ok", amount=2)
        other._flusher.flush()
        text = scrape(e)
        ran = e.metrics.totals().counters[("arrakis_jobs_total", ("SYNTHESIZE_COMMUNITY", "ok"))]
        assert ran >= 1
        assert value(text, 'arrakis_jobs_total{outcome="ok",type="SYNTHESIZE_COMMUNITY"}') == ran + 2
        assert value(text, 'arrakis_queue_depth{priority="normal"}') == 0
        assert value(text, "arrakis_dead_letters") == 0
    finally:
        other.close()


def test_wizard_signing_mfa_and_gate_figures_and_the_success_metrics(e, make_operator, tmp_path):
    wiz = e.wizard
    done = to_review(wiz, snowflake())
    deployed = wiz.deploy(done.id, "42")
    assert deployed.state == "COMPLETE"
    left = wiz.start(snowflake(), "43")
    wiz.abandon(left.id, "43")
    name, _secret = make_operator("approver")
    with pytest.raises(MfaRefused):
        e.mfa.verify(name, "000000", action="TEST")
    decision = e.policy_gate.check(json.loads(open(write_plan(
        tmp_path, rc("aws_db_instance.main", "aws_db_instance", ["delete"]))).read()))
    assert decision.decision == "reject"
    text = scrape(e)
    assert value(text, 'arrakis_wizard_sessions_total{event="started",step="INIT"}') == 2
    assert value(text, 'arrakis_wizard_sessions_total{event="completed",step="DEPLOY"}') == 1
    assert value(text, 'arrakis_wizard_sessions_total{event="abandoned",step="INIT"}') == 1
    assert value(text, 'arrakis_signing_operations_total{backend="local",outcome="ok"}') >= 1  # the deploy's manifest
    assert value(text, "arrakis_mfa_failures_total") == 1
    assert value(text, 'arrakis_policy_decisions_total{decision="reject"}') == 1
    assert value(text, 'arrakis_policy_hard_blocks_total{rule="HARD_BLOCK_DELETE_DATABASE"}') == 1
    assert value(text, 'arrakis_policy_hard_blocks_passed_total{rule="HARD_BLOCK_DELETE_DATABASE"}') == 0
    assert value(text, "arrakis_vault_configured") == 0
    figures = {m.name: m for m in e.operations.success()}
    assert figures["wizard completion"].value == 0.5 and figures["wizard completion"].met is False
    assert figures["signing via Vault"].met is None  # no Vault configured: not applicable, and said so
    assert "not configured" in figures["signing via Vault"].detail
    assert figures["dangerous operations blocked"].value == 1.0 and figures["dangerous operations blocked"].met
    assert figures["Discord 429s"].met is True


def test_a_request_the_gate_rejected_yet_approved_is_counted_as_a_bypass(e, make_operator, owner_conn, tmp_path):
    """An attacker with the database owner's access slips a hard-blocked change into a request
    waiting for review (the table refuses a 'reject' decision, so the report is what they edit);
    when someone approves it, the bypass is counted (its alert fires) and the success metric says
    dangerous operations were not all blocked."""
    requester, secret = make_operator("approver", prefix="req")
    approver, approver_secret = make_operator("approver", prefix="ok")
    request = e.approvals.submit(medium_plan(tmp_path), None, requested_by=requester, code=pyotp.TOTP(secret).now())
    with owner_conn.cursor() as cur:
        cur.execute("""UPDATE approval_requests SET report = jsonb_set(report, '{reasons}', %s::jsonb)
                        WHERE id = %s""",
                    (json.dumps(["HARD_BLOCK_DELETE_PV: kubernetes_persistent_volume.data is deleted"]), request.id))
    waiting = value(scrape(e), "arrakis_approvals_pending")
    done = e.approvals.approve(request.id, by=approver, code=pyotp.TOTP(approver_secret).now())
    assert done.status == "approved"
    text = scrape(e)
    assert value(text, 'arrakis_policy_hard_blocks_passed_total{rule="HARD_BLOCK_DELETE_PV"}') == 1
    assert value(text, "arrakis_approvals_pending") == waiting - 1
    figures = {m.name: m for m in e.operations.success()}
    assert figures["dangerous operations blocked"].met is False


def test_platform_gauges_read_the_platform_state(e, make_operator, tmp_path):
    requester, secret = make_operator("approver", prefix="req")
    before = scrape(e)
    e.approvals.submit(medium_plan(tmp_path), None, requested_by=requester, code=pyotp.TOTP(secret).now())
    text = scrape(e)
    assert value(text, "arrakis_approvals_pending") == value(before, "arrakis_approvals_pending") + 1
    assert value(text, "arrakis_approvals_expiring_soon") == value(before, "arrakis_approvals_expiring_soon")  # 24 h
    assert value(text, 'arrakis_killswitch_active{scope="global"}') == 0


def test_a_bot_that_stopped_reporting_counts_as_gateway_down(e):
    from arrakis_engine.adapters.prometheus import shared_gauges
    from arrakis_engine.storage.metrics_store import MetricsStore

    bot = build_engine(e.settings)
    try:
        bot.metrics.set("arrakis_gateway_connected", 1, "0")
        bot._flusher.flush()
        assert value(scrape(e), 'arrakis_gateway_connected{shard="0"}') == 1
        later = MetricsStore(e.redis, clock=lambda: time.time() + 300)  # five minutes on
        assert shared_gauges(later.snapshot())[("arrakis_gateway_connected", ("0",))] == 0
    finally:
        bot.metrics.set("arrakis_gateway_connected", 0, "0")
        bot.close()


def test_status_shows_the_success_metrics_with_targets(e):
    env = {"DATABASE_URL": e.settings.database_url, "REDIS_URL": e.settings.redis_url,
           "ARRAKIS_DATA_DIR": str(e.settings.data_dir), "DISCORD_API_BASE": e.settings.discord_api_base,
           "DISCORD_BOT_TOKEN": e.settings.discord_bot_token}
    e.metrics.wizard("INIT", "started")
    e._flusher.flush()
    out = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "status", "--json"],
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    success = {m["name"]: m for m in json.loads(out.stdout)["health"]["success"]}
    assert set(success) == {"Score Service degraded", "Discord 429s", "wizard completion", "signing via Vault",
                            "dangerous operations blocked"}
    assert success["wizard completion"]["target"] == "> 80 %" and success["wizard completion"]["met"] is False
    assert success["Discord 429s"]["target"] == "0"
    text = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "status"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert re.search(r"wizard completion\s+0\.0%\s+target > 80 %\s+NOT MET", text.stdout), text.stdout
    assert re.search(r"Discord 429s\s+0\s+target 0\s+met", text.stdout), text.stdout


def test_success_metrics_from_counts():
    counts = {("arrakis_score_reads_total", ("score",)): 990.0, ("arrakis_score_reads_total", ("cached",)): 10.0,
              ("arrakis_signing_operations_total", ("vault", "ok")): 5.0,
              ("arrakis_signing_operations_total", ("local", "ok")): 1.0}
    figures = {m.name: m for m in success_metrics(counts, vault_configured=True)}
    assert figures["Score Service degraded"].value == 0.01 and figures["Score Service degraded"].met is False
    assert figures["signing via Vault"].met is False  # one signature outside Vault
    counts[("arrakis_signing_operations_total", ("local", "ok"))] = 0.0
    counts[("arrakis_score_reads_total", ("cached",))] = 9.0
    figures = {m.name: m for m in success_metrics(counts, vault_configured=True)}
    assert figures["signing via Vault"].met is True and figures["Score Service degraded"].met is True


def test_chain_and_score_reads_are_counted_with_unknown_and_degraded(settings, engine, chain, anvil, score_service,
                                                                       make_community):
    """An eligibility sync through the engine on anvil counts its reads ok; an endpoint that does
    not answer counts them unknown (never zero); Score lookups count fresh, then degraded when the
    service is down, and the breaker's state is reported."""
    from arrakis_engine.domain.chain import Asset
    from tests.fixtures.chain import holder

    token = chain.deploy("TestERC20", "Count", "CNT", 18)
    wallets = [holder(int(token.address[-6:], 16) * 100 + i) for i in range(4)]
    chain.send(token.functions.mintMany([chain.w3.to_checksum_address(w) for w in wallets], [10, 20, 30, 40]))
    community = make_community()
    with engine.db.tenant(community.id):
        for i, w in enumerate(wallets):
            engine.repos.wallets.link(engine.repos.profiles.create(discord_id=str(600000000000000000 + i)).id, w)
    engine.redis.flushdb()
    eng = build_engine(replace(settings, rpc_urls={"berachain": (anvil.url,)}, score_api_url=score_service.url,
                               score_api_key=score_service.api_key))
    dead = build_engine(replace(settings, rpc_urls={"berachain": (f"http://127.0.0.1:{free_tcp_port()}",)}))
    try:
        eng.eligibility.configure(community.id, Asset("berachain", "erc20", token.address), purpose="rank")
        eng.eligibility.run(community.id)
        diff = dead.eligibility.run(community.id)
        assert len(diff.unknown) == 4  # kept as they were, not zero
        dead._flusher.flush()
        score_service.set_score(wallets[0], rank=3)
        eng.orchestrator.scores(wallets[:2])
        score_service.down()
        for _ in range(6):  # past the cache: new addresses each time, until the breaker opens
            eng.orchestrator.scores([holder(10**9 + _)])
        text = scrape(eng)
        assert value(text, 'arrakis_chain_reads_total{chain="berachain",outcome="ok"}') == 4
        assert value(text, 'arrakis_chain_reads_total{chain="berachain",outcome="unknown"}') == 4
        assert value(text, 'arrakis_score_reads_total{source="score"}') == 4 + 2  # the sync's 4 members, then 2
        assert value(text, 'arrakis_score_reads_total{source="degraded"}') == 6
        assert value(text, "arrakis_score_breaker_state") == 2  # open
        degraded = next(m for m in eng.operations.success() if m.name == "Score Service degraded")
        assert degraded.value == 0.5 and degraded.met is False
    finally:
        score_service.up()
        eng.close()
        dead.close()


def free_tcp_port() -> int:
    from tests.fixtures.ports import free_port

    return free_port()


def _private_redis(tmp_path):
    """A redis-server of the test's own (nothing else sends it commands): (process, url)."""
    import shutil

    import redis as redis_lib

    from tests.fixtures.ports import ServerProcess, free_port

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is needed (scripts/services.sh installs it)")
    port = free_port()
    server = ServerProcess("redis-server", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                            "--appendonly", "no", "--dir", str(tmp_path)], tmp_path / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"
    server.start(redis_lib.Redis.from_url(url).ping, timeout=30, every=0.05)
    return server, url


def _redis_commands(url: str, client, action) -> list[str]:
    """The commands Redis' MONITOR saw while ``action()`` ran, those a Lua script ran inside
    Redis left out (they are no round trips); ``client`` marks the end with a PING."""
    import redis as redis_lib

    seen: list[str] = []
    ready = threading.Event()

    def watch():
        with redis_lib.Redis.from_url(url).monitor() as m:
            ready.set()
            for cmd in m.listen():
                if cmd["command"] == "PING END":
                    return
                if cmd.get("client_type") != "lua":
                    seen.append(cmd["command"])

    t = threading.Thread(target=watch)
    t.start()
    ready.wait(5)
    time.sleep(0.2)
    action()
    client.execute_command("PING", "END")
    t.join(10)
    return seen
