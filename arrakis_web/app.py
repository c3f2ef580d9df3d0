"""``arrakis web``: the wallet verification page members reach from /verify, and Slack's
interactive payloads (the Approve / Reject buttons of an approval request, and the code dialog that
every approval and rejection opens).

The wallet page (``GET /verify/<token>``) asks the browser wallet (EIP-1193) for its address,
gets the Sign-In with Ethereum message for it (``POST .../challenge``), has the wallet sign it
(``personal_sign``) and sends the signature (``POST .../complete``); a member without a browser
wallet pastes a signature made elsewhere. The link works once and for 15 minutes.

Every request is checked before anything is read from it: Slack's signature over the raw body
with the signing secret (``v0=HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)``), a
timestamp no more than five minutes off, and a signature never seen before (kept in Redis for
ten minutes, so a captured request cannot be sent again). The Slack user must be an operator
(``operators add --slack ID``); the approval rules are the engine's, the same as in the CLI.

Engine calls block (PostgreSQL, Redis, Slack's API), so each runs on a thread; Slack gets its
answer within its three seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from arrakis_engine import keys
from arrakis_engine.errors import ArrakisError, MfaRefused, ValidationError
from arrakis_engine.adapters.prometheus import add_metrics_route
from arrakis_engine.adapters.notify.approvals import APPROVE_ACTION, REJECT_ACTION

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine
    from arrakis_engine.ports import Clock

log = logging.getLogger(__name__)

MAX_SKEW = 300  # seconds between Slack's timestamp and ours
REPLAY_TTL = 600
MAX_BODY = 64 * 1024


class BadPayload(ValueError):
    """A signed Slack payload that does not have the shape Slack sends."""


def _is(value, kind, where: str, *, optional: bool = False):
    if value is None and optional:
        return value
    if not isinstance(value, kind):
        raise BadPayload(f"unexpected payload: {where} is not {'an object' if kind is dict else 'a ' + kind.__name__}")
    return value


def check_payload(payload) -> None:
    """Every field the handlers read has the type Slack documents, or BadPayload (400): a signed
    request of an unexpected shape is refused in one line, never a traceback."""
    _is(payload, dict, "the payload")
    _is(payload.get("type"), str, "type", optional=True)
    user = _is(payload.get("user"), dict, "user", optional=True)
    if user is not None:
        _is(user.get("id"), str, "user.id", optional=True)
    for name in ("channel", "container"):
        place = _is(payload.get(name), dict, name, optional=True)
        if place is not None:
            _is(place.get("id"), str, f"{name}.id", optional=True)
            _is(place.get("channel_id"), str, f"{name}.channel_id", optional=True)
    _is(payload.get("trigger_id"), str, "trigger_id", optional=True)
    for i, action in enumerate(_is(payload.get("actions"), list, "actions", optional=True) or []):
        _is(action, dict, f"actions[{i}]")
        _is(action.get("action_id"), str, f"actions[{i}].action_id", optional=True)
        _is(action.get("value"), str, f"actions[{i}].value", optional=True)
    view = _is(payload.get("view"), dict, "view", optional=True)
    if view is not None:
        _is(view.get("callback_id"), str, "view.callback_id", optional=True)
        _is(view.get("private_metadata"), str, "view.private_metadata", optional=True)
        state = _is(view.get("state"), dict, "view.state", optional=True) or {}
        values = _is(state.get("values"), dict, "view.state.values", optional=True) or {}
        for block, inputs in values.items():
            for field, answer in (_is(inputs, dict, f"view.state.values.{block}") or {}).items():
                answer = _is(answer, dict, f"view.state.values.{block}.{field}")
                _is(answer.get("value"), str, f"view.state.values.{block}.{field}.value", optional=True)


class SlackInteractions:
    def __init__(self, engine: Engine, signing_secret: str, *, clock: Clock = time.time) -> None:
        if not signing_secret:
            raise ValidationError("SLACK_SIGNING_SECRET is not set: without it nobody can tell Slack's button "
                                  "presses from forged ones", field="SLACK_SIGNING_SECRET")
        self.engine = engine
        self.secret = signing_secret.encode("utf-8")
        self.clock = clock

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/slack/interactions", self.handle)
        app.router.add_get("/healthz", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        why = self._refusal(body, headers)
        if why:
            log.warning("refused a Slack request: %s", why)
            return web.json_response({"ok": False, "error": why}, status=401)
        try:
            payload = json.loads(parse_qs(body.decode("utf-8"), errors="strict").get("payload", [""])[0])
            check_payload(payload)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            why = str(exc) if isinstance(exc, BadPayload) else "no payload"
            log.warning("refused a signed Slack request: %s", why)
            return web.json_response({"ok": False, "error": why}, status=400)
        kind = payload.get("type")
        if kind == "block_actions":
            await asyncio.to_thread(self._button, payload)
            return web.Response(status=200)
        if kind == "view_submission" and (payload.get("view") or {}).get("callback_id") == "approval.code":
            answer = await asyncio.to_thread(self._code_submitted, payload)
            return web.json_response(answer) if answer else web.Response(status=200)
        return web.Response(status=200)  # other interactions are not ours

    def _refusal(self, body: bytes, headers: dict) -> str | None:
        stamp = headers.get("x-slack-request-timestamp", "")
        signature = headers.get("x-slack-signature", "")
        if not stamp or not signature:
            return "not signed"
        if not stamp.isascii() or not stamp.isdigit():
            return "bad timestamp"
        if abs(self.clock() - int(stamp)) > MAX_SKEW:
            return "stale timestamp"
        # Over the raw bytes: a body that is not UTF-8 is simply not signed right (slack-sdk's
        # verifier decodes it first and fails with an error instead).
        expected = "v0=" + hmac.new(self.secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return "bad signature"
        if not self.engine.redis.set(keys.slack_seen(signature), stamp, nx=True, ex=REPLAY_TTL):
            return "replayed"
        return None

    # --- what the buttons do ---------------------------------------------------------------------

    def _button(self, payload: dict) -> None:
        user = (payload.get("user") or {}).get("id", "")
        channel = (payload.get("channel") or (payload.get("container") or {})).get("id") or \
            (payload.get("container") or {}).get("channel_id", "")
        for action in payload.get("actions") or []:
            action_id, request_id = action.get("action_id"), action.get("value", "")
            if action_id not in (APPROVE_ACTION, REJECT_ACTION):
                continue
            try:
                # The Slack user is mapped to their operator before anything is compared; every
                # answer (approve or reject, any risk) then asks for that operator's code.
                operator = self.engine.operators.by_slack(user)
                approvals = self.engine.approvals
                request = approvals.get(request_id)
                decision = "reject" if action_id == REJECT_ACTION else "approve"
                self._precheck(request, operator, decision)
                if self.engine.slack is None:
                    raise ValidationError("Slack is not configured here (SLACK_BOT_TOKEN and "
                                          "SLACK_APPROVAL_CHANNEL), so no code can be asked for")
                self.engine.slack.open_code_dialog(payload.get("trigger_id", ""), request, decision=decision)
            except ArrakisError as exc:
                self._tell(channel, user, f"Not done: {exc}")

    def _precheck(self, request, operator, decision: str = "approve") -> None:
        """Refuse before asking for a code someone could never use (they burn no attempt)."""
        why, _ = self.engine.approvals.may_answer(request.id, by=operator.name, approve=decision == "approve")
        if why:
            raise ValidationError(why)

    def _code_submitted(self, payload: dict) -> dict | None:
        view = payload.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}
        code = ((values.get("code") or {}).get("value") or {}).get("value")
        reason = ((values.get("reason") or {}).get("value") or {}).get("value")
        user = (payload.get("user") or {}).get("id", "")
        meta = str(view.get("private_metadata", ""))
        try:
            operator = self.engine.operators.by_slack(user)
            if meta.startswith("reject:"):
                self.engine.approvals.reject(meta[len("reject:"):], by=operator.name, code=code, reason=reason,
                                             via="slack")
            else:
                self.engine.approvals.approve(meta, by=operator.name, code=code, reason=reason, via="slack")
        except MfaRefused as exc:
            return {"response_action": "errors", "errors": {"code": str(exc)[:150]}}
        except ArrakisError as exc:
            return {"response_action": "errors", "errors": {"code": f"Not done: {exc}"[:150]}}
        return None

    def _tell(self, channel: str, user: str, text: str) -> None:
        if self.engine.slack is None or not channel:
            log.warning("Slack button refused for %s: %s", user, text)
            return
        try:
            self.engine.slack.tell_user(channel, user, text)
        except ArrakisError as exc:
            log.warning("could not tell %s why: %s (%s)", user, text, exc)


STATIC = Path(__file__).parent / "static"
PAGE = (STATIC / "verify.html").read_text()
ASSETS = {"verify.js": ("application/javascript", (STATIC / "verify.js").read_text()),
          "verify.css": ("text/css", (STATIC / "verify.css").read_text())}
# No inline script or style at all: the page's script and style are files of this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
MAX_FORM = 16 * 1024
NOT_FINISHED = "this could not be finished just now: reload the page, or run /verify again in Discord"
_TOKEN_PATH = re.compile(r"(/verify/)[^/?#\s]+")


def redact(text: str) -> str:
    """A request path or line with any one-time link token replaced (what logs may keep)."""
    return _TOKEN_PATH.sub(r"\1<link>", text)


@web.middleware
async def security_headers(request: web.Request, handler):
    """``nosniff`` on every answer, errors included; pages set the rest."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Content-Type-Options"] = "nosniff"
        raise
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log without the one-time tokens of /verify links: method, redacted path,
    status, size and time only (no Referer, whose URL could hold a token too)."""

    def log(self, request, response, time: float) -> None:  # noqa: A002 (aiohttp's name)
        self.logger.info('%s "%s %s" %s %s %.3fs', request.remote, request.method, redact(request.path),
                         response.status, response.body_length, time)


def _from_database(exc: BaseException) -> bool:
    """Whether the database's own words are inside ``exc`` (a constraint name, a key): those are
    for the log, never for the caller."""
    seen = exc
    while seen is not None:
        if type(seen).__module__.split(".")[0] in {"psycopg2", "psycopg"}:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class WalletPages:
    """The wallet verification page and its two JSON calls; the rules are the engine's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(security_headers)
        app.router.add_get("/static/{name}", self.asset)
        app.router.add_get("/verify/{token}", self.page)
        app.router.add_post("/verify/{token}/challenge", self.challenge)
        app.router.add_post("/verify/{token}/complete", self.complete)

    async def asset(self, request: web.Request) -> web.Response:
        found = ASSETS.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        kind, text = found
        return web.Response(text=text, content_type=kind, headers={**PAGE_HEADERS, "Cache-Control": "no-cache"})

    async def page(self, request: web.Request) -> web.Response:
        verification = self.engine.verification
        try:
            link = await asyncio.to_thread(verification.describe, request.match_info["token"])
        except ArrakisError as exc:
            body = ("<!doctype html><meta charset=utf-8><title>Link expired · Arrakis</title>"
                    f'<link rel="stylesheet" href="/static/verify.css"><p>{html.escape(exc.message)}.</p>')
            return web.Response(text=body, status=410, content_type="text/html", headers=PAGE_HEADERS)
        return web.Response(text=PAGE.replace("{community}", html.escape(link["name"])), content_type="text/html",
                            headers=PAGE_HEADERS)

    async def _json(self, request: web.Request) -> dict:
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise ValidationError("that is too much to send", field="body")
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise ValidationError("the page sent something that is not JSON", field="body") from None
        if not isinstance(body, dict):
            raise ValidationError("the page sent something unexpected", field="body")
        return body

    async def challenge(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
            message = await asyncio.to_thread(self.engine.verification.challenge, request.match_info["token"],
                                              str(body.get("address", "")))
        except ArrakisError as exc:
            if _from_database(exc):
                log.warning("a wallet challenge could not be made: %s", redact(str(exc)))
                return web.json_response({"error": NOT_FINISHED}, status=409, headers=PAGE_HEADERS)
            return web.json_response({"error": exc.message}, status=400, headers=PAGE_HEADERS)
        return web.json_response({"message": message}, headers=PAGE_HEADERS)

    async def complete(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
            linked = await asyncio.to_thread(self.engine.verification.complete, request.match_info["token"],
                                             str(body.get("message", "")), str(body.get("signature", "")))
        except ArrakisError as exc:
            if _from_database(exc):
                log.warning("a wallet link could not be completed: %s", redact(str(exc)))
                return web.json_response({"error": NOT_FINISHED}, status=409, headers=PAGE_HEADERS)
            return web.json_response({"error": exc.message}, status=400, headers=PAGE_HEADERS)
        standing = (f"your tier: {linked.tier} (rank {linked.rank})" if linked.tier else
                    "no tier yet: your holdings do not reach one")
        text = f"Linked {linked.wallet} to {linked.community}; {standing}; {linked.roles}. You can close this page."
        return web.json_response({"ok": True, "wallet": linked.wallet, "tier": linked.tier, "rank": linked.rank,
                                  "text": text}, headers=PAGE_HEADERS)


def build_app(engine, signing_secret: str | None) -> web.Application:
    """The web process: the wallet page always, Slack's endpoint when its signing secret is set."""
    if signing_secret:
        app = SlackInteractions(engine, signing_secret).app()
    else:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", lambda request: web.json_response({"ok": True}))
        log.info("SLACK_SIGNING_SECRET is not set: Slack's buttons are not received here")
    WalletPages(engine).add_routes(app)
    add_metrics_route(app, engine)  # the platform's figures for Prometheus
    return app


def serve(engine, signing_secret: str | None, *, host: str, port: int) -> None:
    """Run until stopped (SIGINT/SIGTERM)."""
    app = build_app(engine, signing_secret)
    web.run_app(app, host=host, port=port, print=lambda *a: log.info("listening on %s:%d", host, port),
                handle_signals=True, access_log_class=RedactingAccessLogger)
