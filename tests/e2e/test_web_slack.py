"""The real `arrakis web` process receiving Slack's interactive payloads: signed button presses
approve and reject; forged, stale and replayed requests are refused; a high-risk approval asks for
the code in a modal; people who are not operators, or may not approve, are told why."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import httpx
import pyotp
import pytest

from arrakis_engine.adapters.notify.approvals import APPROVE_ACTION, REJECT_ACTION
from tests.fakes.slack_api import signed
from tests.fixtures.operators import Codes
from tests.fixtures.ports import ServerProcess, free_port
from tests.fixtures.workers import wait_for

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture(scope="module")
def web(database_url, redis_url, fake_slack, tmp_path_factory, engine):
    slack = fake_slack
    port = free_port()
    folder = tmp_path_factory.mktemp("web")
    # The web process is one more process of the deployment: it shares the signing key file that
    # operators' TOTP secrets are sealed with.
    keys = engine.settings.data_dir / "signing"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "signing").symlink_to(keys, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(folder),
                "SLACK_BOT_TOKEN": slack.token, "SLACK_API_BASE": slack.base_url,
                "SLACK_APPROVAL_CHANNEL": "C0APPROVALS", "SLACK_SIGNING_SECRET": SECRET})
    server = ServerProcess("arrakis web", [sys.executable, "-m", "arrakis_engine.cli", "web", "--port", str(port)],
                           folder / "web.log", env=env)
    server.start(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200, timeout=60)
    yield f"http://127.0.0.1:{port}/slack/interactions", env
    server.stop()


@pytest.fixture
def people(make_operator):
    return {who: make_operator(role, slack_id=slack_id, prefix=who) for who, role, slack_id in
            (("req", "approver", "U0REQUESTER"), ("alice", "approver", "U0APPROVER"), ("carol", "auditor", "U0SECOND"))}


@pytest.fixture
def slack(fake_slack):
    return fake_slack


@pytest.fixture
def code(people):
    return Codes(dict(people.values()))


def submit(web, tmp_path, requester: str, change: dict, code: str) -> str:
    """Submit through the CLI's engine, configured like the web process (so it posts to Slack)."""
    from arrakis_engine.bootstrap import build_engine
    from arrakis_engine.settings import Settings

    plan = tmp_path / f"{uuid.uuid4().hex[:6]}.json"
    plan.write_text(json.dumps({"format_version": "1.2", "resource_changes": [change]}))
    engine = build_engine(Settings.from_env(web[1], env_file=None))
    try:
        return engine.approvals.submit(plan, None, requested_by=requester, code=code).id
    finally:
        engine.close()


def medium_change() -> dict:
    return {"address": "aws_security_group_rule.https", "mode": "managed", "type": "aws_security_group_rule",
            "change": {"actions": ["create"], "before": None, "after": {}}}


def high_change() -> dict:  # not blocked, but high risk (61 on the upstream tables)
    return {"address": "aws_iam_role.ci", "mode": "managed", "type": "aws_iam_role",
            "change": {"actions": ["delete"], "before": {}, "after": None}}


def post(url: str, payload: dict, *, secret: str = SECRET, timestamp: int | None = None):
    body, headers = signed(payload, secret, timestamp=timestamp)
    return httpx.post(url, content=body, headers=headers, timeout=10), body, headers


def status_of(engine, request_id: str) -> str:
    return engine.approvals.get(request_id).status


def press_and_answer(url, slack, user: str, action: str, rid: str, code: str, reason: str | None = None):
    """Press a button, then answer the code dialog it opens (every answer asks for a code)."""
    views = len(slack.views)
    pressed = post(url, slack.button_press(user, action, rid))
    assert pressed[0].status_code == 200
    wait_for(lambda: len(slack.views) > views, timeout=10)
    view = slack.views[-1]
    answered = post(url, slack.code_submission(user, view, code, reason=reason))[0]
    return pressed, view, answered


def test_a_signed_button_press_approves_and_the_message_changes(web, slack, engine, people, code, tmp_path):
    url = web[0]
    rid = submit(web, tmp_path, people["req"][0], medium_change(), code(people["req"][0]))
    (resp, body, headers), view, answered = press_and_answer(url, slack, "U0APPROVER", APPROVE_ACTION, rid,
                                                              code(people["alice"][0]))
    assert resp.status_code == 200 and answered.status_code == 200 and not answered.content
    assert view["private_metadata"] == rid
    assert status_of(engine, rid) == "approved"
    assert engine.approvals.get(rid).decided_by == people["alice"][0]
    updated = [c for c in slack.calls if c["method"] == "chat.update" and rid in json.dumps(c["fields"])]
    assert updated and "error" not in updated[-1]
    replay = httpx.post(url, content=body, headers=headers, timeout=10)  # the same request again
    assert replay.status_code == 401 and replay.json()["error"] == "replayed"


