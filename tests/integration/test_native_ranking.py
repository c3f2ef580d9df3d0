"""Native holder ranking from Transfer logs on anvil, through a node that refuses big ranges."""

from __future__ import annotations

import pytest

from arrakis_engine.chain.ranking import HolderIndexer
from arrakis_engine.domain.chain import Asset
from arrakis_engine.adapters.chain.web3_reader import Web3ChainReader
from arrakis_engine.storage.chain_holdings import HoldingsRepository
from tests.fakes.rpc_proxy import RpcProxy
from tests.fixtures.chain import holder


@pytest.fixture
def proxy(anvil):
    p = RpcProxy(anvil.url)
    yield p
    p.stop()


def test_index_rank_resume_and_never_redeemed(engine, make_community, chain, proxy):
    token = chain.deploy("TestERC20", "Spice", "SPICE", 18)
    start = chain.w3.eth.block_number
    people = [chain.impersonate(holder(10_000 + i)) for i in range(12)]
    for i, who in enumerate(people):  # one block per mint: 12 blocks of logs
        chain.send(token.functions.mint(who, (i + 1) * 100))
    # Holder 11 sends 1000 to holder 0; holder 10 burns (sends to the zero address).
    chain.send(token.functions.transfer(people[0], 1000), sender=people[11])
    chain.send(token.functions.burn(50), sender=people[10])

    community = make_community()
    asset = Asset("berachain", "erc20", token.address, never_redeemed=True)
    proxy.max_log_range = 3
    reader = Web3ChainReader("berachain", [proxy.url])
    indexer = HolderIndexer(engine.db, reader, page_size=64)
    report = indexer.index(community.id, asset, from_block=start)
    assert report.refused_ranges >= 5  # 64 -> 32 -> 16 -> 8 -> 4 -> 3 blocks
    assert proxy.refused_ranges == report.refused_ranges
    assert report.logs == 14

    holdings = HoldingsRepository(engine.db)
    with engine.db.tenant(community.id):
        ranked = holdings.ranked(asset.key)
        expected = {p.lower(): reader.get_balance(p, token.address) for p in people}
        assert {a: int(b) for _, a, b in ranked} == {a: b for a, b in expected.items() if b > 0}
        assert ranked[0][1] == people[0].lower() and ranked[0][2] == 1100
        clean = holdings.ranked(asset.key, exclude_redeemed=True)
        assert people[10].lower() not in {a for _, a, _ in clean}
        ranks = holdings.ranks_of(asset.key, [people[0].lower(), people[9].lower()])
        assert ranks[people[0].lower()] == 1

    # Resume: only the new blocks are read.
    chain.send(token.functions.mint(people[5], 10**6))
    seen = proxy.seen
    again = indexer.index(community.id, asset)
    assert again.from_block == report.to_block + 1 and again.logs == 1
    assert proxy.seen - seen <= 3  # block number + one page (plus at most one refusal)
    with engine.db.tenant(community.id):
        assert holdings.ranked(asset.key)[0][1] == people[5].lower()


def test_erc721_holders_are_counted(engine, make_community, chain, anvil):
    nft = chain.deploy("TestERC721", "Pass", "PASS")
    start = chain.w3.eth.block_number
    a, b = chain.impersonate(holder(20_001)), chain.impersonate(holder(20_002))
    chain.send(nft.functions.mintMany([a, a, b], 1))
    chain.send(nft.functions.transferFrom(a, b, 2), sender=a)
    community = make_community()
    asset = Asset("berachain", "erc721", nft.address)
    HolderIndexer(engine.db, Web3ChainReader("berachain", [anvil.url])).index(community.id, asset, from_block=start)
    with engine.db.tenant(community.id):
        ranked = HoldingsRepository(engine.db).ranked(asset.key)
    assert [(addr, int(bal)) for _, addr, bal in ranked] == [(b.lower(), 2), (a.lower(), 1)]
