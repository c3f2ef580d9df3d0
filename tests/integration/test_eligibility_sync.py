"""Eligibility sync end to end: anvil tokens, real PostgreSQL as arrakis_app, Multicall3 batches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from arrakis_engine.chain.orchestrator import EligibilityOrchestrator
from arrakis_engine.domain.chain import Asset
from arrakis_engine.adapters.chain.web3_reader import Web3ChainReader
from arrakis_engine.use_cases.eligibility_sync import EligibilitySync
from arrakis_engine.errors import ValidationError
from tests.fakes.rpc_proxy import RpcProxy
from tests.fixtures.chain import holder

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def setup(engine, chain, anvil, make_community):
    """A basic-theme community of 30 members; balance i*10 for member i; the first 25 hold the pass."""
    token = chain.deploy("TestERC20", "Rank", "RNK", 18)
    nft = chain.deploy("TestERC721", "Pass", "PASS")
    wallets = [holder(int(token.address[-6:], 16) * 100 + i) for i in range(30)]
    cs = [chain.w3.to_checksum_address(w) for w in wallets]
    chain.send(token.functions.mintMany(cs, [(i + 1) * 10 for i in range(30)]))
    chain.send(nft.functions.mintMany(cs[:25], 1))
    community = make_community()
    with engine.db.tenant(community.id):
        for i, w in enumerate(wallets):
            p = engine.repos.profiles.create(discord_id=str(500000000000000000 + i),
                                             joined_at=NOW - timedelta(days=i * 4))
            engine.repos.wallets.link(p.id, w)
    reader = Web3ChainReader("berachain", [anvil.url], chunk_size=10)
    sync = EligibilitySync(engine.db, engine.repos, EligibilityOrchestrator({"berachain": reader}), clock=NOW.timestamp)
    sync.configure(community.id, Asset("berachain", "erc20", token.address), purpose="rank")
    sync.configure(community.id, Asset("berachain", "erc721", nft.address), purpose="gate", min_amount=1)
    return community, sync, token, nft, wallets, cs


def discord(i: int) -> str:
    return str(500000000000000000 + i)


def test_first_sync_ranks_tiers_and_badges(engine, setup):
    community, sync, token, nft, wallets, cs = setup
    progress = []
    diff = sync.run(community.id, progress=lambda *a: progress.append(a))
    # Member 24 holds most among pass holders (250): rank 1. Members 25-29 lack the pass: no rank.
    with engine.db.tenant(community.id):
        p24 = engine.repos.profiles.by_discord_id(discord(24))
        p25 = engine.repos.profiles.by_discord_id(discord(25))
        p0 = engine.repos.profiles.by_discord_id(discord(0))
        assert (p24.rank, p24.tier) == (1, "Gold")
        assert (p25.rank, p25.tier) == (None, None)
        assert (p0.rank, p0.tier) == (25, "Silver")
        assert engine.repos.tier_history.for_profile(p24.id)[-1].to_tier == "Gold"
        badges = {b.badge_type for b in engine.repos.badges.for_profile(p24.id)}
        assert {"top_tier", "early_adopter", "veteran"} <= badges  # joined 96 days ago, Gold
    assert len(diff.joined) == 25 and diff.unknown == [] and diff.left == []
    assert sorted(diff.badges_earned["top_tier"]) == sorted(discord(i) for i in range(15, 25))
    assert diff.chain_requests == 6  # 30 wallets x 2 assets in chunks of 10
    assert progress[0][0] == "reading chain" and progress[-1][0] == "writing"


def test_second_sync_reports_the_diff(engine, chain, setup):
    community, sync, token, nft, wallets, cs = setup
    sync.run(community.id)
    chain.send(token.functions.mint(cs[0], 10_000))  # member 0 jumps to rank 1
    chain.send(nft.functions.mint(cs[29], 999))  # member 29 gets the pass
    diff = sync.run(community.id)
    assert diff.promoted == [discord(0)]
    assert discord(29) in diff.joined
    assert discord(15) in diff.demoted  # pushed from rank 10 (Gold) to 12 (Silver): basic has no grace
    again = sync.run(community.id)
    assert again.promoted == again.demoted == again.joined == again.left == []
    assert again.badges_earned == {}


def test_rpc_errors_mid_sync_leave_tiers_alone(engine, anvil, setup):
    community, sync, token, nft, wallets, cs = setup
    sync.run(community.id)
    with engine.db.tenant(community.id):
        before = {p.discord_id: (p.tier, p.rank) for p in engine.repos.profiles.all()}
    proxy = RpcProxy(anvil.url)
    try:
        proxy.mode, proxy.remaining = "fail_after", 4  # the rank asset's 3 chunks, 1 of the gate's, then errors
        broken = Web3ChainReader("berachain", [proxy.url], chunk_size=10)
        flaky = EligibilitySync(engine.db, engine.repos, EligibilityOrchestrator({"berachain": broken}),
                                clock=NOW.timestamp)
        diff = flaky.run(community.id)
    finally:
        proxy.stop()
    assert len(diff.unknown) == 20  # members 10-29: their gate reads failed
    assert diff.left == [] and diff.demoted == []
    with engine.db.tenant(community.id):
        after = {p.discord_id: (p.tier, p.rank) for p in engine.repos.profiles.all()}
        for d in diff.unknown:
            assert after[d] == before[d]  # nobody lost a tier to a failed read
        revoked = [b for p in engine.repos.profiles.all() for b in engine.repos.badges.for_profile(p.id)
                   if b.revoked_at]
        assert revoked == []


def test_sync_without_assets_is_a_clear_error(engine, make_community, anvil):
    community = make_community()
    sync = EligibilitySync(engine.db, engine.repos,
                           EligibilityOrchestrator({"berachain": Web3ChainReader("berachain", [anvil.url])}))
    with pytest.raises(ValidationError, match="no assets are configured"):
        sync.run(community.id)
