"""Live role sync converges, end to end, with the documented CLI only.

A community on our own ERC-20 on a chain that mines a block every second; its members are linked
with `wallets import`, the asset is added (which indexes its holdings), then `eligibility sync`,
`synthesize --now` and `members sync --now`. Then `arrakis watcher` and two `arrakis worker`
processes run while a random sequence of transfers moves members across the Gold/Silver boundary
and out of the tiers and back (the same member several times), the watcher and a worker are
killed with SIGKILL mid-stream and restarted, and a reorg takes some of the transfers away.
Against the strict fake Discord (member updates 10 per 10 s per guild, counted in any sliding
window where they arrive).

Once the chain is quiet and the queue drained, every member's roles in the (fake) guild are what
a fresh `eligibility sync` wants, `members sync --dry-run` has nothing left to do, Discord never
answered 429, and no update was sent twice for one decision.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import uuid

import pytest

from tests.fixtures.chain import ChainKit, holder, start_anvil
from tests.fixtures.workers import wait_for

CHAIN = "base"  # its own chain name: the watcher's place on it is this test's alone
HOLDERS = 20  # basic theme: ranks 1-10 Gold, 11-20 Silver
SEED = int(os.environ.get("ARRAKIS_CONVERGENCE_SEED", "23"))


@pytest.fixture(scope="module")
def live_chain():
    node = start_anvil(chain_id=8453, block_time=1)
    yield node, ChainKit(node.url)
    node.stop()


def _proc(args, env, log):
    out = open(log, "a")
    return subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", *args], env=env, start_new_session=True,
                            stdout=out, stderr=out)


def _kill(p, sig=signal.SIGKILL):
    """Stop a process this test started (its own process group). A worker told to stop finishes
    its job first, which may wait on Discord's member limit: after 20 s it is killed."""
    if p.poll() is None:
        os.killpg(p.pid, sig)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def desired_and_actual(engine, discord, c) -> tuple[dict, dict]:
    """Each member's role ids: as the latest manifest wants them, and as the guild has them."""
    from arrakis_engine.storage.synthesis import SynthesisRepository

    with engine.db.tenant(c.id):
        manifest = engine.repos.manifests.latest()
        resources = SynthesisRepository(engine.db).latest_shadow()[1]
    guild = discord.guilds[c.guild_id]
    want = {d: {resources[r] for r in roles if r in resources} for d, roles in manifest.content["members"].items()}
    members = set(want) | {d for d, r in guild.members.items() if r}
    return ({d: want.get(d, set()) for d in members}, {d: set(guild.members.get(d, set())) for d in members})


def explain(engine, discord, c, done, log) -> str:
    """What differs, and where each differing member's update is."""
    from rq.job import Job
    from arrakis_engine.adapters.rq.queue import SERIALIZER

    from arrakis_engine import keys
    from arrakis_engine.storage.synthesis import SynthesisRepository

    want, have = desired_and_actual(engine, discord, c)
    lines = [f"seed {SEED}, moves {done}, watcher {engine.live.status(CHAIN)}, "
             f"approvals {engine.approvals.pending_for(str(c.id))}, dead letters {engine.queue.dead_letters()}"]
    with engine.db.tenant(c.id):
        store = SynthesisRepository(engine.db)
        pending = store.pending_decisions()
        for d in sorted(m for m in want if want[m] != have[m]):
            latest = store.latest_decision(d)
            row = engine.db.current().one("SELECT roles, applied_seq FROM discord_member_roles WHERE discord_id = %s",
                                          (d,))
            status = None
            if latest:
                try:
                    job = Job.fetch(f"ASSIGN_ROLE-{keys.member_roles(c.id, d, latest[0])}".replace(":", "_"),
                                    connection=engine.redis, serializer=SERIALIZER)
                    status = job.get_status()
                except Exception as exc:  # noqa: BLE001 (a diagnostic)
                    status = repr(exc)[:80]
            lines.append(f"{d}: want {want[d]} have {have[d]} latest {latest} pending {pending.get(d)} "
                         f"recorded {row} job {status}")
    return "\n".join(lines) + "\n" + log.read_text()[-4000:]


