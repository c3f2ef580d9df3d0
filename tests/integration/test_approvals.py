"""Human approval of infrastructure changes, on the real database and Redis, announced to a fake
Slack (the real slack-sdk client) and a fake Discord webhook: the rules (approver role, never the
requester, a code for high risk, answered once, 24 h), reminders, and the audit trail."""

from __future__ import annotations

import json
import time
import uuid

import pyotp
import pytest

from arrakis_engine.errors import Conflict, MfaRefused, PermissionDenied, ValidationError
from arrakis_engine.policy.approvals import ApprovalService, PlanRejected, clean_reason
from arrakis_engine.adapters.notify.approvals import DiscordWebhookApprovals, SlackApprovals
from tests.conftest import FakeClock
from tests.fakes.discord_webhook import FakeDiscordWebhook
from tests.fixtures.operators import Codes


def rc(address, type_, actions, before=None):
    return {"address": address, "mode": "managed", "type": type_, "name": address.rsplit(".", 1)[-1],
            "change": {"actions": actions, "before": before if before is not None else {}, "after": {}}}


def write_plan(tmp_path, *changes) -> str:
    path = tmp_path / f"plan-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"format_version": "1.2", "terraform_version": "1.9.5",
                                "resource_changes": list(changes)}))
    return str(path)


def medium_plan(tmp_path):  # a security group change: a warning, risk under 60
    return write_plan(tmp_path, rc("aws_security_group_rule.https", "aws_security_group_rule", ["create"]))


def high_plan(tmp_path):  # deleting an IAM role: not blocked, but high risk (61 on the upstream tables)
    return write_plan(tmp_path, rc("aws_iam_role.ci", "aws_iam_role", ["delete"], before={}))


@pytest.fixture(scope="module")
def webhook():
    fake = FakeDiscordWebhook()
    yield fake
    fake.close()


@pytest.fixture
def people(make_operator):
    """A requester, two approvers and an auditor, each enrolled."""
    return {who: make_operator(role, prefix=who) for who, role in
            (("req", "approver"), ("alice", "approver"), ("bob", "approver"), ("carol", "auditor"))}


@pytest.fixture
def code(people):
    return Codes(dict(people.values()))


@pytest.fixture
def service(engine, fake_slack, webhook):
    clock = FakeClock(time.time())
    notifiers = [SlackApprovals(fake_slack.token, "C0APPROVALS", base_url=fake_slack.base_url),
                 DiscordWebhookApprovals(webhook.url)]
    svc = ApprovalService(engine.db, engine.repos, engine.policy_gate, engine.operators, engine.mfa,
                          notifiers=notifiers, clock=clock)
    svc.test_clock = clock
    return svc


def audit_actions(engine, request_id: str) -> list[str]:
    with engine.db.platform():
        entries = engine.repos.audit.entries(None, limit=2000)
    return [e.action for e in entries if e.payload.get("request") == request_id]


