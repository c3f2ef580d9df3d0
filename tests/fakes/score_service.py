"""A fake Score Service (aiohttp on 127.0.0.1) speaking the real wire format.

It can be slowed (``delay``), made to fail a set share of requests with HTTP 503
(``fail_rate``, spread evenly and deterministically), or taken down and brought back on the
same port (``down()`` / ``up()``: connection refused in between). It checks ``X-API-Key``.
"""

from __future__ import annotations

import asyncio
import math
import threading

from aiohttp import web


class FakeScoreService:
    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.scores: dict[str, dict] = {}
        self.delay = 0.0
        self.fail_rate = 0.0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = None
        self.port = 0
        self._run(self._start())
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/scores/batch", self._batch)
        app.router.add_get("/scores/{address}", self._one)
        app.router.add_get("/leaderboard", self._leaderboard)
        return app

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def down(self) -> None:
        self._run(self._stop())

    def up(self) -> None:
        self._run(self._start())

    def close(self) -> None:
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def set_score(self, address: str, *, rank=None, conviction="0", activity="0", held="0", claimed="0",
                  burned="0", first_claim_at=None, last_activity_at=None) -> None:
        address = address.lower()
        self.scores[address] = {"address": address, "rank": rank, "conviction": conviction, "activity": activity,
                                "held": held, "claimed": claimed, "burned": burned,
                                "first_claim_at": first_claim_at, "last_activity_at": last_activity_at}

    async def _gate(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        n = self.requests
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.headers.get("X-API-Key") != self.api_key:
            return web.json_response({"error": "invalid api key"}, status=401)
        if self.fail_rate and math.floor(n * self.fail_rate) > math.floor((n - 1) * self.fail_rate):
            return web.json_response({"error": "temporarily unavailable"}, status=503)
        return None

    async def _health(self, request):
        return await self._gate(request) or web.json_response({"status": "ok"})

    async def _one(self, request):
        denied = await self._gate(request)
        if denied:
            return denied
        score = self.scores.get(request.match_info["address"].lower())
        if score is None:
            return web.json_response({"error": "no score for this address"}, status=404)
        return web.json_response(score)

    async def _batch(self, request):
        denied = await self._gate(request)
        if denied:
            return denied
        wanted = [a.lower() for a in request.query.get("addresses", "").split(",") if a]
        return web.json_response({"scores": [self.scores[a] for a in wanted if a in self.scores],
                                  "missing": [a for a in wanted if a not in self.scores]})

    async def _leaderboard(self, request):
        denied = await self._gate(request)
        if denied:
            return denied
        limit, offset = int(request.query.get("limit", 100)), int(request.query.get("offset", 0))
        ranked = sorted((s for s in self.scores.values() if s["rank"]), key=lambda s: s["rank"])
        return web.json_response({"entries": ranked[offset:offset + limit], "total": len(ranked)})
