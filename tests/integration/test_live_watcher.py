"""The live watcher on anvil: transfers, mints, burns and an NFT batch transfer reach the
holdings index and members' roles; a transfer across a tier boundary shifts others' ranks; a
reorg is undone; an RPC outage mid-stream and a restart resume without gaps or duplicates."""

from __future__ import annotations

import pytest

from arrakis_engine.chain.ranking import HolderIndexer
from arrakis_engine.domain.chain import Asset
from arrakis_engine.chain.watcher import ChainWatcher, transfers
from arrakis_engine.adapters.chain.web3_reader import Web3ChainReader
from arrakis_engine.errors import ChainReadError
from arrakis_engine.storage.chain_holdings import HoldingsRepository
from arrakis_engine.adapters.rq.queue import work_until_done
from tests.fakes.rpc_proxy import RpcProxy
from tests.fixtures.chain import holder

MEMBERS = 12


@pytest.fixture
def member_route_limit():
    # These tests are about what reaches Discord, not its member route's pace (10 per 10 s, which
    # tests/e2e/test_live_convergence.py and bench/live_sync.py hold to): each setup gives 12
    # members their roles, 12 s at that pace, so here the route allows 20 a second.
    return (20, 1.0)


@pytest.fixture
def live(e, discord, chain, anvil, make_community):
    """A basic community of 12 members holding 1200, 1100, ... 100 of a token (ranks 1-12: ten
    Gold, two Silver), indexed and synthesized, their roles given; a watcher on anvil (no
    confirmations: this chain mines a block per transaction)."""
    from dataclasses import replace

    from arrakis_engine.bootstrap import build_engine

    # 2 of 12 holders changing tier is 17 %: above the default mass-strip share of 10 %, which
    # test_a_block_that_would_strip_many_pauses_for_approval uses; the others allow half
    eng = build_engine(replace(e.settings, rpc_urls={"berachain": (anvil.url,)}, max_strip_share=0.5,
                               confirmations={"berachain": 0}))
    token = chain.deploy("TestERC20", "Live", "LIV", 18)
    wallets = [chain.w3.to_checksum_address(holder(int(token.address[-6:], 16) * 100 + i)) for i in range(MEMBERS)]
    chain.send(token.functions.mintMany(wallets, [(MEMBERS - i) * 100 for i in range(MEMBERS)]))
    c = eng.communities.create(name="Live", guild_id=str(10**18 + int(token.address[-8:], 16)), theme_id="basic",
                               subscription="free", actor="test")
    members = [str(700000000000000000 + i) for i in range(MEMBERS)]
    discord.guild(c.guild_id, members=members)
    with eng.db.tenant(c.id):
        for did, w in zip(members, wallets):
            p = eng.repos.profiles.create(discord_id=did)
            eng.repos.wallets.link(p.id, w.lower())
    with eng.db.platform() as tx:  # no watcher position left by another test
        for table in ("chain_watch", "chain_watch_blocks", "chain_watch_deltas"):
            tx.execute(f"DELETE FROM {table} WHERE chain = 'berachain'")
    asset = Asset("berachain", "erc20", token.address)
    eng.eligibility.configure(c.id, asset, purpose="rank")
    eng.eligibility.index(c.id, asset)  # what `eligibility add-asset` does
    eng.eligibility.run(c.id, actor="test")
    eng.synthesis.synthesize(c.id, queued=False, actor="test")
    eng.synthesis.sync_members(c.id, queued=False, actor="test")
    work_until_done(eng, timeout=120)
    watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [anvil.url]), eng.db, confirmations=0)
    watcher.step()  # starts at the head
    for _ in range(5):  # and catches up the indexes of other communities' assets on this chain (other tests')
        if watcher.step().logs == 0:
            break
    yield eng, c, token, asset, wallets, members, watcher
    eng.close()


def roles(discord, guild: str, member: str) -> set[str]:
    g = discord.guilds[guild]
    return {g.roles[r]["name"] for r in g.members[member]}


def balance(eng, c, asset, wallet: str) -> int:
    with eng.db.tenant(c.id):
        rows = HoldingsRepository(eng.db).ranked(asset.key)
    return int(next((b for _, a, b in rows if a == wallet.lower()), 0))


