"""A fake Slack: the Web API methods Arrakis calls (aiohttp on 127.0.0.1), and the other
direction, signed interactive payloads as Slack posts them to an app's request URL.

Web API rules, at their strictest documented reading:

* every call needs the bot token (``Authorization: Bearer``, or a ``token`` field): missing is
  ``not_authed``, wrong is ``invalid_auth``; errors are HTTP 200 with ``{"ok": false}``;
* answers are ``Content-Type: application/json``; bodies may be JSON or form-encoded;
* ``chat.postMessage`` is limited to one message per second per channel: a second one within the
  same second is HTTP 429 with ``Retry-After`` and ``ratelimited``;
* unknown channels, messages, threads, methods and trigger ids are refused with Slack's error
  names; a trigger id works once and for 3 seconds;
* ``conversations.open`` with ``users`` (one user id) opens the bot's direct message channel with
  a member of the workspace (``{"channel": {"id": "D..."}}``; the same one again; an unknown user
  is ``user_not_found``, none is ``users_list_not_supplied``, a ``users`` list with more than one
  user opens a group DM, which this fake does not: ``not_implemented``); ``chat.postMessage`` then
  posts in it (``direct_messages(user)`` reads what the user was sent);
* Block Kit limits: 50 blocks in a message (100 in a modal), header text 150 characters, section
  text 3,000, 25 elements in an actions block, button text 75 and value 2,000, action ids unique
  in a block, modal title and submit 24 characters, private_metadata 3,000.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


class FakeSlack(LoopbackServer):
    def __init__(self, token: str = "xoxb-test-token", *, channels=("C0APPROVALS",),
                 members=("U0APPROVER", "U0SECOND", "U0REQUESTER", "U0STRANGER")) -> None:
        self.token = token
        self.channels = set(channels)
        self.members = set(members)
        self.messages: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message
        self.calls: list[dict] = []  # every call: method, fields, and the error if refused
        self.ephemeral: list[dict] = []
        self.views: list[dict] = []
        self._triggers: dict[str, float] = {}
        self._last_post: dict[str, float] = {}
        self._ts = int(time.time())
        self.dm_channels: dict[str, str] = {}  # user id -> D channel id
        app = web.Application()
        app.router.add_post("/api/{method}", self._call)
        self.serve(app)
        self.base_url = f"http://127.0.0.1:{self.port}/api/"

    # --- the Web API ------------------------------------------------------------------------------

    @staticmethod
    def _answer(body: dict, status: int = 200, headers: dict | None = None) -> web.Response:
        return web.Response(status=status, body=json.dumps(body).encode(), headers={
            "Content-Type": "application/json", **(headers or {})})

    async def _call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        kind = request.headers.get("Content-Type", "").split(";")[0].strip()
        if kind == "application/json":
            try:
                fields = json.loads(raw or b"{}")
            except ValueError:
                return self._answer({"ok": False, "error": "invalid_json"})
        elif kind in ("application/x-www-form-urlencoded", ""):
            fields = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            for key in ("blocks", "view"):
                if isinstance(fields.get(key), str):
                    try:
                        fields[key] = json.loads(fields[key])
                    except ValueError:
                        return self._answer({"ok": False, "error": f"invalid_{key}"})
        else:
            return self._answer({"ok": False, "error": "invalid_form_data"})
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else fields.get("token")
        record = {"method": method, "fields": fields}
        self.calls.append(record)
        if not token:
            record["error"] = "not_authed"
        elif token != self.token:
            record["error"] = "invalid_auth"
        else:
            handler = {"chat.postMessage": self._post, "chat.update": self._update,
                       "chat.postEphemeral": self._ephemeral, "views.open": self._views_open,
                       "conversations.open": self._open_dm}.get(method)
            if handler is None:
                record["error"] = "unknown_method"
            else:
                result = handler(fields)
                if isinstance(result, web.Response):
                    record["error"] = "ratelimited"
                    return result
                if "error" in result:
                    record["error"] = result["error"]
                else:
                    return self._answer({"ok": True, **result})
        return self._answer({"ok": False, "error": record["error"]})

    def _open_dm(self, fields: dict):
        users = [u for u in str(fields.get("users") or "").split(",") if u]
        if not users:
            return {"error": "users_list_not_supplied"}
        if len(users) > 1:
            return {"error": "not_implemented"}
        if users[0] not in self.members:
            return {"error": "user_not_found"}
        channel = self.dm_channels.setdefault(users[0], "D" + secrets.token_hex(5).upper())
        self.channels.add(channel)
        return {"channel": {"id": channel}}

    def direct_messages(self, user: str) -> list[str]:
        channel = self.dm_channels.get(user)
        return [m["text"] for (ch, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1]) if ch == channel]

    def _channel(self, fields: dict) -> str | None:
        channel = fields.get("channel")
        return channel if channel in self.channels else None

    def _post(self, fields: dict):
        channel = self._channel(fields)
        if channel is None:
            return {"error": "channel_not_found"}
        if not fields.get("text") and not fields.get("blocks"):
            return {"error": "no_text"}
        if len(fields.get("text") or "") > 40000:
            return {"error": "msg_too_long"}
        problem = _blocks_problem(fields.get("blocks") or [], limit=50)
        if problem:
            return {"error": "invalid_blocks", "detail": problem}
        thread = fields.get("thread_ts")
        if thread and (channel, thread) not in self.messages:
            return {"error": "thread_not_found"}
        now = time.monotonic()
        if now - self._last_post.get(channel, -10.0) < 1.0:
            return self._answer({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        self._last_post[channel] = now
        self._ts += 1
        ts = f"{self._ts}.000100"
        message = {"ts": ts, "text": fields.get("text"), "blocks": fields.get("blocks") or [], "thread_ts": thread,
                   "edits": []}
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": message}

    def _update(self, fields: dict):
        channel = self._channel(fields)
        if channel is None:
            return {"error": "channel_not_found"}
        message = self.messages.get((channel, fields.get("ts")))
        if message is None:
            return {"error": "message_not_found"}
        problem = _blocks_problem(fields.get("blocks") or [], limit=50)
        if problem:
            return {"error": "invalid_blocks", "detail": problem}
        message["edits"].append({"text": message["text"], "blocks": message["blocks"]})
        message.update(text=fields.get("text", message["text"]), blocks=fields.get("blocks", message["blocks"]))
        return {"channel": channel, "ts": message["ts"], "text": message["text"]}

    def _ephemeral(self, fields: dict):
        if self._channel(fields) is None:
            return {"error": "channel_not_found"}
        if fields.get("user") not in self.members:
            return {"error": "user_not_in_channel"}
        if not fields.get("text") and not fields.get("blocks"):
            return {"error": "no_text"}
        self.ephemeral.append(fields)
        return {"message_ts": f"{self._ts}.000200"}

    def _views_open(self, fields: dict):
        trigger = fields.get("trigger_id")
        issued = self._triggers.pop(trigger, None)
        if issued is None:
            return {"error": "invalid_trigger_id"}
        if time.monotonic() - issued > 3.0:
            return {"error": "expired_trigger_id"}
        view = fields.get("view") or {}
        problem = _view_problem(view)
        if problem:
            return {"error": "invalid_arguments", "detail": problem}
        self.views.append(view)
        return {"view": {"id": f"V{len(self.views):08d}", **view}}

    # --- the other direction: Slack posting to the app ----------------------------------------------

    def trigger(self) -> str:
        """A trigger id, as Slack puts in an interaction (valid once, for 3 seconds)."""
        trigger = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = time.monotonic()
        return trigger

    def button_press(self, user: str, action_id: str, value: str, *, channel: str = "C0APPROVALS",
                     message_ts: str | None = None) -> dict:
        return {"type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0ARRAKIS"},
                "api_app_id": "A0ARRAKIS", "team": {"id": "T0ARRAKIS"}, "trigger_id": self.trigger(),
                "channel": {"id": channel}, "container": {"type": "message", "channel_id": channel,
                                                          "message_ts": message_ts},
                "actions": [{"type": "button", "block_id": "approval", "action_id": action_id, "value": value,
                             "action_ts": f"{time.time():.6f}"}]}

    def code_submission(self, user: str, view: dict, code: str, reason: str | None = None) -> dict:
        return {"type": "view_submission", "user": {"id": user}, "team": {"id": "T0ARRAKIS"},
                "view": {**view, "state": {"values": {"code": {"value": {"type": "plain_text_input", "value": code}},
                                                      "reason": {"value": {"type": "plain_text_input",
                                                                           "value": reason}}}}}}


def signed(payload: dict, secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict]:
    """The body and headers Slack sends for an interaction: form-encoded ``payload`` and the v0
    signature over ``v0:{timestamp}:{body}``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    body = urlencode({"payload": json.dumps(payload)}).encode()
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": f"v0={digest}"}


