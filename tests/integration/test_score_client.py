"""Score Service client against a fake service speaking the real wire format."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arrakis_engine.adapters.chain.score_http import ScoreClient, ScoreServiceError

ADDR = "0x" + "ab" * 20


@pytest.fixture
def service(score_service):
    return score_service


@pytest.fixture
def client(service, clock):
    c = ScoreClient(service.url, service.api_key, clock=clock, timeout=1.0)
    yield c
    c.close()


def test_score_parsed_exactly_and_normalised(service, client):
    service.set_score(ADDR, rank=3, conviction="0.1", activity="0.0005", held="123456789.123456789123456789",
                      claimed="10", burned="0", first_claim_at="2025-01-02T03:04:05Z")
    s = client.score(ADDR)
    assert s.rank == 3
    assert s.held == Decimal("123456789.123456789123456789")  # no float on the way
    assert s.conviction == Decimal(10000)  # 0.1 of the maximum: First Maker's threshold, reachable
    assert s.activity == Decimal(50)
    assert s.never_redeemed and s.first_claim_at.year == 2025
    assert client.score("0x" + "cd" * 20) is None  # 404: no score, not an error


def test_batch_and_leaderboard(service, client):
    for i in range(1, 451):
        service.set_score(f"0x{i:040x}", rank=i, held=str(1000 - i))
    got = client.scores([f"0x{i:040x}" for i in range(1, 460)])
    assert len(got) == 450 and service.requests == 4  # 459 addresses in requests of 150
    top, total = client.leaderboard(limit=5)
    assert total == 450 and [s.rank for s in top] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("field, value", [("held", 12.5), ("held", "lots"), ("conviction", "1.5"), ("rank", 0),
                                          ("burned", "-1")])
def test_malformed_answers_are_clear_errors(service, client, field, value):
    service.set_score(ADDR)
    service.scores[ADDR][field] = value
    with pytest.raises(ScoreServiceError):
        client.score(ADDR)


def test_wrong_api_key(service, clock):
    c = ScoreClient(service.url, "wrong", clock=clock)
    with pytest.raises(ScoreServiceError, match="API key"):
        c.score(ADDR)
    c.close()


def test_breaker_opens_at_half_errors_over_five_calls_and_half_opens_after_30s(service, client, clock):
    service.set_score(ADDR, rank=1)
    service.fail_rate = 0.5  # every second request fails: ok, err, ok, err, ...
    outcomes, states = [], []
    for _ in range(6):
        try:
            client.score(ADDR)
            outcomes.append("ok")
        except ScoreServiceError:
            outcomes.append("err")
        states.append(client.breaker.state)
    assert outcomes == ["ok", "err", "ok", "err", "ok", "err"]
    # 2 of 4 is 50 % but fewer than 5 calls; 2 of 5 is 40 %; 3 of 6 is 50 % over 5+ calls: open.
    assert states == ["closed"] * 5 + ["open"]
    sent = service.requests
    with pytest.raises(ScoreServiceError, match="switched off"):
        client.score(ADDR)
    assert service.requests == sent  # an open breaker does not call out
    clock.t += 29.9
    assert client.breaker.state == "open"
    clock.t += 0.1
    assert client.breaker.state == "half-open"
    service.fail_rate = 0.0
    assert client.score(ADDR).rank == 1  # the trial call succeeds
    assert client.breaker.state == "closed"


def test_failed_half_open_trial_reopens(service, client, clock):
    service.set_score(ADDR, rank=1)
    service.down()
    for _ in range(5):
        with pytest.raises(ScoreServiceError):
            client.score(ADDR)
    assert client.breaker.state == "open"
    clock.t += 30
    assert client.breaker.state == "half-open"
    with pytest.raises(ScoreServiceError):
        client.score(ADDR)  # still down
    assert client.breaker.state == "open"
    service.up()
    clock.t += 30
    assert client.score(ADDR).rank == 1
    assert client.breaker.state == "closed"


def test_below_half_errors_stays_closed(service, client):
    service.set_score(ADDR, rank=1)
    service.fail_rate = 0.4
    errors = 0
    for _ in range(20):
        try:
            client.score(ADDR)
        except ScoreServiceError:
            errors += 1
    assert errors == 8 and client.breaker.state == "closed"


def test_slow_service_times_out(service, client):
    service.set_score(ADDR, rank=1)
    service.delay = 1.5
    with pytest.raises(ScoreServiceError, match="timeout"):
        client.score(ADDR)