def test_a_transfer_across_a_tier_boundary_moves_roles_of_others_too(live, discord, chain):
    eng, c, token, asset, wallets, members, watcher = live
    assert roles(discord, c.guild_id, members[9]) == {"Gold"} and roles(discord, c.guild_id, members[11]) == {"Silver"}
    # member 11 (rank 12, 100) receives 2,000 from the deployer: rank 1; member 9 (rank 10) falls to 11
    chain.send(token.functions.mint(wallets[11], 2000))
    report = watcher.step()
    assert report.logs == 1 and report.moved == {str(c.id): {wallets[11].lower()}}
    assert balance(eng, c, asset, wallets[11]) == 2100
    reads = sum(r.requests for r in eng.chain_readers.values())
    results = eng.live.react(report)
    assert results[0].changed == 2 and results[0].updates == 2  # only the two whose tier changed
    assert sum(r.requests for r in eng.chain_readers.values()) == reads  # ranked from the index: no reads
    work_until_done(eng, timeout=60)
    assert roles(discord, c.guild_id, members[11]) == {"Gold"}
    assert roles(discord, c.guild_id, members[9]) == {"Silver"}  # did not transact, moved all the same


def test_burns_and_transfers_between_members_and_a_resumed_restart(live, discord, chain):
    eng, c, token, asset, wallets, members, watcher = live
    sender = chain.impersonate(wallets[0])
    chain.send(token.functions.transfer(wallets[1], 50), sender=sender)
    chain.send(token.functions.burn(100), sender=sender)
    restarted = ChainWatcher("berachain", Web3ChainReader("berachain", [chain.url]), eng.db, confirmations=0)
    report = restarted.step()  # a new watcher (a restart) resumes from the stored block
    assert report.logs == 2
    assert balance(eng, c, asset, wallets[0]) == 1200 - 150 and balance(eng, c, asset, wallets[1]) == 1150
    assert restarted.step().logs == 0  # nothing counted twice


def test_a_reorg_is_undone(live, discord, chain):
    eng, c, token, asset, wallets, members, watcher = live
    # A held_for rule on the asset: the watcher keeps its holdings history from its next step.
    eng.gating.set_rule(c.id, {"type": "held_for", "address": token.address, "min": "0", "days": 1}, actor="test")
    watcher.step()
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    chain.send(token.functions.mint(wallets[5], 5000))
    report = watcher.step()
    assert balance(eng, c, asset, wallets[5]) == 700 + 5000
    chain.w3.provider.make_request("evm_revert", [snapshot])
    chain.w3.provider.make_request("evm_mine", [])
    chain.w3.provider.make_request("evm_mine", [])  # the other branch is now longer
    chain.send(token.functions.mint(wallets[6], 300))
    report = watcher.step()
    assert report.rewound_to is not None
    assert balance(eng, c, asset, wallets[5]) == 700  # the vanished block's mint is gone
    assert balance(eng, c, asset, wallets[6]) == 600 + 300  # the new branch's is there
    assert wallets[5].lower() in report.moved[str(c.id)]
    # The holdings history (held_for reads it) forgets the vanished block and keeps the new one.
    with eng.db.tenant(c.id) as tx:
        kept = tx.all("SELECT address, delta, balance FROM asset_holding_changes WHERE asset_key = %s "
                      "AND address = ANY(%s)", (asset.key, [wallets[5].lower(), wallets[6].lower()]))
    assert [(r["address"], int(r["delta"]), int(r["balance"])) for r in kept] == [(wallets[6].lower(), 300, 900)]


def test_an_rpc_outage_mid_stream_resumes_without_gaps(live, discord, chain, anvil):
    eng, c, token, asset, wallets, members, _ = live
    proxy = RpcProxy(anvil.url)
    try:
        watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [proxy.url], timeout=2), eng.db,
                               confirmations=0, max_range=1)
        chain.send(token.functions.mint(wallets[3], 1))
        chain.send(token.functions.mint(wallets[3], 2))
        chain.send(token.functions.mint(wallets[3], 4))
        watcher.step()  # one block
        proxy.mode = "down"
        with pytest.raises(ChainReadError):
            watcher.step()
        proxy.mode = "pass"
        while watcher.step().to_block < chain.w3.eth.block_number:
            pass
        assert balance(eng, c, asset, wallets[3]) == 900 + 7  # each mint once
    finally:
        proxy.stop()


