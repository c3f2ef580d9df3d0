"""Two-tier eligibility and the degradation table, row by row, on anvil + the fake Score Service
+ real Redis (score cache) + real PostgreSQL (native ranking)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arrakis_engine.chain.orchestrator import EligibilityOrchestrator, Rule
from arrakis_engine.storage.redis_state import ScoreCache
from arrakis_engine.chain.ranking import HolderIndexer
from arrakis_engine.adapters.chain.score_http import ScoreClient
from arrakis_engine.domain.chain import Asset
from arrakis_engine.adapters.chain.web3_reader import Web3ChainReader
from arrakis_engine.errors import ValidationError
from tests.fixtures.chain import holder


@pytest.fixture(scope="module")
def token(chain):
    start = chain.w3.eth.block_number
    t = chain.deploy("TestERC20", "BGT", "BGT", 18)
    for i in range(5):
        chain.send(t.functions.mint(chain.w3.to_checksum_address(holder(30_000 + i)), (5 - i) * 1000))
    return Asset("berachain", "erc20", t.address, never_redeemed=True), start


@pytest.fixture
def service(score_service):
    return score_service


@pytest.fixture
def world(engine, anvil, service, token, clock):
    engine.redis.flushdb()
    score = ScoreClient(service.url, service.api_key, clock=clock, timeout=1.0)
    orch = EligibilityOrchestrator({"berachain": Web3ChainReader("berachain", [anvil.url])}, score=score,
                                   cache=ScoreCache(engine.redis, clock=clock), db=engine.db)
    yield orch, clock
    score.close()


A = holder(30_000)  # richest holder, 5000
E = holder(30_004)  # poorest, 1000


def break_service(orch, service):
    service.down()
    for _ in range(5):
        orch.score.health()
    assert orch.score.breaker.state == "open"


def test_balance_and_nft_are_native_and_unaffected(world, service, token):
    orch, _ = world
    asset, _ = token
    ok = orch.check_basic_eligibility(A, asset, 4000)
    assert (ok.eligible, ok.source, ok.value) == (True, "native", 5000)
    break_service(orch, service)
    still = orch.check_basic_eligibility(E, asset, 4000)
    assert (still.eligible, still.source) == (False, "native")


def test_score_when_the_service_answers(world, service):
    orch, _ = world
    service.set_score(A, rank=3, activity="0.001", conviction="0.2", burned="0")
    r = orch.check_advanced_eligibility(A, Rule("rank_at_most", 7))
    assert (r.eligible, r.source, r.value) == (True, "score", 3)
    a = orch.check_advanced_eligibility(A, Rule("activity_at_least", 100))
    assert (a.eligible, a.source, a.value) == (True, "score", Decimal(100))
    assert orch.status()["mode"] == "full"


def test_rank_threshold_falls_back_to_native_ranking(world, service, engine, make_community, token, anvil):
    orch, _ = world
    asset, start = token
    community = make_community()
    HolderIndexer(engine.db, Web3ChainReader("berachain", [anvil.url])).index(community.id, asset, from_block=start)
    break_service(orch, service)
    top = orch.check_advanced_eligibility(A, Rule("rank_at_most", 2, asset=asset), community_id=community.id)
    assert (top.eligible, top.source, top.value) == (True, "native_degraded", 1)
    low = orch.check_advanced_eligibility(E, Rule("rank_at_most", 2, asset=asset), community_id=community.id)
    assert (low.eligible, low.source, low.value) == (False, "native_degraded", 5)


def test_rank_threshold_falls_back_to_balance_check_without_an_index(world, service, token, make_community):
    orch, _ = world
    asset, _ = token
    break_service(orch, service)
    r = orch.check_advanced_eligibility(E, Rule("rank_at_most", 2, asset=asset, min_amount=500),
                                        community_id=make_community().id)
    assert (r.eligible, r.source, r.value) == (True, "native_degraded", 1000)


def test_never_redeemed_cached_else_denied(world, service, token):
    orch, clock = world
    service.set_score(A, rank=1, burned="0")
    assert orch.check_advanced_eligibility(A, Rule("never_redeemed")).source == "score"
    break_service(orch, service)
    clock.t += 3600  # stale, but the breaker is open: the cache still serves
    cached = orch.check_advanced_eligibility(A, Rule("never_redeemed"))
    assert (cached.eligible, cached.source) == (True, "cached")
    denied = orch.check_advanced_eligibility(E, Rule("never_redeemed"))
    assert (denied.eligible, denied.source) == (False, "degraded")
    status = orch.status()
    assert status["mode"] == "cached" and status["cache_age_seconds"] == pytest.approx(3600)


def test_activity_and_conviction_cached_else_zero(world, service):
    orch, clock = world
    service.set_score(A, rank=1, activity="0.003", conviction="0.5")
    orch.scores([A])
    break_service(orch, service)
    clock.t += 600  # no longer fresh: served as cached while the service is down
    c = orch.check_advanced_eligibility(A, Rule("conviction_at_least", 10000))
    assert (c.eligible, c.source, c.value) == (True, "cached", Decimal(50000))
    z = orch.check_advanced_eligibility(E, Rule("activity_at_least", 50))
    assert (z.eligible, z.source, z.value) == (False, "degraded", Decimal(0))


def test_fresh_cache_is_used_without_calling_the_service(world, service):
    orch, clock = world
    service.set_score(A, rank=2)
    orch.scores([A])
    sent = service.requests
    clock.t += 299
    assert orch.scores([A])[A][1] == "score" and service.requests == sent
    clock.t += 2
    orch.scores([A])
    assert service.requests == sent + 1


def test_status_partial_without_score_service(engine, anvil):
    orch = EligibilityOrchestrator({"berachain": Web3ChainReader("berachain", [anvil.url])})
    assert orch.status()["mode"] == "partial"
    assert orch.scores([A])[A] == (None, "degraded")


def test_failed_chain_read_is_unknown(engine, token):
    asset, _ = token
    orch = EligibilityOrchestrator({"berachain": Web3ChainReader("berachain", ["http://127.0.0.1:9"], timeout=0.5)})
    r = orch.check_basic_eligibility(A, asset)
    assert r.eligible is None and r.source == "native"
    with pytest.raises(ValidationError, match="RPC_URLS_BASE"):
        orch.check_basic_eligibility(A, Asset("base", "native"))