def test_a_request_is_announced_and_approved_by_someone_else(engine, service, people, code, fake_slack, webhook,
                                                             tmp_path):
    slack = fake_slack
    req, alice = people["req"][0], people["alice"][0]
    r = service.submit(medium_plan(tmp_path), None, requested_by=req, code=code(req),
                       title="Open HTTPS <!channel>\nnow")
    assert r.status == "pending" and r.risk_level in ("low", "medium") and r.decision == "review"
    assert r.title == "Open HTTPS ‹!channel› now"  # one line; no mention reaches the channel
    posted = slack.messages[(r.notified["slack"]["channel"], r.notified["slack"]["ts"])]
    buttons = [e for b in posted["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("approval.approve", r.id), ("approval.reject", r.id)]
    embed = webhook.messages[r.notified["discord"]["message_id"]]["embeds"][0]
    assert embed["title"].startswith("Approval needed") and r.id in json.dumps(embed)
    with pytest.raises(PermissionDenied, match="asked for this change"):
        service.approve(r.id, by=req)
    with pytest.raises(PermissionDenied, match="does not hold the approver role"):
        service.approve(r.id, by=people["carol"][0])
    with pytest.raises(ValidationError, match="a code is needed"):  # low risk too: a name proves nothing
        service.approve(r.id, by=alice, reason="checked\tthe rule")
    done = service.approve(r.id, by=alice, code=code(alice), reason="checked\tthe rule")
    assert (done.status, done.decided_by, done.reason, done.mfa) == ("approved", alice, "checked the rule", "totp")
    assert posted["edits"] and not any(b["type"] == "actions" for b in posted["blocks"])  # buttons gone
    assert f"Approved by {alice}" in json.dumps(posted["blocks"])
    assert webhook.edits and webhook.messages[r.notified["discord"]["message_id"]]["embeds"][0]["title"].startswith(
        "Approved")
    with pytest.raises(Conflict, match="already approved"):
        service.approve(r.id, by=people["bob"][0])
    with pytest.raises(Conflict):
        service.reject(r.id, by=people["bob"][0])
    assert audit_actions(engine, r.id) == ["approval.requested", "approval.refused", "approval.refused",
                                           "approval.approved", "approval.refused", "approval.refused"]


def test_a_rejected_plan_cannot_be_submitted(engine, service, people, code, tmp_path):
    before = len(service.list())
    with pytest.raises(PlanRejected, match="HARD_BLOCK_DELETE_DATABASE") as caught:
        service.submit(write_plan(tmp_path, rc("aws_db_instance.main", "aws_db_instance", ["delete"])), None,
                       requested_by=people["req"][0], code=code(people["req"][0]))
    assert caught.value.exit_code == 20 and len(service.list()) == before


def test_a_plan_over_the_limits_cannot_be_submitted(engine, service, people, tmp_path):
    from arrakis_engine.errors import InputTooLarge

    before = len(service.list())
    deep = tmp_path / "deep.json"
    deep.write_text('{"format_version": "1.2", "resource_changes": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(InputTooLarge, match="200,001 levels deep") as caught:
        service.submit(str(deep), None, requested_by=people["req"][0])
    assert caught.value.exit_code == 2 and len(service.list()) == before


def test_high_risk_needs_a_fresh_code(engine, service, people, code, tmp_path):
    req = people["req"][0]
    r = service.submit(high_plan(tmp_path), None, requested_by=req, code=code(req))
    assert r.needs_code and r.risk_level in ("high", "critical")
    bob, secret = people["bob"]
    with pytest.raises(ValidationError, match="a code is needed"):
        service.approve(r.id, by=bob)
    with pytest.raises(MfaRefused):
        service.approve(r.id, by=bob, code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    bobs = pyotp.TOTP(secret).now()
    done = service.approve(r.id, by=bob, code=bobs)
    assert done.status == "approved" and done.mfa == "totp"
    other = service.submit(high_plan(tmp_path), None, requested_by=req, code=code(req))
    with pytest.raises(MfaRefused):  # the same code a second time
        service.approve(other.id, by=bob, code=bobs)
    assert service.get(other.id).status == "pending"
    with pytest.raises(ValidationError, match="a code is needed"):  # rejecting needs a code too
        service.reject(other.id, by=people["alice"][0], reason="not this week")
    rejected = service.reject(other.id, by=people["alice"][0], code=code(people["alice"][0]), reason="not this week")
    assert rejected.status == "rejected" and rejected.mfa == "totp"


def test_requests_expire_after_24_hours_and_are_reminded_once(engine, service, people, code, fake_slack, tmp_path):
    slack = fake_slack
    r = service.submit(medium_plan(tmp_path), None, requested_by=people["req"][0], code=code(people["req"][0]))
    clock = service.test_clock
    clock.t += 11 * 3600
    assert r.id not in [x.id for x in service.remind_due()]  # (requests of other tests may be due)
    clock.t += 3600 + 1
    assert r.id in [x.id for x in service.remind_due()]
    assert r.id not in [x.id for x in service.remind_due()]  # once only
    thread = [m for (ch, ts), m in slack.messages.items() if m["thread_ts"] == r.notified["slack"]["ts"]]
    assert len(thread) == 1 and "Reminder" in thread[0]["text"]
    clock.t += 12 * 3600
    assert r.id in [x.id for x in service.expire_due()]
    assert service.get(r.id).status == "expired"
    with pytest.raises(Conflict, match="already expired"):
        service.approve(r.id, by=people["alice"][0])
    posted = slack.messages[(r.notified["slack"]["channel"], r.notified["slack"]["ts"])]
    assert "Expired" in json.dumps(posted["blocks"])


def test_only_the_requester_cancels_with_their_code(engine, service, people, code, tmp_path):
    req = people["req"][0]
    r = service.submit(medium_plan(tmp_path), None, requested_by=req, code=code(req))
    with pytest.raises(PermissionDenied, match="may cancel"):
        service.cancel(r.id, by=people["alice"][0], code=code(people["alice"][0]))
    with pytest.raises(ValidationError, match="a code is needed"):  # the requester's name alone proves nothing
        service.cancel(r.id, by=req)
    assert service.cancel(r.id, by=req, code=code(req)).status == "cancelled"


def test_submit_needs_the_requesters_code(engine, service, people, tmp_path):
    """`plan submit --as NAME` with no code opened a request in NAME's name."""
    before = len(service.list())
    with pytest.raises(ValidationError, match="a code is needed"):
        service.submit(medium_plan(tmp_path), None, requested_by=people["req"][0])
    with pytest.raises(MfaRefused):
        service.submit(medium_plan(tmp_path), None, requested_by=people["req"][0], code="000000"
                       if pyotp.TOTP(people["req"][1]).now() != "000000" else "111111")
    assert len(service.list()) == before


def test_the_audit_trail_shows_an_edited_or_deleted_row(engine, service, people, code, owner_conn, tmp_path):
    r = service.submit(medium_plan(tmp_path), None, requested_by=people["req"][0], code=code(people["req"][0]))
    service.approve(r.id, by=people["alice"][0], code=code(people["alice"][0]))
    assert not engine.audit_check.verify(None).ok  # nothing outside the database vouches for it yet
    assert engine.audit_check.digest() is not None
    assert engine.audit_check.verify(None).ok
    with owner_conn.cursor() as cur:
        cur.execute("SELECT * FROM audit_log WHERE community_id IS NULL AND action = 'approval.approved' "
                    "AND payload->>'request' = %s", (r.id,))
        row, cols = cur.fetchone(), [d.name for d in cur.description]
    original = dict(zip(cols, row))
    seq = original["seq"]

    def tamper(sql: str, args) -> None:
        with owner_conn.cursor() as cur:  # the triggers refuse even the owner unless switched off
            cur.execute("SET session_replication_role = replica")
            cur.execute(sql, args)
            cur.execute("SET session_replication_role = origin")

    def put_back() -> None:
        values = [json.dumps(v) if isinstance(v, dict) else v for v in original.values()]
        tamper("DELETE FROM audit_log WHERE community_id IS NULL AND seq = %s", (seq,))
        tamper(f"INSERT INTO audit_log ({', '.join(original)}) OVERRIDING SYSTEM VALUE "
               f"VALUES ({', '.join(['%s'] * len(values))})", values)

    try:
        tamper("UPDATE audit_log SET payload = %s WHERE community_id IS NULL AND seq = %s",
               (json.dumps({**original["payload"], "reason": "rubber stamp"}), seq))
        edited = engine.audit_check.verify(None)
        assert not edited.ok and any(f"row {seq} was edited" in p for p in edited.problems)
        tamper("DELETE FROM audit_log WHERE community_id IS NULL AND seq = %s", (seq,))
        assert not engine.audit_check.verify(None).ok
    finally:
        put_back()
    assert engine.audit_check.verify(None).ok


def test_reasons_are_cleaned():
    assert clean_reason("ok\n\n<@U123> see <https://evil|here>\x00") == "ok ‹@\u200bU123› see ‹https://evil|here›"
    assert clean_reason("x" * 900) == "x" * 500
    assert clean_reason(" \n\t ") is None


# --- one identity per actor (issue 24, point 1) ------------------------------------------------

def test_a_mass_strip_requester_is_stored_canonically_and_never_approves_it(engine, service, people, code,
                                                                           make_community):
    """bob asks for a mass strip however he is spelled (`operator:bob` from the CLI, his linked
    Discord id from the bot): it is stored as `bob`, and bob may not approve it."""
    bob, _ = people["bob"]
    c = make_community()
    op = engine.operators.get(bob)
    for spelled in (f"operator:{bob}", f"discord:{op.discord_user_id}"):
        r = service.request_strip(str(c.id), strips=9, tier_holders=10, members=[], requested_by=spelled)
        assert r.requested_by == bob
        with pytest.raises(PermissionDenied, match="asked for this change"):
            service.approve(r.id, by=bob, code=code(bob))
        with engine.db.platform() as tx:
            tx.execute("UPDATE approval_requests SET status = 'cancelled', decided_by = requested_by, "
                       "decided_at = now() WHERE id = %s", (r.id,))
    # A process is `system:<what>`, which no operator name can equal.
    r = service.request_strip(str(c.id), strips=9, tier_holders=10, members=[], requested_by="bob")
    assert r.requested_by == "system:bob"


def test_a_discord_user_who_asked_before_being_linked_still_cannot_approve(engine, service, people, code,
                                                                          make_community):
    """A server admin (no operator) runs /arrakis sync: the request is `discord:<id>`. Linked later
    to an operator, that same person is still the requester."""
    from tests.fixtures.operators import add_operator, new_discord_id, secret_of

    c = make_community()
    discord_id = new_discord_id()
    r = service.request_strip(str(c.id), strips=9, tier_holders=10, members=[], requested_by=f"discord:{discord_id}")
    assert r.requested_by == f"discord:{discord_id}"
    name = f"late-{uuid.uuid4().hex[:6]}"
    enrolment = add_operator(engine, name, ["approver"], discord_id=discord_id)
    with pytest.raises(PermissionDenied, match="asked for this change"):
        service.approve(r.id, by=name, code=pyotp.TOTP(secret_of(enrolment)).now())


def test_the_database_refuses_self_approval_however_it_is_spelled(engine, service, people, code, owner_conn,
                                                                  make_community):
    """The database owner writes the row directly: `operator:bob` is no canonical form, and a
    decision by the operator linked to the requesting Discord id is refused by the trigger."""
    import psycopg2

    bob, _ = people["bob"]
    op = engine.operators.get(bob)
    c = make_community()
    r = service.request_strip(str(c.id), strips=9, tier_holders=10, members=[], requested_by=f"operator:{bob}")
    attempts = [
        ("UPDATE approval_requests SET requested_by = %s WHERE id = %s", (f"operator:{bob}", r.id)),
        ("UPDATE approval_requests SET status = 'approved', decided_by = %s, decided_at = now() WHERE id = %s",
         (bob, r.id)),
        ("UPDATE approval_requests SET requested_by = %s, status = 'approved', decided_by = %s, decided_at = now() "
         "WHERE id = %s", (f"discord:{op.discord_user_id}", bob, r.id)),
        ("UPDATE approval_requests SET status = 'approved', decided_by = %s, decided_at = now() WHERE id = %s",
         ("bob-is-not-an-operator", r.id)),
    ]
    for sql, args in attempts:
        with owner_conn.cursor() as cur:  # autocommit: each attempt is its own transaction
            with pytest.raises((psycopg2.errors.CheckViolation, psycopg2.errors.ForeignKeyViolation)):
                cur.execute(sql, args)
    assert service.get(r.id).status == "pending"