def test_erc721_and_erc1155_single_and_batch_transfers(e, chain, make_community):
    nft = chain.deploy("TestERC721", "Pass", "PASS")
    multi = chain.deploy("TestERC1155")
    a, b = chain.w3.to_checksum_address(holder(901)), chain.w3.to_checksum_address(holder(902))
    r1 = chain.send(nft.functions.mint(a, 7))
    chain.send(multi.functions.mint(chain.owner, 1, 10))
    chain.send(multi.functions.mint(chain.owner, 2, 20))
    r2 = chain.send(multi.functions.safeTransferFrom(chain.owner, a, 1, 3, b""))
    r3 = chain.send(multi.functions.safeBatchTransferFrom(chain.owner, b, [1, 2], [4, 5], b""))
    decoded = [t for r in (r1, r2, r3) for entry in r["logs"] for t in transfers(entry)]
    zero = "0x" + "0" * 40
    assert (zero, a.lower(), 7, 1) in decoded  # ERC-721 mint
    assert (chain.owner.lower(), a.lower(), 1, 3) in decoded  # TransferSingle
    assert (chain.owner.lower(), b.lower(), 1, 4) in decoded and (chain.owner.lower(), b.lower(), 2, 5) in decoded


def test_a_block_that_would_strip_many_pauses_for_approval(live, discord, chain):
    from dataclasses import replace

    from arrakis_engine.bootstrap import build_engine

    eng, c, token, asset, wallets, members, watcher = live
    strict = build_engine(replace(eng.settings, max_strip_share=0.10))
    sink = chain.w3.to_checksum_address(holder(int(token.address[-6:], 16) * 100 + 98))
    try:
        for m in (10, 11):  # two of twelve holders send everything away, seen in one step
            chain.send(token.functions.transfer(sink, 200 - 100 * (m - 10)), sender=chain.impersonate(wallets[m]))
        results = strict.live.react(watcher.step())
        assert results[0].paused and results[0].updates == 2
        assert strict.approvals.pending_for(str(c.id))  # waits for an approver, nothing sent
        work_until_done(strict, timeout=30)
        assert roles(discord, c.guild_id, members[11]) == {"Silver"}
        assert roles(discord, c.guild_id, members[10]) == {"Silver"}
    finally:
        with strict.db.platform() as tx:  # the watcher asked (system:watcher): no person cancels it; it expires
            tx.execute("UPDATE approval_requests SET status = 'expired', decided_at = now() "
                       "WHERE community_id = %s AND status = 'pending'", (str(c.id),))
        strict.close()


def test_new_heads_wake_the_watcher_where_the_endpoint_offers_them(anvil, chain):
    import time

    from arrakis_engine.adapters.chain.heads import HeadSubscriber

    sub = HeadSubscriber("berachain", [anvil.url]).start()  # anvil answers websockets on its http port
    try:
        assert sub.subscribed.wait(10)
        sub.woken.clear()
        started = time.monotonic()
        chain.w3.provider.make_request("evm_mine", [])
        assert sub.wait(5) and time.monotonic() - started < 5 and sub.heads >= 1
    finally:
        sub.stop()
    dead = HeadSubscriber("berachain", ["http://127.0.0.1:9"], retry_after=60).start()
    try:
        assert not dead.wait(1.0) and not dead.subscribed.is_set()  # no subscription: the watcher polls
    finally:
        dead.stop()


def fresh_watcher(eng, url: str) -> ChainWatcher:
    """A watcher starting at the head, with no position left by another test."""
    with eng.db.platform() as tx:
        for table in ("chain_watch", "chain_watch_blocks", "chain_watch_deltas"):
            tx.execute(f"DELETE FROM {table} WHERE chain = 'berachain'")
    watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [url]), eng.db, confirmations=0)
    watcher.step()
    return watcher


