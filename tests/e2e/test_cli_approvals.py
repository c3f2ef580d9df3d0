"""Approvals through the real CLI: plan submit, plan status (exit 0 only once approved), approvals
list, show, approve (with a code for high risk), reject, cancel."""

from __future__ import annotations

import json
import uuid

import pyotp
import pytest

from tests.fixtures.operators import Codes


@pytest.fixture
def member_route_limit():
    # the mass-strip test gives ten members their roles and strips them: its subject is who may
    # approve, not the member route's pace (10 per 10 s, held to by the queue and live-sync tests)
    return (20, 1.0)


@pytest.fixture
def people(make_operator):
    return {who: make_operator("approver", prefix=who) for who in ("req", "alice")}


@pytest.fixture
def code(people):
    return Codes(dict(people.values()))


def plan_file(tmp_path, type_: str, actions: list[str], before=None) -> str:
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        {"address": f"{type_}.x", "mode": "managed", "type": type_,
         "change": {"actions": actions, "before": before or {}, "after": {}}}]}))
    return str(path)


def test_submit_wait_and_approve(run, people, code, tmp_path):
    req, (alice, secret) = people["req"][0], people["alice"]
    high = plan_file(tmp_path, "kubernetes_namespace", ["delete"], {"metadata": [{"name": "staging"}]})
    unproved = run("plan", "submit", high, "--as", req, "--title", "Drop staging")
    assert unproved.exit_code == 1 and "a code is needed" in unproved.stderr  # --as alone proves nothing
    out = run("plan", "submit", high, "--as", req, "--code", code(req), "--title", "Drop staging", "--json")
    assert out.exit_code == 0, out.output
    rid = json.loads(out.stdout)["id"]
    text = run("plan", "status", rid)
    assert text.exit_code == 10 and "PENDING" in text.stdout and "needs the approver's code" in text.stdout
    waited = run("plan", "status", rid, "--wait", "--timeout", "0")
    assert waited.exit_code == 10
    assert rid in run("approvals", "list", "--status", "pending").stdout
    shown = run("approvals", "show", rid)
    assert "Drop staging" in shown.stdout and "risk" in shown.stdout
    selfish = run("approvals", "approve", rid, "--as", req, "--code", code(req))
    assert selfish.exit_code == 1 and "may not approve" in selfish.stderr
    no_code = run("approvals", "approve", rid, "--as", alice)
    assert no_code.exit_code == 1 and "a code is needed" in no_code.stderr
    done = run("approvals", "approve", rid, "--as", alice, "--code", code(alice), "--reason", "ok")
    assert done.exit_code == 0 and "APPROVED" in done.stdout and f"approved by {alice}" in done.stdout
    assert run("plan", "status", rid, "--wait").exit_code == 0
    again = run("approvals", "reject", rid, "--as", alice, "--code", code(alice))
    assert again.exit_code == 1 and "already approved" in again.stderr


