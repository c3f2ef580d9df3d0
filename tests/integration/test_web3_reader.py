"""The native reader against a real anvil node with the project's own test tokens."""

from __future__ import annotations

import pytest

from arrakis_engine.domain.chain import UNKNOWN, Asset, ChainReadError
from arrakis_engine.adapters.chain.web3_reader import Web3ChainReader
from tests.fakes.rpc_proxy import RpcProxy
from tests.fixtures.chain import holder


@pytest.fixture(scope="module")
def tokens(chain):
    erc20 = chain.deploy("TestERC20", "Bera Governance", "BGT", 18)
    nft = chain.deploy("TestERC721", "Sietch Pass", "PASS")
    multi = chain.deploy("TestERC1155")
    holders = [holder(i) for i in range(1200)]
    chain.send(erc20.functions.mintMany([chain.w3.to_checksum_address(h) for h in holders],
                                        [10**18 * (i + 1) for i in range(len(holders))]))
    chain.send(nft.functions.mintMany([chain.w3.to_checksum_address(h) for h in holders[:300]], 1))
    chain.send(multi.functions.mint(chain.w3.to_checksum_address(holders[5]), 42, 3))
    chain.set_native_balance(holders[7], 12345)
    return {"erc20": erc20.address.lower(), "nft": nft.address.lower(), "multi": multi.address.lower(),
            "holders": holders}


@pytest.fixture
def reader(anvil):
    return Web3ChainReader("berachain", [anvil.url], chunk_size=500)


def test_single_reads(reader, tokens):
    h = tokens["holders"]
    assert reader.get_balance(h[0], tokens["erc20"]) == 10**18
    assert reader.get_balance(h[7]) == 12345
    assert reader.has_balance(h[1], tokens["erc20"], 2 * 10**18)
    assert not reader.has_balance(h[1], tokens["erc20"], 2 * 10**18 + 1)
    assert reader.owns_nft(h[0], tokens["nft"])  # by count
    assert reader.owns_nft(h[2], tokens["nft"], [3])  # token 3 went to holder 2
    assert not reader.owns_nft(h[2], tokens["nft"], [4, 999999])  # someone else's, and one never minted
    assert not reader.owns_nft(h[400], tokens["nft"])
    assert reader.owns_nft(h[5], tokens["multi"], [42], standard="erc1155")
    assert not reader.owns_nft(h[6], tokens["multi"], [42], standard="erc1155")


def test_batch_reads_use_one_request_per_chunk(reader, tokens):
    asset = Asset("berachain", "erc20", tokens["erc20"])
    before = reader.requests
    got = reader.balances(asset, tokens["holders"])
    assert reader.requests - before == 3  # 1200 reads in chunks of 500
    assert got[tokens["holders"][0]] == 10**18 and got[tokens["holders"][1199]] == 1200 * 10**18
    nfts = reader.balances(Asset("berachain", "erc721", tokens["nft"]), tokens["holders"][295:305])
    assert list(nfts.values()) == [1] * 5 + [0] * 5
    native = reader.balances(Asset("berachain", "native"), [tokens["holders"][7]])
    assert native[tokens["holders"][7]] == 12345
    owners = reader.owners_of(tokens["nft"], [1, 2, 10**9])
    # Never minted: ownerOf reverts, which ERC-721 defines as "no valid owner" (an answer, not a failure).
    assert owners[1] == tokens["holders"][0] and owners[10**9] is None


def test_a_failed_sub_call_is_unknown_not_zero(reader, tokens, anvil):
    # A "token" that is not a contract answers nothing: every read of it fails.
    not_a_token = "0x000000000000000000000000000000000000dead"
    got = reader.balances(Asset("berachain", "erc20", not_a_token), tokens["holders"][:3])
    assert all(v is UNKNOWN for v in got.values())
    with pytest.raises(TypeError):
        bool(UNKNOWN)  # an unknown read cannot be mistaken for "no balance"


def test_failover_to_the_next_endpoint(anvil, tokens):
    bad = RpcProxy(anvil.url)
    bad.mode = "down"
    try:
        reader = Web3ChainReader("berachain", [bad.url, anvil.url])
        assert reader.get_balance(tokens["holders"][0], tokens["erc20"]) == 10**18
        assert bad.seen == 1
        reader.get_balance(tokens["holders"][0], tokens["erc20"])
        assert bad.seen == 1  # the healthy endpoint is now preferred
    finally:
        bad.stop()


def test_every_endpoint_down_is_an_error_for_single_reads_and_unknown_for_batches(anvil, tokens):
    proxies = [RpcProxy(anvil.url) for _ in range(2)]
    for p in proxies:
        p.mode = "error"
    try:
        reader = Web3ChainReader("berachain", [p.url for p in proxies])
        with pytest.raises(ChainReadError, match="every berachain endpoint failed"):
            reader.get_balance(tokens["holders"][0], tokens["erc20"])
        got = reader.balances(Asset("berachain", "erc20", tokens["erc20"]), tokens["holders"][:10])
        assert all(v is UNKNOWN for v in got.values())
    finally:
        for p in proxies:
            p.stop()


def test_per_call_timeout(anvil, tokens):
    slow = RpcProxy(anvil.url)
    slow.mode, slow.delay = "slow", 2.0
    try:
        reader = Web3ChainReader("berachain", [slow.url], timeout=0.3)
        with pytest.raises(ChainReadError):
            reader.get_balance(tokens["holders"][0], tokens["erc20"])
    finally:
        slow.stop()


def test_bad_inputs_are_clear_errors():
    from arrakis_engine.errors import ValidationError

    with pytest.raises(ValidationError, match="unknown chain"):
        Asset("dogechain", "erc20", "0x" + "1" * 40)
    with pytest.raises(ValidationError, match="token id"):
        Asset("berachain", "erc1155", "0x" + "1" * 40)
    with pytest.raises(ValidationError, match="asset address"):
        Asset("berachain", "erc20", "0x123")
    with pytest.raises(ChainReadError, match="no RPC endpoints"):
        Web3ChainReader("berachain", [])