def test_nft_and_multi_token_holdings_follow_the_watcher(e, chain, anvil, make_community, tmp_path):
    nft, multi = chain.deploy("TestERC721", "Pass", "PASS"), chain.deploy("TestERC1155")
    a = chain.w3.to_checksum_address(holder(int(nft.address[-6:], 16)))
    b = chain.w3.to_checksum_address(holder(int(nft.address[-6:], 16) + 1))
    chain.send(nft.functions.mint(a, 1))
    chain.send(nft.functions.mint(a, 2))
    chain.send(multi.functions.mint(a, 1, 10))
    chain.send(multi.functions.mint(a, 2, 99))
    c = make_community()
    passes = Asset("berachain", "erc721", nft.address)
    shares = Asset("berachain", "erc1155", multi.address, token_id=1)
    e.eligibility.configure(c.id, passes, purpose="rank")
    e.eligibility.configure(c.id, shares, purpose="gate", min_amount=1)
    indexer = HolderIndexer(e.db, Web3ChainReader("berachain", [anvil.url]))
    indexer.index(c.id, passes)
    indexer.index(c.id, shares)
    assert balance(e, c, passes, a) == 2 and balance(e, c, shares, a) == 10  # token 2 is not this asset
    watcher = fresh_watcher(e, anvil.url)
    sender = chain.impersonate(a)
    chain.send(nft.functions.transferFrom(a, b, 1), sender=sender)
    chain.send(multi.functions.safeBatchTransferFrom(a, b, [1, 2], [4, 50], b""), sender=sender)
    chain.send(multi.functions.safeTransferFrom(a, b, 1, 1, b""), sender=sender)
    report = watcher.step()
    # holdings are indexed for everyone, but the community has no member among them: nothing to re-rank
    assert report.logs == 3 and str(c.id) not in report.moved
    assert (balance(e, c, passes, a), balance(e, c, passes, b)) == (1, 1)
    assert (balance(e, c, shares, a), balance(e, c, shares, b)) == (5, 5)
    # once a is a member's wallet, a's transfers move the community (and only a's address counts)
    links = tmp_path / "links.csv"
    links.write_text(f"discord_id,wallet_address\n711111111111111111,{a}\n")
    e.wallets.import_csv(c.id, links)
    chain.send(nft.functions.transferFrom(b, a, 1), sender=chain.impersonate(b))
    report = watcher.step()
    assert report.moved[str(c.id)] == {a.lower()}
    assert (balance(e, c, passes, a), balance(e, c, passes, b)) == (2, 0)


def patches_to(discord, member: str) -> list[float]:
    return [t for t, method, path in discord.request_log if method == "PATCH" and path.endswith(f"/members/{member}")]


def test_a_member_goes_back_and_forth_any_number_of_times(live, discord, chain):
    """Silver -> none -> Silver, twice: the first time both decisions are made before any worker
    runs (the first is dropped, not sent: the member's roles never change at Discord); the second
    time each is delivered before the next (both reach Discord, although the second list equals
    one sent minutes ago)."""
    eng, c, token, asset, wallets, members, watcher = live
    sink = chain.w3.to_checksum_address(holder(int(token.address[-6:], 16) * 100 + 99))
    member, wallet = members[11], wallets[11]

    def out_and_back(deliver_between: bool) -> None:
        sender = chain.impersonate(wallet)
        chain.send(token.functions.transfer(sink, 100), sender=sender)  # all of it: no rank, no tier
        eng.live.react(watcher.step())
        if deliver_between:
            work_until_done(eng, timeout=60)
            assert roles(discord, c.guild_id, member) == set()
        back = chain.impersonate(sink)
        chain.send(token.functions.transfer(wallet, 100), sender=back)
        eng.live.react(watcher.step())
        work_until_done(eng, timeout=60)
        assert roles(discord, c.guild_id, member) == {"Silver"}

    before = len(patches_to(discord, member))
    out_and_back(deliver_between=False)
    assert len(patches_to(discord, member)) == before  # superseded, dropped: nothing to send
    out_and_back(deliver_between=True)
    assert len(patches_to(discord, member)) == before + 2
    out_and_back(deliver_between=True)  # and again
    assert len(patches_to(discord, member)) == before + 4
    assert discord.unchanged_member_updates == 0


def test_a_reorg_restores_the_roles_the_removed_blocks_changed(live, discord, chain):
    eng, c, token, asset, wallets, members, watcher = live
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    chain.send(token.functions.mint(wallets[11], 5000))  # Silver -> Gold, and member 9 Gold -> Silver
    eng.live.react(watcher.step())
    work_until_done(eng, timeout=60)
    assert roles(discord, c.guild_id, members[11]) == {"Gold"} and roles(discord, c.guild_id, members[9]) == {"Silver"}
    chain.w3.provider.make_request("evm_revert", [snapshot])
    for _ in range(3):
        chain.w3.provider.make_request("evm_mine", [])  # the other branch is now longer
    report = watcher.step()
    assert report.rewound_to is not None
    results = eng.live.react(report)
    assert results[0].updates == 2 and not results[0].paused
    work_until_done(eng, timeout=60)
    assert roles(discord, c.guild_id, members[11]) == {"Silver"}  # back as before the vanished block
    assert roles(discord, c.guild_id, members[9]) == {"Gold"}


