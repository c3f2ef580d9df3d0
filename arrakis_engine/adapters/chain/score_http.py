"""Score Service client (httpx) behind a ratio circuit breaker.

Wire format (JSON, header ``X-API-Key``, 5 s timeout):

    GET /scores/{address}          -> {"address", "rank", "conviction", "activity", "held", "claimed",
                                       "burned", "first_claim_at", "last_activity_at"}   (404: no score)
    GET /scores/batch?addresses=.. -> {"scores": [score, ...], "missing": [address, ...]}
    GET /leaderboard?limit&offset  -> {"entries": [score, ...], "total": n}
    GET /health                    -> {"status": "ok"}

Amounts are decimal strings, parsed exactly (``Decimal``), never through float. ``conviction``
and ``activity`` arrive as decimal strings between 0 and 1 (a share of the service's maximum);
Arrakis normalises both to one scale of **0 to 100,000 points** (value x 100,000), the scale
every badge threshold uses (Active 50, Engaged 200, First Maker 10,000), so each is reachable.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Callable, Sequence

import httpx

from ...errors import ScoreServiceError
from ...chain.breaker import BreakerOpen, RatioBreaker
from ...domain.chain import Score, check_address

SCALE = Decimal(100_000)
MAX_BATCH = 150  # keeps the request line under the common 8 KiB limit


def _dec(value, field: str) -> Decimal:
    if not isinstance(value, str):
        raise ScoreServiceError(f"the Score Service sent {field} as {type(value).__name__}, not a decimal string")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ScoreServiceError(f"the Score Service sent an invalid {field}: {value[:40]!r}") from None
    if not d.is_finite() or d < 0:
        raise ScoreServiceError(f"the Score Service sent an out-of-range {field}")
    return d


def _share(value, field: str) -> Decimal:
    d = _dec(value, field)
    if d > 1:
        raise ScoreServiceError(f"the Score Service sent {field} above 1")
    return d * SCALE


def _time(value) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ScoreServiceError(f"the Score Service sent an invalid time {str(value)[:40]!r}") from None


def parse_score(d: dict) -> Score:
    if not isinstance(d, dict):
        raise ScoreServiceError("the Score Service sent a score that is not an object")
    rank = d.get("rank")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ScoreServiceError("the Score Service sent an invalid rank")
    return Score(
        address=check_address(d.get("address", ""), "score address"),
        rank=rank,
        conviction=_share(d.get("conviction", "0"), "conviction"),
        activity=_share(d.get("activity", "0"), "activity"),
        held=_dec(d.get("held", "0"), "held"),
        claimed=_dec(d.get("claimed", "0"), "claimed"),
        burned=_dec(d.get("burned", "0"), "burned"),
        first_claim_at=_time(d.get("first_claim_at")),
        last_activity_at=_time(d.get("last_activity_at")),
    )


class ScoreClient:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, breaker: RatioBreaker | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                  transport=transport)
        self.breaker = breaker or RatioBreaker("score-service", clock=clock)
        self.requests = 0

    def breaker_state(self) -> str:
        return self.breaker.state

    def error_rate(self) -> float:
        return self.breaker.error_rate()

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict | None = None, *, allow_404: bool = False):
        def go():
            self.requests += 1
            try:
                resp = self._http.get(path, params=params)
            except httpx.TimeoutException as exc:
                raise ScoreServiceError("the Score Service did not answer within the timeout") from exc
            except httpx.HTTPError as exc:
                raise ScoreServiceError(f"the Score Service is unreachable ({type(exc).__name__})") from exc
            if resp.status_code == 404 and allow_404:
                return None
            if resp.status_code in (401, 403):
                raise ScoreServiceError("the Score Service refused our API key (check SCORE_API_KEY)")
            if resp.status_code >= 400:
                raise ScoreServiceError(f"the Score Service answered HTTP {resp.status_code}")
            try:
                return resp.json()
            except ValueError as exc:
                raise ScoreServiceError("the Score Service answered something that is not JSON") from exc

        try:
            return self.breaker.call(go)
        except BreakerOpen as exc:
            raise ScoreServiceError("the Score Service is switched off for now (circuit open after errors)") from exc

    def score(self, address: str) -> Score | None:
        """The address's score, or None when the service has none for it."""
        data = self._get(f"/scores/{check_address(address)}", allow_404=True)
        return None if data is None else parse_score(data)

    def scores(self, addresses: Sequence[str]) -> dict[str, Score]:
        """Scores for many addresses (in requests of up to 150); missing ones are left out."""
        out: dict[str, Score] = {}
        addrs = [check_address(a) for a in addresses]
        for i in range(0, len(addrs), MAX_BATCH):
            data = self._get("/scores/batch", {"addresses": ",".join(addrs[i:i + MAX_BATCH])})
            for item in (data or {}).get("scores", []):
                s = parse_score(item)
                out[s.address] = s
        return out

    def leaderboard(self, limit: int = 100, offset: int = 0) -> tuple[list[Score], int]:
        data = self._get("/leaderboard", {"limit": int(limit), "offset": int(offset)})
        return [parse_score(e) for e in data.get("entries", [])], int(data.get("total", 0))

    def health(self) -> bool:
        try:
            return (self._get("/health") or {}).get("status") == "ok"
        except ScoreServiceError:
            return False