def test_forged_and_stale_requests_are_refused(web, slack, engine, people, code, tmp_path):
    url = web[0]
    rid = submit(web, tmp_path, people["req"][0], medium_change(), code(people["req"][0]))
    forged, _, _ = post(url, slack.button_press("U0APPROVER", APPROVE_ACTION, rid), secret="not-the-secret")
    stale, _, _ = post(url, slack.button_press("U0APPROVER", APPROVE_ACTION, rid),
                       timestamp=int(time.time()) - 6 * 60)
    unsigned = httpx.post(url, content=b"payload=%7B%7D", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert [r.status_code for r in (forged, stale, unsigned)] == [401, 401, 401]
    assert [r.json()["error"] for r in (forged, stale, unsigned)] == ["bad signature", "stale timestamp", "not signed"]
    assert status_of(engine, rid) == "pending"
    body, headers = signed(slack.button_press("U0APPROVER", APPROVE_ACTION, rid), SECRET)
    tampered = httpx.post(url, content=body.replace(b"U0APPROVER", b"U0SECOND"), headers=headers, timeout=10)
    assert tampered.status_code == 401 and status_of(engine, rid) == "pending"


def test_who_may_press_and_what_they_are_told(web, slack, engine, people, code, tmp_path):
    url = web[0]
    rid = submit(web, tmp_path, people["req"][0], medium_change(), code(people["req"][0]))
    told = len(slack.ephemeral)
    for user in ("U0STRANGER", "U0REQUESTER", "U0SECOND"):  # not an operator; the requester; an auditor
        assert post(url, slack.button_press(user, APPROVE_ACTION, rid))[0].status_code == 200
    messages = [e["text"] for e in slack.ephemeral[told:]]
    assert len(messages) == 3
    assert "not an Arrakis operator" in messages[0]
    assert "asked for this change" in messages[1] and "approver role" in messages[2]
    assert status_of(engine, rid) == "pending"
    # Rejecting asks for the code too (a name proves nothing), in a dialog that says "Reject".
    _, view, answered = press_and_answer(url, slack, "U0APPROVER", REJECT_ACTION, rid, code(people["alice"][0]),
                                         reason="not now")
    assert view["private_metadata"] == f"reject:{rid}" and answered.status_code == 200
    done = engine.approvals.get(rid)
    assert (done.status, done.mfa, done.reason) == ("rejected", "totp", "not now")


def test_a_high_risk_approval_asks_for_the_code_in_a_modal(web, slack, engine, people, code, tmp_path):
    url = web[0]
    rid = submit(web, tmp_path, people["req"][0], high_change(), code(people["req"][0]))
    views = len(slack.views)
    assert post(url, slack.button_press("U0APPROVER", APPROVE_ACTION, rid))[0].status_code == 200
    wait_for(lambda: len(slack.views) > views, timeout=10)
    view = slack.views[-1]
    assert view["callback_id"] == "approval.code" and view["private_metadata"] == rid
    assert status_of(engine, rid) == "pending"  # nothing happens without the code
    wrong = post(url, slack.code_submission("U0APPROVER", view, "12345x"))[0]
    assert wrong.status_code == 200 and wrong.json()["response_action"] == "errors"
    assert status_of(engine, rid) == "pending"
    alices = code(people["alice"][0])
    right = post(url, slack.code_submission("U0APPROVER", view, alices, reason="staging is gone anyway"))[0]
    assert right.status_code == 200 and not right.content
    done = engine.approvals.get(rid)
    assert (done.status, done.mfa, done.reason) == ("approved", "totp", "staging is gone anyway")
    rid2 = submit(web, tmp_path, people["req"][0], high_change(), code(people["req"][0]))
    post(url, slack.button_press("U0APPROVER", APPROVE_ACTION, rid2))
    replayed = post(url, slack.code_submission("U0APPROVER", {**view, "private_metadata": rid2}, alices))[0]
    assert replayed.json()["response_action"] == "errors" and status_of(engine, rid2) == "pending"


def test_a_mass_strip_requester_cannot_approve_it_from_slack(web, slack, engine, people, make_community):
    """Issue 24, point 1, through Slack: a strip asked for by `operator:req` (the CLI's spelling)
    or by req's linked Discord id is req's own; req's Slack button is refused before any code is
    asked, and even a code typed into a dialog opened for it does not approve it."""
    req, _ = people["req"]
    op = engine.operators.get(req)
    c = make_community()
    for spelled in (f"operator:{req}", f"discord:{op.discord_user_id}"):
        request = engine.approvals.request_strip(str(c.id), strips=5, tier_holders=5, members=[],
                                                 requested_by=spelled)
        told, views = len(slack.ephemeral), len(slack.views)
        assert post(web[0], slack.button_press("U0REQUESTER", APPROVE_ACTION, request.id))[0].status_code == 200
        wait_for(lambda: len(slack.ephemeral) > told, timeout=10)
        assert "asked for this change" in slack.ephemeral[-1]["text"] and len(slack.views) == views
        forged_view = {"type": "modal", "callback_id": "approval.code", "private_metadata": request.id}
        answer = post(web[0], slack.code_submission("U0REQUESTER", forged_view,
                                                    pyotp.TOTP(people["req"][1]).now()))[0]
        assert answer.json()["response_action"] == "errors" and "asked for this change" in json.dumps(answer.json())
        assert status_of(engine, request.id) == "pending"
        with engine.db.platform() as tx:
            tx.execute("UPDATE approval_requests SET status = 'expired', decided_at = now() WHERE id = %s",
                       (request.id,))


# --- malformed bodies and payloads: 400 or 401 in one line, never a 500 (issue 24.12) ----------

def _sign_raw(body: bytes, secret: str = SECRET) -> dict:
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest}"}