def test_reject_cancel_and_a_plan_the_gate_rejects(run, people, code, tmp_path, discord):
    req, alice = people["req"][0], people["alice"][0]
    medium = plan_file(tmp_path, "aws_security_group_rule", ["create"])
    rid = json.loads(run("plan", "submit", medium, "--as", req, "--code", code(req), "--json").stdout)["id"]
    # Low risk too: a name alone rejects nothing.
    nameonly = run("approvals", "reject", rid, "--as", alice, "--reason", "not now")
    assert nameonly.exit_code == 1 and "a code is needed" in nameonly.stderr
    assert run("approvals", "reject", rid, "--as", alice, "--code", code(alice), "--reason", "not now").exit_code == 0
    assert run("plan", "status", rid).exit_code == 20
    rid2 = json.loads(run("plan", "submit", medium, "--as", req, "--code", code(req), "--json").stdout)["id"]
    assert run("approvals", "cancel", rid2, "--as", alice, "--code", code(alice)).exit_code == 1
    nameonly = run("approvals", "cancel", rid2, "--as", req)
    assert nameonly.exit_code == 1 and "a code is needed" in nameonly.stderr
    assert run("approvals", "cancel", rid2, "--as", req, "--code", code(req)).exit_code == 0
    assert run("plan", "status", rid2).exit_code == 20
    blocked = run("plan", "submit", plan_file(tmp_path, "vault_policy", ["delete"]), "--as", req, "--code", "000000")
    assert blocked.exit_code == 20 and "HARD_BLOCK_DELETE_VAULT_POLICY" in blocked.stderr
    missing = run("approvals", "show", str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no approval request" in missing.stderr
    bad = run("approvals", "show", "nope")
    assert bad.exit_code == 1 and "not an approval request id" in bad.stderr
    # The round reconciles every synthesized community of the session's database too: against
    # the test's own fake Discord, which knows none of their guilds (an empty local sandbox would
    # build each of them again, at Discord's pace for role creation).
    rounds = run("scheduler", "--once", extra_env={"DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token})
    assert "approvals: 0 expired" in rounds.stdout and "reconcile round: " in rounds.stdout


@pytest.mark.slow
def test_a_mass_strip_run_from_the_cli_cannot_be_approved_by_whoever_ran_it(run, e, discord, make_community,
                                                                             make_operator):
    """Issue 24, point 1, through the CLI: `members sync C --as bob --now` pauses on a mass strip;
    the request names `bob` (not `operator:bob`), and `approvals approve` or `members sync
    --approve` by bob with his right code is refused; another approver's works."""
    from tests.integration.test_synthesis import community_with_members

    bob, bob_secret = make_operator("approver", prefix="bob")
    alice, alice_secret = make_operator("approver", prefix="alice")
    codes = Codes({bob: bob_secret, alice: alice_secret})
    c, g, ids = community_with_members(e, discord, make_community, ranks=tuple(range(1, 11)))
    e.synthesis.synthesize(c.id, queued=False)
    e.synthesis.sync_members(c.id, queued=False)
    with e.db.tenant(c.id):  # a bad read: everyone "lost" their tier
        for p in e.repos.profiles.all():
            e.repos.profiles.update_standing(p.id, tier=None, rank=None)
    e.synthesis.synthesize(c.id, queued=False)
    env = {"DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token}
    dry = run("members", "sync", str(c.id), "--dry-run", extra_env=env)
    assert dry.exit_code == 0 and "would update 10 member(s), 10 of 10 losing their tier role" in dry.output
    tier_names = {r["name"] for r in g.roles.values()}
    # each member's line names the roles as Discord shows them: "-Naib", not "-1234567890"
    assert all(line.split(" -", 1)[1].split(", ")[0] in tier_names
               for line in dry.output.splitlines()[1:]), dry.output
    # Without --as nobody could tell the approver from whoever ran it (bob could run it unnamed,
    # then approve "system:cli"'s request as himself): no request is opened, nothing changes.
    unnamed = run("members", "sync", str(c.id), "--now", extra_env=env)
    assert unnamed.exit_code == 1 and "run it as yourself (--as NAME" in unnamed.stderr, unnamed.output
    assert e.approvals.pending_for(str(c.id)) == []
    assert all(g.members[d] for d in ids)
    # Nor with a name alone: bob could name alice, then approve "her" request himself.
    named = run("members", "sync", str(c.id), "--as", alice, "--now", extra_env=env)
    assert named.exit_code == 1 and "run it as yourself (--as NAME" in named.stderr, named.output
    assert e.approvals.pending_for(str(c.id)) == []
    paused = run("members", "sync", str(c.id), "--as", bob, "--code", codes(bob), "--now", "--json",
                 extra_env=env)
    assert paused.exit_code == 10, paused.output  # nothing synced: it waits for an approver
    assert json.loads(paused.stdout)["status"] == "paused", paused.stdout
    rid = json.loads(paused.stdout)["approval"]
    shown = json.loads(run("approvals", "show", rid, "--json").stdout)
    assert shown["requested_by"] == bob
    own = run("approvals", "approve", rid, "--as", bob, "--code", codes(bob), extra_env=env)
    assert own.exit_code == 1 and "asked for this change and may not approve it" in own.stderr
    own = run("members", "sync", str(c.id), "--approve", "--as", bob, "--code", codes(bob), "--now", extra_env=env)
    assert own.exit_code == 1 and "asked for this change and may not approve it" in own.stderr
    assert e.approvals.get(rid).status == "pending" and all(g.members[d] for d in ids)  # nobody stripped
    ok = run("approvals", "approve", rid, "--as", alice, "--code", codes(alice), extra_env=env)
    assert ok.exit_code == 0, ok.output
    assert e.approvals.get(rid).decided_by == alice