@pytest.mark.slow
def test_live_role_sync_converges_after_transfers_kills_and_a_reorg(run, engine, discord, live_chain, tmp_path,
                                                                   database_url, redis_url):
    anvil, kit = live_chain
    rng = random.Random(SEED)
    token = kit.deploy("TestERC20", "Converge", "CNV", 18)
    wallets = [kit.w3.to_checksum_address(holder(8453_000 + i)) for i in range(HOLDERS)]
    sink = kit.w3.to_checksum_address(holder(8453_999))  # not a member: where tokens go and come back from
    kit.send(token.functions.mintMany(wallets, [(HOLDERS - i) * 100 for i in range(HOLDERS)]))
    members = [str(810_000_000_000_000_000 + i) for i in range(HOLDERS)]
    guild = str(10**18 + uuid.uuid4().int % (9 * 10**17))  # its own (a fresh chain repeats contract addresses)
    discord.guild(guild, members=members)
    env = {"RPC_URLS_BASE": anvil.url, "CONFIRMATIONS_BASE": "2", "DISCORD_API_BASE": discord.url,
           "DISCORD_BOT_TOKEN": discord.token,
           # members leave the tiers (all to the sink) at random, and a restarted watcher sees the
           # blocks it missed in one step: more than 10 % of 20 holders may really lose their tier
           # at once, which pauses for a person (tests/integration/test_synthesis.py); not here
           "ARRAKIS_MAX_STRIP_SHARE": "0.5"}

    from arrakis_engine.storage.metrics_store import MetricsStore

    def latency() -> list[float]:
        """The shared arrakis_live_sync_latency_seconds cells (buckets..., sum, count) the processes sent."""
        cells = MetricsStore(engine.redis).snapshot().histograms.get(("arrakis_live_sync_latency_seconds", ()))
        return cells or [0.0, 0.0]

    latency_before = latency()

    # --- set up as a user does ------------------------------------------------------------------
    made = run("community", "create", "--name", "Converge", "--guild-id", guild, "--theme", "basic",
               "--subscription", "free", "--json", extra_env=env)
    assert made.exit_code == 0, made.output
    cid = json.loads(made.output)["id"]
    csv = tmp_path / "wallets.csv"
    csv.write_text("discord_id,wallet_address\n" + "".join(f"{m},{w}\n" for m, w in zip(members, wallets)))
    for args in (("wallets", "import", cid, str(csv)),
                 ("eligibility", "add-asset", cid, "--chain", CHAIN, "--kind", "erc20", "--address", token.address),
                 ("eligibility", "sync", cid), ("synthesize", cid, "--now"), ("members", "sync", cid, "--now")):
        out = run(*args, extra_env=env)
        assert out.exit_code == 0, (args, out.output)
    with engine.db.tenant(cid):
        c = engine.repos.communities.current()
    want, have = desired_and_actual(engine, discord, c)
    assert want == have and sum(1 for r in have.values() if r) == HOLDERS  # everyone has a tier

    # --- live: watcher and workers as processes --------------------------------------------------
    penv = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
            "ARRAKIS_RETRY_BACKOFF": "1,1,1", "ARRAKIS_LOG_LEVEL": "WARNING", **env}
    log = tmp_path / "processes.log"
    watcher = _proc(["watcher", "--chain", CHAIN, "--interval", "0.2"], penv, log)
    workers = [_proc(["worker", "--name", f"conv-{uuid.uuid4().hex[:8]}"], penv, log) for i in range(2)]
    patches_before = sum(1 for _, m, p in discord.request_log if m == "PATCH" and "/members/" in p)

    def balance(w: str) -> int:
        return token.functions.balanceOf(w).call()

    def send(frm: str, to: str, amount: int) -> int:
        sender = kit.impersonate(frm)
        return kit.send(token.functions.transfer(to, amount), sender=sender)["blockNumber"]

    def give(w: str, amount: int) -> None:
        if balance(sink) >= amount:
            send(sink, w, amount)
        else:
            kit.send(token.functions.mint(w, amount))

    def move() -> str:
        """One random tier-crossing transfer: a member leaves the tiers (all to the sink) or comes
        back, a Silver member passes rank 10, or a Gold member falls below it."""
        ranked = sorted((w for w in wallets if balance(w) > 0), key=lambda w: -balance(w))
        outside = [w for w in wallets if balance(w) == 0]
        kind = rng.choice(["out", "back", "up", "down"] if outside else ["out", "up", "down"])
        if kind == "out":
            w = rng.choice(ranked)
            send(w, sink, balance(w))
        elif kind == "back":
            give(rng.choice(outside), rng.randint(50, 1500))
        elif kind == "up" and len(ranked) > 10:
            w = rng.choice(ranked[10:])
            give(w, balance(ranked[9]) - balance(w) + rng.randint(1, 200))
        else:
            w = rng.choice(ranked[:10])
            floor = balance(ranked[10]) if len(ranked) > 10 else 0
            send(w, sink, max(1, min(balance(w), balance(w) - floor + rng.randint(1, 50))))
        return kind

    try:
        wait_for(lambda: engine.live.status(CHAIN) is not None, timeout=60, explain=lambda: log.read_text())
        snapshot, done = None, []
        for step in range(16):
            if step == 10:
                snapshot = kit.w3.provider.make_request("evm_snapshot", [])["result"]
            if step == 13:  # transfers 10-12 are watched (their roles maybe sent), then vanish in a reorg
                top = kit.w3.eth.block_number
                wait_for(lambda: (engine.live.status(CHAIN) or {}).get("processed", 0) >= top, timeout=30)
                assert kit.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
            done.append(move())
            if step == 4:
                _kill(watcher)  # mid-stream; it resumes from its last block
            if step == 6:
                watcher = _proc(["watcher", "--chain", CHAIN, "--interval", "0.2"], penv, log)
            if step == 8:
                _kill(workers[0])  # whatever it was sending is taken up again by the next worker
                workers[0] = _proc(["worker", "--name", f"conv-{uuid.uuid4().hex[:8]}"], penv, log)
        last_block = kit.w3.eth.block_number

        # --- quiet: the watcher past the last transfer, nothing left on the queue ---------------
        from arrakis_engine.adapters.rq.queue import outstanding

        def settled():
            s = engine.live.status(CHAIN) or {}
            return s.get("processed", 0) >= last_block and outstanding(engine.redis) == 0

        def converged():
            if not settled():
                return False
            want, have = desired_and_actual(engine, discord, c)
            return want == have

        wait_for(converged, timeout=120, step=0.5, explain=lambda: explain(engine, discord, c, done, log))
    finally:
        for p in [watcher, *workers]:
            try:
                _kill(p, signal.SIGTERM)
            except Exception:  # noqa: BLE001 (stop the others all the same)
                os.killpg(p.pid, signal.SIGKILL)

    # --- what a fresh sync wants is what the guild has -------------------------------------------
    fresh = run("eligibility", "sync", cid, "--json", extra_env=env)
    assert fresh.exit_code == 0, fresh.output
    diff = json.loads(fresh.output)
    assert (diff["promoted"], diff["demoted"], diff["joined"], diff["left"], diff["unknown"]) == ([], [], [], [], []), \
        f"seed {SEED}: the live sync left standings a fresh sync changes: {diff}"
    dry = run("members", "sync", cid, "--dry-run", "--json", extra_env=env)
    assert dry.exit_code == 0 and json.loads(dry.output)["changes"] == 0, dry.output
    want, have = desired_and_actual(engine, discord, c)
    assert want == have, f"seed {SEED}"
    assert discord.count_429 == 0, discord.stats()
    # one decision, one delivery: no update re-sent what the member already had
    assert discord.unchanged_member_updates == 0, f"seed {SEED}"
    patches = sum(1 for _, m, p in discord.request_log if m == "PATCH" and "/members/" in p)
    assert patches > patches_before, f"seed {SEED}: {done}"  # the live phase did send updates
    # the workers measured block mined -> role call for the live updates (a worker killed with
    # SIGKILL loses what it had not sent yet), never for the setup's `members sync` of 20 members
    after = latency()
    measured = after[-1] - latency_before[-1]
    assert 0 < measured <= patches - patches_before, (measured, patches - patches_before)
    assert 0 < (after[-2] - latency_before[-2]) / measured < 120