def test_re_ranks_never_read_past_the_confirmed_block(live, discord, chain):
    """With two confirmations, a transfer in the newest blocks moves nobody: not by the watcher,
    and not by the re-rank of a community another (confirmed) transfer moved."""
    eng, c, token, asset, wallets, members, _ = live
    watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [chain.url]), eng.db, confirmations=2)
    chain.send(token.functions.mint(wallets[10], 1000))  # member 10: rank 11 -> 1 (Gold), once confirmed
    report = watcher.step()
    assert str(c.id) not in report.moved  # not confirmed yet: not read
    chain.w3.provider.make_request("evm_mine", [])
    chain.w3.provider.make_request("evm_mine", [])  # now it is two blocks deep
    chain.send(token.functions.mint(wallets[11], 5000))  # member 11 jumps too, but only in the newest block
    report = watcher.step()
    assert report.moved[str(c.id)] == {wallets[10].lower()}
    eng.live.react(report)
    work_until_done(eng, timeout=60)
    assert roles(discord, c.guild_id, members[10]) == {"Gold"}
    assert roles(discord, c.guild_id, members[11]) == {"Silver"}  # its transfer is not confirmed yet
    assert balance(eng, c, asset, wallets[11]) == 100
    for _ in range(2):
        chain.w3.provider.make_request("evm_mine", [])
    eng.live.react(watcher.step())
    work_until_done(eng, timeout=60)
    assert roles(discord, c.guild_id, members[11]) == {"Gold"}


def test_the_mass_strip_guard_counts_only_real_changes_not_undelivered_repeats(live, discord, chain):
    """At 10 % of 12 holders, one member left without a tier in a step goes ahead and two pause.
    Two steps that each strip one member, their updates not delivered in between: the second
    step must not count the first's strip again (before, the undelivered update was planned
    again, and the two together paused every live change)."""
    from dataclasses import replace

    from arrakis_engine.bootstrap import build_engine

    eng, c, token, asset, wallets, members, watcher = live
    strict = build_engine(replace(eng.settings, max_strip_share=0.10))
    sink = chain.w3.to_checksum_address(holder(int(token.address[-6:], 16) * 100 + 97))
    try:
        chain.send(token.functions.transfer(sink, 100), sender=chain.impersonate(wallets[11]))  # Silver -> none
        first = strict.live.react(watcher.step())[0]
        assert not first.paused and first.updates == 1
        chain.send(token.functions.transfer(sink, 200), sender=chain.impersonate(wallets[10]))  # Silver -> none
        second = strict.live.react(watcher.step())[0]
        assert not second.paused and second.updates == 1, second  # only the new one
        assert not strict.approvals.pending_for(str(c.id))
        work_until_done(strict, timeout=60)
        assert roles(discord, c.guild_id, members[10]) == set() and roles(discord, c.guild_id, members[11]) == set()
    finally:
        strict.close()


def test_the_watcher_indexes_an_asset_added_without_an_index(e, chain, anvil, make_community):
    """An asset set up without `eligibility add-asset` (the wizard, the bot): the watcher builds
    its index from the Transfer logs before following it, and keeps it."""
    token = chain.deploy("TestERC20", "Wiz", "WIZ", 18)
    a = chain.w3.to_checksum_address(holder(int(token.address[-6:], 16)))
    chain.send(token.functions.mint(a, 700))
    c = make_community()
    asset = Asset("berachain", "erc20", token.address)
    e.eligibility.configure(c.id, asset, purpose="rank")  # what the wizard's deploy does
    with e.db.tenant(c.id):
        assert HoldingsRepository(e.db).state(asset.key) is None
    watcher = fresh_watcher(e, anvil.url)
    chain.send(token.functions.mint(a, 5))
    watcher.step()
    assert balance(e, c, asset, a) == 705  # the past from the logs, the new block from the watcher
    chain.send(token.functions.mint(a, 1))
    watcher.step()
    assert balance(e, c, asset, a) == 706


def test_an_update_whose_job_was_lost_is_queued_again_when_the_roles_settle(live, discord, chain):
    """The queue lost a member's update (Redis emptied, or every try used up): the watcher's
    settle pass (every 15 s for communities that moved lately) queues the same decision again,
    once, and it is delivered."""
    from rq import Queue

    from arrakis_engine.adapters.rq.queue import BASE

    eng, c, token, asset, wallets, members, watcher = live
    chain.send(token.functions.mint(wallets[11], 2000))
    result = eng.live.react(watcher.step())[0]
    assert result.updates == 2
    lane = Queue(BASE, connection=eng.redis)
    for job in lane.jobs:
        job.delete()  # lost
    assert eng.live.settle([str(c.id)]) == 2  # the same two decisions, queued again
    assert eng.live.settle([str(c.id)]) == 2 and lane.count == 2  # once: their jobs are queued already
    work_until_done(eng, timeout=60)
    assert roles(discord, c.guild_id, members[11]) == {"Gold"} and roles(discord, c.guild_id, members[9]) == {"Silver"}
    assert eng.live.settle([str(c.id)]) == 0