def test_a_body_that_is_not_utf8_is_refused_not_a_crash(web):
    url = web[0]
    body = b"payload=%7B%22type%22%3A\xff\xfe\xfd"
    unsigned = httpx.post(url, content=body, headers={**_sign_raw(b"other"), "Content-Type":
                                                       "application/x-www-form-urlencoded"}, timeout=10)
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "bad signature"  # checked first
    signed_raw = httpx.post(url, content=body, headers=_sign_raw(body), timeout=10)
    assert signed_raw.status_code == 400 and signed_raw.json() == {"ok": False, "error": "no payload"}
    percent = b"payload=%FF%FE"  # percent-encoded bytes that are not UTF-8 either
    assert httpx.post(url, content=percent, headers=_sign_raw(percent), timeout=10).status_code == 400
    stamp = httpx.post(url, content=b"x", headers={**_sign_raw(b"x"), "X-Slack-Request-Timestamp": "١٢٣".encode()},
                       timeout=10)
    assert stamp.status_code == 401 and stamp.json()["error"] == "bad timestamp"


@pytest.mark.parametrize("payload", [
    [1, 2], "block_actions", 7, None,
    {"type": "block_actions", "user": "U0APPROVER", "actions": []},
    {"type": "block_actions", "user": {"id": "U0APPROVER"}, "actions": "approve"},
    {"type": "block_actions", "user": {"id": "U0APPROVER"}, "actions": ["approve"]},
    {"type": "block_actions", "user": {"id": "U0APPROVER"}, "actions": [{"action_id": APPROVE_ACTION, "value": 5}]},
    {"type": "block_actions", "user": {"id": ["U0APPROVER"]}, "actions": []},
    {"type": "block_actions", "user": {"id": "U0APPROVER"}, "channel": "C0APPROVALS", "actions": []},
    {"type": "view_submission", "user": {"id": "U0APPROVER"}, "view": "approval.code"},
    {"type": "view_submission", "user": {"id": "U0APPROVER"},
     "view": {"callback_id": "approval.code", "state": {"values": {"code": {"value": "123456"}}}}},
    {"type": "view_submission", "user": {"id": "U0APPROVER"},
     "view": {"callback_id": "approval.code", "state": {"values": []}, "private_metadata": "x"}},
    {"type": ["block_actions"]},
])
def test_a_signed_payload_of_an_unexpected_shape_is_a_400(web, payload):
    resp, _, _ = post(web[0], payload)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert "\n" not in error and "Traceback" not in resp.text and len(error) < 120
