"""A fake Discord webhook (``/api/webhooks/{id}/{token}``), strict about what Discord documents:
JSON bodies only, ``content`` at most 2,000 characters, at most 10 embeds, an embed title of 256
and a description of 4,096 characters, 25 fields of 256/1,024; ``?wait=true`` returns the message
(otherwise 204); ``PATCH .../messages/{id}`` edits a message this webhook sent (404 otherwise).
"""

from __future__ import annotations

import itertools

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


class FakeDiscordWebhook(LoopbackServer):
    def __init__(self) -> None:
        self.messages: dict[str, dict] = {}
        self.edits: list[tuple[str, dict]] = []
        self.refused: list[str] = []
        self._ids = itertools.count(1_200_000_000_000_000_001)
        app = web.Application()
        app.router.add_post("/api/webhooks/{id}/{token}", self._post)
        app.router.add_patch("/api/webhooks/{id}/{token}/messages/{message}", self._patch)
        self.serve(app)
        self.url = f"http://127.0.0.1:{self.port}/api/webhooks/1100000000000000001/test-webhook-token"

    def _refuse(self, why: str, status: int = 400) -> web.Response:
        self.refused.append(why)
        return web.json_response({"code": 50035, "message": f"Invalid Form Body: {why}"}, status=status)

    async def _body(self, request: web.Request):
        if request.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return None, self._refuse("expected application/json")
        try:
            return await request.json(), None
        except ValueError:
            return None, self._refuse("not JSON")

    @staticmethod
    def _problem(body: dict) -> str | None:
        if len(body.get("content") or "") > 2000:
            return "content over 2000 characters"
        embeds = body.get("embeds") or []
        if not body.get("content") and not embeds:
            return "empty message"
        if len(embeds) > 10:
            return "more than 10 embeds"
        for e in embeds:
            if len(e.get("title") or "") > 256 or len(e.get("description") or "") > 4096:
                return "embed title or description too long"
            fields = e.get("fields") or []
            if len(fields) > 25 or any(len(f.get("name", "")) > 256 or len(f.get("value", "")) > 1024
                                       or not f.get("name") or not f.get("value") for f in fields):
                return "embed fields invalid"
        return None

    async def _post(self, request: web.Request) -> web.Response:
        body, refused = await self._body(request)
        if refused:
            return refused
        problem = self._problem(body)
        if problem:
            return self._refuse(problem)
        message = {"id": str(next(self._ids)), **body}
        self.messages[message["id"]] = message
        if request.query.get("wait") == "true":
            return web.json_response(message)
        return web.Response(status=204)

    async def _patch(self, request: web.Request) -> web.Response:
        message_id = request.match_info["message"]
        if message_id not in self.messages:
            return self._refuse("Unknown Message", status=404)
        body, refused = await self._body(request)
        if refused:
            return refused
        problem = self._problem({**self.messages[message_id], **body})
        if problem:
            return self._refuse(problem)
        self.messages[message_id].update(body)
        self.edits.append((message_id, body))
        return web.json_response(self.messages[message_id])
