"""`arrakis watcher` as an operator runs it: one step per chain with --once, resuming where it
stopped; what moved is re-ranked and said in one line; `arrakis status` shows the watcher's
place per chain and an endpoint that does not answer."""

from __future__ import annotations

import json

from arrakis_engine.chain.ranking import HolderIndexer
from arrakis_engine.chain.types import Asset
from arrakis_engine.chain.web3_reader import Web3ChainReader
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
    asset = Asset("berachain", "erc20", token.address)
    engine.eligibility.configure(c.id, asset, purpose="rank")
    HolderIndexer(engine.db, Web3ChainReader("berachain", [anvil.url])).index(c.id, asset)
    with engine.db.platform() as tx:
        tx.execute("DELETE FROM chain_watch WHERE chain = 'berachain'")

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