def _text_len(obj) -> int:
    return len((obj or {}).get("text") or "")


def _blocks_problem(blocks, *, limit: int) -> str | None:
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > limit:
        return f"more than {limit} blocks"
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header" and (block["text"].get("type") != "plain_text" or _text_len(block["text"]) > 150):
            return f"blocks[{i}]: header text must be plain_text of at most 150 characters"
        if kind == "section" and _text_len(block.get("text")) > 3000:
            return f"blocks[{i}]: section text over 3000 characters"
        if kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25:
                return f"blocks[{i}]: an actions block holds 1 to 25 elements"
            ids = [e.get("action_id") for e in elements]
            if len(set(ids)) != len(ids):
                return f"blocks[{i}]: action_id used twice"
            for e in elements:
                if e.get("type") == "button" and (_text_len(e.get("text")) > 75 or len(e.get("value") or "") > 2000
                                                  or len(e.get("action_id") or "") > 255):
                    return f"blocks[{i}]: a button over its limits"
        if kind == "input" and (not block.get("label") or not block.get("element")):
            return f"blocks[{i}]: an input block needs a label and an element"
        if kind not in ("header", "section", "actions", "context", "divider", "input"):
            return f"blocks[{i}]: unknown block type {kind!r}"
    return None


def _view_problem(view: dict) -> str | None:
    if view.get("type") != "modal":
        return "view type must be modal"
    for key in ("title", "submit", "close"):
        if key in view and _text_len(view[key]) > 24:
            return f"{key} over 24 characters"
    if not view.get("title"):
        return "a modal needs a title"
    if len(view.get("private_metadata") or "") > 3000:
        return "private_metadata over 3000 characters"
    if any(b.get("type") == "input" for b in view.get("blocks") or []) and not view.get("submit"):
        return "a modal with inputs needs a submit button"
    return _blocks_problem(view.get("blocks") or [], limit=100)