def test_live_sync_latency_is_measured_from_the_block_to_the_role_call(live, discord, chain):
    """A live transfer's block time travels with the members' decisions (stored with them): the
    worker that sends their role updates, here a second engine (another worker process, or the
    same one restarted), records block mined -> role call in arrakis_live_sync_latency_seconds,
    which the shared figures (arrakis web's /metrics) show. A bulk `members sync` sends role
    calls too, but measures nothing."""
    import time

    from arrakis_engine.bootstrap import build_engine
    from tests.integration.test_metrics import scrape, value

    eng, c, token, asset, wallets, members, watcher = live
    count, total = "arrakis_live_sync_latency_seconds_count", "arrakis_live_sync_latency_seconds_sum"
    before = scrape(eng)
    receipt = chain.send(token.functions.mint(wallets[11], 2000))  # member 11 Silver -> Gold, member 9 Gold -> Silver
    mined = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    report = watcher.step()
    assert report.mined_at == {str(c.id): float(mined)}
    results = eng.live.react(report)
    assert results[0].updates == 2
    worker = build_engine(eng.settings)  # the worker that delivers is not the process that decided
    try:
        sent_after = time.time()
        work_until_done(worker, timeout=60)
        sent_before = time.time()
        assert roles(discord, c.guild_id, members[11]) == {"Gold"}
        after = scrape(worker)
        assert value(after, count) - value(before, count) == 2  # the two role calls
        assert value(after, 'arrakis_live_sync_latency_seconds_bucket{le="+Inf"}') \
            - value(before, 'arrakis_live_sync_latency_seconds_bucket{le="+Inf"}') == 2
        # each is the PATCH's time less the block's (anvil's own clock, which a test's snapshot
        # and revert or a burst of blocks moves away from the wall clock: bounded by the block's)
        took = (value(after, total) - value(before, total)) / 2
        assert max(0.0, sent_after - mined) - 0.01 <= took <= max(0.0, sent_before - mined) + 0.01, \
            (took, sent_after - mined, sent_before - mined)
        assert str(c.id) not in after and members[11] not in after  # no ids in the labels

        # a bulk sync (an operator's `eligibility sync` and `members sync`): role calls, not measured
        chain.send(token.functions.mint(wallets[10], 5000))  # member 10 Silver -> Gold, member 8 Gold -> Silver
        eng.eligibility.run(c.id, actor="cli")
        eng.manifests.publish(c.id, actor="cli")
        out = eng.synthesis.sync_members(c.id, queued=True, actor="cli")
        assert out.changes == 2
        patches = len(discord.request_log)
        work_until_done(worker, timeout=60)
        assert roles(discord, c.guild_id, members[10]) == {"Gold"}
        assert len(discord.request_log) > patches
        assert value(scrape(worker), count) == value(after, count)
    finally:
        worker.close()


def test_block_times_come_from_the_header_when_the_node_leaves_them_out_of_the_logs(live, chain, anvil):
    """An older node gives no ``blockTimestamp`` in its logs: the watcher reads the first moving
    block's header instead (one request for it), and the time is the same."""
    eng, c, token, asset, wallets, members, _ = live
    proxy = RpcProxy(anvil.url)
    try:
        watcher = ChainWatcher("berachain", Web3ChainReader("berachain", [proxy.url]), eng.db, confirmations=0)
        watcher.step()
        proxy.drop_log_fields = {"blockTimestamp"}
        first = chain.send(token.functions.mint(wallets[3], 1))
        chain.send(token.functions.mint(wallets[4], 1))
        proxy.methods.clear()
        report = watcher.step()
        assert report.mined_at == {str(c.id): float(chain.w3.eth.get_block(first["blockNumber"])["timestamp"])}
        assert proxy.methods.count("eth_getBlockByNumber") == 3  # reorg check, the first moving block, the last
        proxy.drop_log_fields = set()
        chain.send(token.functions.mint(wallets[3], 1))
        proxy.methods.clear()
        assert str(c.id) in watcher.step().mined_at
        assert proxy.methods.count("eth_getBlockByNumber") == 2  # the logs said when: no header read for it
    finally:
        proxy.stop()
