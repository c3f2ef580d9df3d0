"""Operators, MFA, signing and the kill switch through the real ``arrakis`` command, on a database
of the test's own (so "the first operator" really is the first)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import redis as redis_lib
from click.testing import CliRunner

from arrakis_engine.cli import cli
from tests.conftest import create_database, drop_database


BOB_DISCORD = "712345678901234567"


@pytest.fixture
def deployment(pg_server_url, redis_url, tmp_path):
    """A database of the test's own, and the command line on it (``run``); ``sandbox`` is the
    engine's local Discord (where the bot's direct messages land, as they would in the user's
    Discord app)."""
    from arrakis_engine.bootstrap import build_engine
    from arrakis_engine.settings import Settings

    url = create_database(pg_server_url, prefix="arrakis_cli_sec")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path), "ARRAKIS_OPERATOR": None}

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0

    class Sandbox:
        """The local Discord, reached by an engine of its own for each look (a command that ends
        stops the sandbox its process started; the next one starts it again, state kept)."""

        def _do(self, fn):
            engine = build_engine(Settings.from_env({k: v for k, v in env.items() if v is not None}, env_file=None))
            try:
                return fn(engine.discord)
            finally:
                engine.close()

        def add_guild(self, guild_id, *, members):
            return self._do(lambda d: d.add_guild(guild_id, members=members))

        def direct_messages(self, user_id):
            return self._do(lambda d: d.direct_messages(user_id))

    yield invoke, Sandbox(), url
    drop_database(pg_server_url, url)
    # Its Redis is the session's: what this deployment left there goes with its database. (A
    # global kill switch its locked-out admin cannot release leaves signing cut off in Redis,
    # which would refuse every later test's signatures.)
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


@pytest.fixture
def run(deployment):
    return deployment[0]


def redeem(run, name: str, token: str):
    out = run("mfa", "enroll", name, "--token", token, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    return pyotp.TOTP(parse_qs(urlparse(data["otpauth_uri"]).query)["secret"][0]), data["backup_codes"]


def dm_token(sandbox, discord_id: str) -> str:
    """The enrolment token the bot sent ``discord_id`` (read where they would read it)."""
    found = re.findall(r"--token (\S+)", "\n".join(m["content"] for m in sandbox.direct_messages(discord_id)))
    assert found, f"no token was sent to {discord_id}"
    return found[-1]


def first_admin(run):
    first = run("operators", "add", "ada", "--role", "platform_admin", "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["operator"]["created_by"] == "bootstrap" and data["token_sent_to"].startswith("this terminal")
    return redeem(run, "ada", data["enrolment_token"])


def test_operators_mfa_killswitch_and_signing_end_to_end(deployment):
    run, sandbox, _ = deployment
    totp, backups = first_admin(run)
    assert len(backups) == 10 and all(len(b.replace("-", "")) == 16 for b in backups)  # 64 bits each
    # From now on adding operators needs a platform admin and a code.
    refused = run("operators", "add", "bob", "--role", "approver", "--discord", BOB_DISCORD)
    assert refused.exit_code != 0 and "say who is acting" in refused.output
    wrong = run("operators", "add", "bob", "--role", "approver", "--discord", BOB_DISCORD, "--as", "ada",
                "--code", "12345x-000000")
    assert wrong.exit_code != 0 and "wrong code" in wrong.output
    sandbox.add_guild("1800000000000000001", members=[BOB_DISCORD])  # bob shares a server with the bot
    ok = run("operators", "add", "bob", "--role", "approver", "--discord", BOB_DISCORD, "--as", "ada",
             "--code", backups[0], "--json")
    assert ok.exit_code == 0, ok.output
    token = dm_token(sandbox, BOB_DISCORD)
    assert token not in ok.output and "otpauth" not in ok.output  # the admin never sees it
    assert json.loads(ok.output)["token_sent_to"] == f"a Discord direct message to {BOB_DISCORD}"
    bob_totp, bob_backups = redeem(run, "bob", token)
    # Re-enrolling is for another platform admin only.
    assert "another platform admin" in run("mfa", "enroll", "bob", "--as", "bob", "--code", bob_backups[0]).output
    listed = json.loads(run("operators", "list", "--json").output)
    assert {o["name"]: o["mfa_enrolled"] for o in listed} == {"ada": True, "bob": True}
    assert "otpauth" not in run("operators", "list").output

    # bob (approver) may not stop everything; ada may, with her code.
    denied = run("killswitch", "activate", "--scope", "global", "--reason", "test", "--as", "bob",
                 "--code", bob_backups[1])
    assert denied.exit_code != 0 and "only a platform admin may stop everything" in denied.output
    on = run("killswitch", "activate", "--scope", "global", "--reason", "drill", "--as", "ada",
             "--code", totp.now(), "--json")
    assert on.exit_code == 0, on.output
    report = json.loads(on.output)
    assert report["action"] == "activated" and all(p["ok"] for p in report["parts"])
    status = run("killswitch", "status")
    assert "global" in status.output and "drill" in status.output
    replay = run("killswitch", "release", "--scope", "global", "--as", "ada", "--code", totp.now())
    assert replay.exit_code != 0 and "already used" in replay.output
    off = run("killswitch", "release", "--scope", "global", "--as", "ada", "--code", backups[2])
    assert off.exit_code == 0 and "released" in off.output
    assert "nothing is frozen" in run("killswitch", "status").output

    # Signing: status, rotation with a code, public keys of both versions.
    assert run("signing", "status").exit_code == 0
    rotated = run("signing", "rotate", "--as", "ada", "--code", backups[3], "--json")
    assert rotated.exit_code == 0 and json.loads(rotated.output)["version"] == 2
    keys = json.loads(run("signing", "public-key", "--json").output)["public_keys"]
    assert set(keys) == {"1", "2"}
    # Destructive reconcile needs a person and a code before anything else happens.
    d = run("reconcile", "00000000-0000-4000-8000-000000000000", "--destructive")
    assert d.exit_code != 0 and "say who is acting" in d.output
    # The signed checkpoint then verifies with the chain.
    assert run("audit", "checkpoint").exit_code == 0
    verified = json.loads(run("audit", "verify", "--json").output)
    assert verified["ok"] and verified["checkpoints"] == 1 and verified["anchoring"]["latest_digest"] == 1


@pytest.fixture
def audit(deployment):
    """``audit(action)``: the platform audit rows of that action, read as the database owner."""
    import psycopg2

    def read(action: str) -> list[tuple]:
        with psycopg2.connect(deployment[2]) as conn, conn.cursor() as cur:
            cur.execute("SELECT actor, payload FROM audit_log WHERE community_id IS NULL AND action = %s ORDER BY seq",
                        (action,))
            return cur.fetchall()
    return read


def test_enrolment_tokens_go_only_to_the_operator(deployment, audit):
    """Issue 24, point 3: no secret ever reaches anyone but the operator, and refused attempts
    are audited (point 6)."""
    run, sandbox, _ = deployment
    totp, backups = first_admin(run)
    # Nobody gets a secret by naming an operator.
    bare = run("mfa", "enroll", "ada")
    assert bare.exit_code != 0 and "otpauth" not in bare.output and "--token" in bare.output
    # Without a channel of their own, the operator is not added, and the admin's code is not spent.
    nolink = run("operators", "add", "carol", "--role", "approver", "--as", "ada", "--code", backups[0])
    assert nolink.exit_code != 0 and "no channel of their own" in nolink.output
    assert "carol" not in run("operators", "list").output
    sandbox.add_guild("1800000000000000001", members=[BOB_DISCORD])
    added = run("operators", "add", "bob", "--role", "approver", "--discord", BOB_DISCORD, "--as", "ada",
                "--code", backups[0])
    assert added.exit_code == 0, added.output
    first_token = dm_token(sandbox, BOB_DISCORD)
    bob_totp, bob_backups = redeem(run, "bob", first_token)
    again = run("mfa", "enroll", "bob", "--token", first_token)
    assert again.exit_code != 0 and "not valid" in again.output  # once only
    # A re-enrolment by the admin shows the admin nothing; bob's old factor stops working at once.
    reset = run("mfa", "enroll", "bob", "--as", "ada", "--code", backups[1], "--json")
    assert reset.exit_code == 0, reset.output
    new_token = dm_token(sandbox, BOB_DISCORD)
    assert new_token != first_token and new_token not in reset.output
    assert "otpauth" not in reset.output and "secret" not in reset.output.lower() and "backup" not in reset.output
    old = run("members", "sync", "00000000-0000-4000-8000-000000000000", "--as", "bob", "--code", bob_backups[0])
    assert old.exit_code != 0 and "no second factor" in old.output
    # Guessing a token fails and is audited; bob's own token works.
    guessed = run("mfa", "enroll", "bob", "--token", "A" * 43)
    assert guessed.exit_code != 0 and "otpauth" not in guessed.output
    assert any("enrolment token for bob" in p["why"] for _, p in audit("security.refused"))
    redeem(run, "bob", new_token)
    # A non-admin adding operators is refused, and that is audited.
    sandbox.add_guild("1800000000000000001", members=["712345678901234568"])
    denied = run("operators", "add", "eve", "--role", "platform_admin", "--discord", "712345678901234568",
                 "--as", "bob", "--code", "000000")
    assert denied.exit_code != 0 and "only a platform admin" in denied.output
    assert ("operator:bob", {"what": "operators.add",
                             "why": "only a platform admin may add operators or change their roles"}) in \
        [(a, p) for a, p in audit("security.refused")]
    assert sandbox.direct_messages("712345678901234568") == []
    # A non-admin re-enrolling someone (to take over their factor) is refused and audited too.
    takeover = run("mfa", "enroll", "ada", "--as", "bob", "--code", "000000")
    assert takeover.exit_code != 0 and "only a platform admin" in takeover.output
    assert any(a == "operator:bob" and p["what"] == "mfa.reissue" for a, p in audit("security.refused"))
    # Who got which token, and when, is in the audit log (never the token itself).
    issued = audit("mfa.token_issued")
    assert [p["operator"] for _, p in issued] == ["ada", "bob", "bob"]
    assert all(first_token not in str(p) and new_token not in str(p) for _, p in issued)


def test_input_errors_cost_no_attempt_and_a_lockout_never_blocks_activation(deployment):
    """Issue 24, point 5."""
    run, _, _ = deployment
    totp, backups = first_admin(run)
    typo = run("operators", "add", "x1", "--role", "wizard", "--discord", BOB_DISCORD, "--as", "ada",
               "--code", backups[0])
    assert typo.exit_code != 0 and "unknown role 'wizard'" in typo.output and "code" not in typo.output
    nocommunity = run("killswitch", "activate", "--scope", "community", "--reason", "r", "--as", "ada",
                      "--code", backups[0])
    assert nocommunity.exit_code != 0 and "say which community" in nocommunity.output
    badgrant = run("operators", "grant", "ada", "wizard", "--as", "ada", "--code", backups[0])
    assert badgrant.exit_code != 0 and "unknown role 'wizard'" in badgrant.output
    # The backup code given with those typos was never spent.
    assert run("signing", "rotate", "--as", "ada", "--code", backups[0]).exit_code == 0
    # Five wrong codes lock ada out ...
    for _ in range(5):
        assert "wrong code" in run("signing", "rotate", "--as", "ada", "--code", "99999x-000000").output
    locked = run("signing", "rotate", "--as", "ada", "--code", backups[1])
    assert locked.exit_code != 0 and "locked out" in locked.output
    # ... but she can still pull the kill switch with a right code (a wrong one still fails) ...
    wrong = run("killswitch", "activate", "--scope", "global", "--reason", "lock", "--as", "ada",
                "--code", "99999x-000000")
    assert wrong.exit_code != 0 and "wrong code" in wrong.output
    on = run("killswitch", "activate", "--scope", "global", "--reason", "lock", "--as", "ada", "--code", backups[1])
    assert on.exit_code == 0, on.output
    # ... while releasing it stays locked.
    off = run("killswitch", "release", "--scope", "global", "--as", "ada", "--code", backups[2])
    assert off.exit_code != 0 and "locked out" in off.output
    assert "global" in run("killswitch", "status").output


def test_approving_power_is_given_by_two_people_once_two_can_give_it(deployment, audit):
    """A platform admin cannot make herself an approver to wave her own plans through: while
    another enrolled platform admin exists, a new approver (or platform admin) is a pending grant
    until that other admin confirms it; the asker and the receiver may not confirm, and the
    database refuses the role without a confirmed grant."""
    import psycopg2

    run, sandbox, url = deployment
    ada_totp, ada = first_admin(run)
    ids = {"dave": "712345678901234571", "mal": "712345678901234572", "eve": "712345678901234573"}
    sandbox.add_guild("1800000000000000001", members=list(ids.values()))
    # ada is the only enrolled platform admin: nobody could confirm, so dave's role is hers to give.
    dave_add = run("operators", "add", "dave", "--role", "platform_admin", "--discord", ids["dave"], "--as", "ada",
                   "--code", ada[0], "--json")
    assert dave_add.exit_code == 0 and json.loads(dave_add.output)["pending_grants"] == [], dave_add.output
    _, dave = redeem(run, "dave", dm_token(sandbox, ids["dave"]))
    # Now there are two: ada's next approver waits for dave.
    mal_add = run("operators", "add", "mal", "--role", "approver", "--role", "auditor", "--discord", ids["mal"],
                  "--as", "ada", "--code", ada[1])
    assert mal_add.exit_code == 0, mal_add.output
    assert "added with roles auditor" in mal_add.output and "waits for a second platform admin" in mal_add.output
    _, mal = redeem(run, "mal", dm_token(sandbox, ids["mal"]))
    grants = json.loads(run("operators", "grants", "--json").output)
    assert [(g["operator"], g["role"], g["requested_by"]) for g in grants] == [("mal", "approver", "ada")]
    gid = str(grants[0]["id"])
    # mal cannot approve anything yet (ada's own plan above all).
    assert {o["name"]: o["roles"] for o in json.loads(run("operators", "list", "--json").output)}["mal"] == ["auditor"]
    # ada may not confirm her own grant; mal may not confirm his; granting by another road waits too.
    own = run("operators", "confirm", gid, "--as", "ada", "--code", ada[2])
    assert own.exit_code != 0 and "asked for this grant and may not confirm it" in own.output
    his = run("operators", "confirm", gid, "--as", "mal", "--code", mal[0])
    assert his.exit_code != 0 and "only a platform admin" in his.output
    again = run("operators", "grant", "mal", "approver", "--as", "ada", "--code", ada[3])
    assert again.exit_code == 0 and "waits for a second platform admin" in again.output
    assert len(json.loads(run("operators", "grants", "--json").output)) == 1  # the same grant, not a second
    selfish = run("operators", "grant", "ada", "approver", "--as", "ada", "--code", ada[4])
    assert selfish.exit_code != 0 and "may not grant themself" in selfish.output
    # The application's own database role cannot slip the role in without a confirmed grant.
    from arrakis_engine.bootstrap import build_engine
    from arrakis_engine.errors import ArrakisError
    from arrakis_engine.settings import Settings

    engine = build_engine(Settings.from_env({"DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1/0"},
                                            env_file=None))
    try:
        with pytest.raises(ArrakisError, match="only through a grant that a second platform admin confirmed"):
            with engine.db.platform() as tx:
                tx.execute("UPDATE operators SET roles = array_append(roles, 'approver') WHERE name = 'mal'")
    finally:
        engine.close()
    # dave confirms: mal is an approver, and the audit says who asked and who confirmed.
    ok = run("operators", "confirm", gid, "--as", "dave", "--code", dave[0])
    assert ok.exit_code == 0 and "mal now has: approver, auditor" in ok.output, ok.output
    assert ("operator:dave", "mal", "approver", "ada", "dave") in [
        (a, p["operator"], p["role"], p.get("requested_by"), p.get("confirmed_by")) for a, p in audit("operator.role_granted")]
    twice = run("operators", "confirm", gid, "--as", "dave", "--code", dave[1])
    assert twice.exit_code != 0 and "already confirmed" in twice.output
    # A refused grant gives nothing.
    run("operators", "add", "eve", "--role", "approver", "--discord", ids["eve"], "--as", "dave", "--code", dave[2])
    eve_grant = str(json.loads(run("operators", "grants", "--json").output)[0]["id"])
    assert run("operators", "refuse", eve_grant, "--as", "ada", "--code", ada[5]).exit_code == 0
    roles = {o["name"]: o["roles"] for o in json.loads(run("operators", "list", "--json").output)}
    assert roles["eve"] == [] and json.loads(run("operators", "grants", "--json").output) == []
    # Refusals were audited.
    whys = [p["why"] for a, p in audit("security.refused")]
    assert any("asked for this grant" in w for w in whys) and any("may not grant themself" in w for w in whys)
    # Making herself "the only one" again does not bring the shortcut back: wiping dave's factor ...
    assert run("mfa", "enroll", "dave", "--as", "ada", "--code", ada[6]).exit_code == 0
    wiped = run("operators", "grant", "eve", "platform_admin", "--as", "ada", "--code", ada[7])
    assert wiped.exit_code == 0 and "waits for a second platform admin" in wiped.output, wiped.output
    # ... nor revoking his role (revoking is never held back; giving it back now waits too)
    assert run("operators", "revoke", "dave", "platform_admin", "--as", "ada", "--code", ada[8]).exit_code == 0
    revoked = run("operators", "grant", "eve", "approver", "--as", "ada", "--code", ada[9])
    assert revoked.exit_code == 0 and "waits for a second platform admin" in revoked.output, revoked.output
    assert {o["name"]: o["roles"] for o in json.loads(run("operators", "list", "--json").output)}["eve"] == []
    # the asker may withdraw her own grant (and it is audited as such)
    withdraw = [g for g in json.loads(run("operators", "grants", "--json").output)
                if (g["operator"], g["role"]) == ("eve", "platform_admin")][0]
    out = run("operators", "refuse", str(withdraw["id"]), "--as", "ada", "--code", ada_totp.now())
    assert out.exit_code == 0 and "refused" in out.output, out.output
    assert ("operator:ada", "eve") in [(a, p["operator"]) for a, p in audit("operator.grant_withdrawn")]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT operator, role, status, requested_by, decided_by FROM operator_grants ORDER BY id")
        assert cur.fetchall() == [("ada", "platform_admin", "first", "bootstrap", None),
                                  ("dave", "platform_admin", "sole_admin", "ada", None),
                                  ("mal", "approver", "confirmed", "ada", "dave"),
                                  ("eve", "approver", "refused", "dave", "ada"),
                                  ("eve", "platform_admin", "refused", "ada", "ada"),
                                  ("eve", "approver", "pending", "ada", None)]
