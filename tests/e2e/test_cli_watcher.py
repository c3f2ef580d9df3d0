"""`arrakis watcher` as an operator runs it: one step per chain with --once, resuming where it
stopped; what moved is re-ranked and said in one line; `arrakis status` shows the watcher's
place per chain and an endpoint that does not answer."""

from __future__ import annotations

import json

import pytest

from arrakis_engine.domain.chain import Asset
from arrakis_engine.storage.chain_holdings import HoldingsRepository
from tests.fixtures.chain import holder


def test_watcher_once_resumes_and_status_shows_it(run, engine, chain, anvil, discord, make_community):
    env = {"RPC_URLS_BERACHAIN": f"{anvil.url},http://127.0.0.1:9", "CONFIRMATIONS_BERACHAIN": "0",
           "DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token, "ARRAKIS_MAX_STRIP_SHARE": "1"}
    token = chain.deploy("TestERC20", "Cli", "CLI", 18)
    wallet = chain.w3.to_checksum_address(holder(int(token.address[-6:], 16)))
    c = make_community()
    discord.guild(c.guild_id, members=["800000000000000001"])
    with engine.db.tenant(c.id):
        p = engine.repos.profiles.create(discord_id="800000000000000001")
        engine.repos.wallets.link(p.id, wallet.lower())
    with engine.db.platform() as tx:
        tx.execute("DELETE FROM chain_watch WHERE chain = 'berachain'")
    chain.send(token.functions.mint(wallet, 7))
    added = run("eligibility", "add-asset", str(c.id), "--chain", "berachain", "--kind", "erc20", "--address",
                token.address, extra_env=env)
    assert added.exit_code == 0, added.output
    assert "holdings indexed from block 0 to " in added.output and "(1 transfer log(s))" in added.output
    asset = Asset("berachain", "erc20", token.address)
    with engine.db.tenant(c.id):
        assert HoldingsRepository(engine.db).balances_of(asset.key, [wallet.lower()]) == {wallet.lower(): 7}

    first = run("watcher", "--once", extra_env=env)
    assert first.exit_code == 0, first.output
    assert "berachain: watching with 0 confirmation(s), from block the head" in first.output
    chain.send(token.functions.mint(wallet, 500))
    second = run("watcher", "--once", extra_env=env)
    assert second.exit_code == 0, second.output
    assert "berachain: watching with 0 confirmation(s), from block " in second.output
    assert f"community {c.id}: 1 standing(s) changed" in second.output
    with engine.db.tenant(c.id):
        assert engine.repos.profiles.by_discord_id("800000000000000001").tier == "Gold"

    status = run("status", "--json", extra_env=env)
    items = {i["name"]: i for i in json.loads(status.output)["health"]["items"]}
    watcher = items["watcher berachain"]
    assert watcher["state"] == "degraded" and "0 behind the head" in watcher["detail"]
    assert "endpoint 2 not answering" in watcher["detail"]


def test_watcher_without_endpoints_says_so(run):
    out = run("watcher", "--once", extra_env={})
    assert out.exit_code == 1
    assert "the watcher needs RPC endpoints for a chain (RPC_URLS_<CHAIN>)" in out.output


def test_a_running_watcher_without_any_chain_waits_with_one_line(database_url, redis_url, tmp_path, engine):
    """As a Procfile process on a machine with no chain: one line, then it waits (so the other
    processes keep running) until SIGTERM, which ends it with status 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RPC_URLS_", "DISCORD_"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path)})
    proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "watcher"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.strip() == "no chain is configured (RPC_URLS_<CHAIN>): nothing to watch; waiting until stopped"
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr.read().strip() == ""  # nothing more said, no traceback
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_a_killed_watcher_resumes_without_gaps_or_double_counts(engine, chain, anvil, discord, make_community,
                                                                 database_url, redis_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    token = chain.deploy("TestERC20", "Kill", "KIL", 18)
    wallet = chain.w3.to_checksum_address(holder(int(token.address[-6:], 16)))
    c = make_community()
    asset = Asset("berachain", "erc20", token.address)
    with engine.db.platform() as tx:
        tx.execute("DELETE FROM chain_watch WHERE chain = 'berachain'")
    engine.eligibility.configure(c.id, asset, purpose="rank")  # no index yet: the watcher builds it first
    engine.redis.delete("arrakis:watcher:berachain")  # so "started" below means this watcher's first step
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
           "RPC_URLS_BERACHAIN": anvil.url, "CONFIRMATIONS_BERACHAIN": "0", "DISCORD_API_BASE": discord.url,
           "DISCORD_BOT_TOKEN": discord.token}

    def start():
        return subprocess.Popen([sys.executable, "-m", "arrakis_engine.cli", "watcher", "--interval", "0.1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "watcher.log", "a"))

    def held() -> int:
        with engine.db.tenant(c.id):
            rows = HoldingsRepository(engine.db).ranked(asset.key)
        return int(next((b for _, a, b in rows if a == wallet.lower()), 0))

    watcher = start()
    try:
        deadline = time.monotonic() + 30
        while engine.live.status("berachain") is None or engine.live.status("berachain")["age"] > 5:
            assert time.monotonic() < deadline, "the watcher did not start"
            time.sleep(0.1)
        total = 0
        for i in range(1, 21):
            chain.send(token.functions.mint(wallet, i))
            total += i
            if i == 10:
                watcher.send_signal(signal.SIGKILL)  # in the middle of whatever it was doing
                watcher.wait(10)
                watcher = start()
        deadline = time.monotonic() + 60
        while held() != total and time.monotonic() < deadline:
            time.sleep(0.2)
        assert held() == total  # every mint once: nothing skipped, nothing counted twice
    finally:
        watcher.terminate()
        try:
            code = watcher.wait(30)
        except subprocess.TimeoutExpired:
            watcher.kill()
            code = None
    # a stop takes no longer than its grace period, or its log says where each thread was
    assert code == 0, (tmp_path / "watcher.log").read_text()[-6000:]
