"""Operators and their second factor, on the real database (admin role) and Redis: wrong,
replayed and stale codes, backup codes once each, lockout after 5 failures, and a second process
that sees the same replay and lockout state."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from arrakis_engine.errors import Conflict, MfaRefused, ValidationError
from arrakis_engine.security.mfa import MfaService
from tests.fixtures.operators import confirm_pending
from arrakis_engine.storage.redis_state import MfaStepCopies
from tests.conftest import FakeClock
from tests.fixtures.operators import add_operator


def new_name() -> str:
    return f"op-{uuid.uuid4().hex[:10]}"


def secret_of(enrolment) -> str:
    return parse_qs(urlparse(enrolment.uri).query)["secret"][0]


@pytest.fixture
def operator(engine):
    name = new_name()
    return name, add_operator(engine, name, ["platform_admin"])


def audit_results(engine, name: str) -> list[str]:
    with engine.db.platform():
        entries = engine.repos.audit.entries(None, limit=500)
    return [e.payload["result"] for e in entries if e.action == "mfa.verify" and e.payload.get("operator") == name]


def test_operator_roles_are_validated_and_the_last_admin_stays(engine):
    name = new_name()
    with pytest.raises(ValidationError, match="unknown role 'root'"):
        engine.operators.add(name, ["root"], actor="test")
    with pytest.raises(ValidationError, match="not an operator name"):
        engine.operators.add("Bad Name", ["auditor"], actor="test")
    op = engine.operators.add(name, ["auditor"], actor="test", discord_user_id="123456789012345678")
    assert op.roles == ("auditor",) and not op.enrolled
    with pytest.raises(Conflict):
        engine.operators.add(name, ["auditor"], actor="test")
    engine.operators.grant(name, "approver", actor="test")
    confirm_pending(engine, name)  # a second platform admin's step, when one is enrolled
    assert engine.operators.get(name).roles == ("approver", "auditor")
    assert engine.operators.revoke(name, "auditor", actor="test").roles == ("approver",)
    assert name in [o.name for o in engine.operators.list()]


def test_enrolment_gives_a_uri_and_ten_backup_codes_and_stores_no_plain_code(engine, operator, owner_conn):
    name, enrolment = operator
    assert enrolment.uri.startswith("otpauth://totp/Arrakis:") and len(enrolment.backup_codes) == 10
    assert len(set(enrolment.backup_codes)) == 10
    with owner_conn.cursor() as cur:
        cur.execute("SELECT code_hash FROM operator_backup_codes WHERE operator = %s", (name,))
        stored = [r[0] for r in cur.fetchall()]
    assert len(stored) == 10
    assert not any(code.replace("-", "") in h for code in enrolment.backup_codes for h in stored)
    # Nothing secret in the audit log either.
    with engine.db.platform():
        text = str([e.payload for e in engine.repos.audit.entries(None, limit=50)])
    assert secret_of(enrolment) not in text and enrolment.backup_codes[0] not in text


def test_right_code_once_then_replay_refused(engine, operator):
    name, enrolment = operator
    code = pyotp.TOTP(secret_of(enrolment)).now()
    assert engine.mfa.verify(name, code, action="KILL_SWITCH") == "totp"
    with pytest.raises(MfaRefused, match="already used"):
        engine.mfa.verify(name, code, action="KILL_SWITCH")
    assert audit_results(engine, name)[-2:] == ["ok", "replayed"]


def test_wrong_code_and_a_code_two_steps_old_are_refused_one_step_is_accepted(engine, operator):
    name, enrolment = operator
    clock = FakeClock(1_800_000_000.0)
    mfa = MfaService(engine.db, engine.repos, MfaStepCopies(engine.redis), signing=engine.signing, clock=clock)
    totp = pyotp.TOTP(secret_of(enrolment))
    with pytest.raises(MfaRefused, match="wrong code"):
        mfa.verify(name, "000000" if totp.at(clock.t) != "000000" else "111111", action="DELETE_ROLE")
    with pytest.raises(MfaRefused, match="wrong code"):
        mfa.verify(name, totp.at(clock.t - 60), action="DELETE_ROLE")  # two steps ago
    assert mfa.verify(name, totp.at(clock.t - 30), action="DELETE_ROLE") == "totp"  # one step ago: allowed
    # Once the next step's code is accepted, a never-used code of an older step counts as used too
    # (RFC 6238 section 5.2: nothing older than what was accepted).
    assert mfa.verify(name, totp.at(clock.t + 30), action="DELETE_ROLE") == "totp"
    with pytest.raises(MfaRefused, match="already used"):
        mfa.verify(name, totp.at(clock.t), action="DELETE_ROLE")


def test_backup_code_works_once(engine, operator):
    name, enrolment = operator
    code = enrolment.backup_codes[3]
    assert engine.mfa.verify(name, code.upper(), action="PURGE_DATA") == "backup"
    with pytest.raises(MfaRefused, match="backup code was already used"):
        engine.mfa.verify(name, code, action="PURGE_DATA")
    assert engine.mfa.verify(name, enrolment.backup_codes[4], action="PURGE_DATA") == "backup"


def test_five_failures_lock_out_even_the_right_code_until_the_window_passes(engine, operator):
    name, enrolment = operator
    clock = FakeClock(1_900_000_000.0)
    mfa = MfaService(engine.db, engine.repos, MfaStepCopies(engine.redis), signing=engine.signing, clock=clock)
    totp = pyotp.TOTP(secret_of(enrolment))
    for i in range(5):
        clock.t += 10
        with pytest.raises(MfaRefused, match="wrong code"):
            mfa.verify(name, "999999" if totp.at(clock.t) != "999999" else "888888", action="KILL_SWITCH")
    with pytest.raises(MfaRefused, match="locked out"):
        mfa.verify(name, totp.at(clock.t), action="KILL_SWITCH")
    with pytest.raises(MfaRefused, match="locked out"):
        mfa.verify(name, enrolment.backup_codes[0], action="KILL_SWITCH")
    clock.t += 300  # the oldest failure is now more than 5 minutes old
    assert mfa.verify(name, totp.at(clock.t), action="KILL_SWITCH") == "totp"
    results = audit_results(engine, name)
    assert results[-8:] == ["wrong"] * 5 + ["locked", "locked", "ok"]


def _verify_in_another_process(settings, name: str, code: str) -> subprocess.CompletedProcess:
    script = ("import sys\n"
              "from arrakis_engine.bootstrap import build_engine\n"
              "from arrakis_engine.settings import Settings\n"
              "from arrakis_engine.errors import MfaRefused\n"
              "e = build_engine(Settings.from_env(env_file=None))\n"
              "try:\n"
              "    print(e.mfa.verify(sys.argv[1], sys.argv[2], action='KILL_SWITCH'))\n"
              "except MfaRefused as exc:\n"
              "    print('refused:', exc)\n"
              "finally:\n"
              "    e.close()\n")
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "ARRAKIS_DATA_DIR": str(settings.data_dir)}
    return subprocess.run([sys.executable, "-c", script, name, code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_second_process_sees_the_replay_and_the_lockout(engine, settings, operator):
    name, enrolment = operator
    code = pyotp.TOTP(secret_of(enrolment)).now()
    assert engine.mfa.verify(name, code, action="KILL_SWITCH") == "totp"
    out = _verify_in_another_process(settings, name, code)
    assert "refused: that code was already used" in out.stdout, out.stderr

    other = new_name()
    enrolment2 = add_operator(engine, other, ["approver"])
    for _ in range(5):
        with pytest.raises(MfaRefused):
            engine.mfa.verify(other, "12345x-abcdef", action="KILL_SWITCH")
    out = _verify_in_another_process(settings, other, pyotp.TOTP(secret_of(enrolment2)).now())
    assert "refused:" in out.stdout and "locked out" in out.stdout, out.stderr


# --- issue 24: state in PostgreSQL, secrets at rest, enrolment tokens ----------------------------

def test_a_redis_flush_never_readmits_a_used_code(engine, operator):
    """Point 8: the last accepted step is PostgreSQL's; Redis is a copy. Flushing Redis, or a
    Redis writer setting the copy back, lets no used code in again."""
    name, enrolment = operator
    code = pyotp.TOTP(secret_of(enrolment)).now()
    assert engine.mfa.verify(name, code, action="KILL_SWITCH") == "totp"
    engine.redis.flushdb()
    with pytest.raises(MfaRefused, match="already used"):
        engine.mfa.verify(name, code, action="KILL_SWITCH")
    from arrakis_engine import keys

    engine.redis.set(keys.mfa_last_step(name), -1)  # a Redis writer rewinds the copy
    with pytest.raises(MfaRefused, match="already used"):
        engine.mfa.verify(name, code, action="KILL_SWITCH")
    with engine.db.platform() as tx:
        assert tx.scalar("SELECT totp_last_step FROM operators WHERE name = %s", (name,)) is not None
    # Pushing the copy ahead does not refuse a good code either: PostgreSQL decides.
    engine.redis.set(keys.mfa_last_step(name), 10 ** 12)
    step = int(engine.mfa.clock() // 30)
    assert engine.mfa.verify(name, pyotp.TOTP(secret_of(enrolment)).at((step + 1) * 30), action="KILL_SWITCH") \
        == "totp"


def test_secrets_are_sealed_at_rest_and_bound_to_their_operator(engine, operator, owner_conn):
    """Point 9: the owner reading `operators` sees no secret, and moving one operator's sealed
    secret onto another's row does not let it open there."""
    from arrakis_engine.errors import SigningError

    name, enrolment = operator
    other, _ = new_name(), None
    other_enrolment = add_operator(engine, other, ["approver"])
    with owner_conn.cursor() as cur:
        cur.execute("SELECT name, totp_secret FROM operators WHERE name IN (%s, %s)", (name, other))
        stored = dict(cur.fetchall())
    assert stored[name].startswith("arrakis:local-aead:v1:") and secret_of(enrolment) not in stored[name]
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE operators SET totp_secret = %s WHERE name = %s", (stored[name], other))
    with pytest.raises(SigningError, match="cannot be opened"):
        engine.mfa.verify(other, pyotp.TOTP(secret_of(enrolment)).now(), action="KILL_SWITCH")
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE operators SET totp_secret = %s WHERE name = %s", (stored[other], other))
    assert engine.mfa.verify(other, pyotp.TOTP(secret_of(other_enrolment)).now(), action="KILL_SWITCH") == "totp"


def test_plain_secrets_from_before_are_sealed_on_upgrade_or_first_use(engine, owner_conn):
    """The upgrade path: a secret stored in plain text (as before this change) is sealed by
    `arrakis db upgrade` (MfaService.seal_plain_secrets) or, failing that, when first used."""
    plain_a, plain_b = pyotp.random_base32(), pyotp.random_base32()
    a, b = new_name(), new_name()
    for name, plain in ((a, plain_a), (b, plain_b)):
        add_operator(engine, name, ["approver"])
        with owner_conn.cursor() as cur:
            cur.execute("UPDATE operators SET totp_secret = %s WHERE name = %s", (plain, name))
    assert engine.mfa.verify(a, pyotp.TOTP(plain_a).now(), action="KILL_SWITCH") == "totp"  # first use seals
    with owner_conn.cursor() as cur:
        cur.execute("SELECT totp_secret FROM operators WHERE name = %s", (a,))
        assert cur.fetchone()[0].startswith("arrakis:local-aead:")
    assert engine.mfa.seal_plain_secrets() >= 1  # what `db upgrade` runs
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM operators WHERE totp_secret IS NOT NULL "
                    "AND totp_secret NOT LIKE 'arrakis:local-aead:%%' AND totp_secret NOT LIKE 'vault:v%%'")
        assert cur.fetchone()[0] == 0
    assert engine.mfa.verify(b, pyotp.TOTP(plain_b).now(), action="KILL_SWITCH") == "totp"


def test_backup_codes_have_64_bits_under_scrypt(engine, operator, owner_conn):
    name, enrolment = operator
    assert all(len(c.replace("-", "")) == 16 and int(c.replace("-", ""), 16) >= 0 for c in enrolment.backup_codes)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT code_hash FROM operator_backup_codes WHERE operator = %s", (name,))
        hashes = [r[0] for r in cur.fetchall()]
    assert hashes and all(h.startswith("scrypt$16384$8$1$") for h in hashes)


def test_an_enrolment_token_is_stored_hashed_works_once_and_expires_after_24_hours(engine, owner_conn):
    from arrakis_engine.security.enrolment import EnrolmentService
    from tests.fakes.guild_port import InMemoryGuilds
    from tests.fixtures.operators import fixture_admin, new_discord_id

    clock = FakeClock(1_800_000_000.0)
    discord = InMemoryGuilds()
    service = EnrolmentService(engine.db, engine.repos, engine.operators, engine.mfa, discord=discord, clock=clock)
    name, discord_id = new_name(), new_discord_id()
    issued = service.add_operator(name, ["approver"], by=fixture_admin(engine), discord_user_id=discord_id)
    assert issued.token is None and issued.delivered_to == f"a Discord direct message to {discord_id}"
    token = discord.direct_messages[discord_id][-1]["content"].split("--token ")[1].split()[0]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT token_hash FROM operator_enrolment_tokens WHERE operator = %s", (name,))
        (stored,) = cur.fetchone()
    assert token not in stored and len(stored) == 64
    clock.t += 24 * 3600 + 1
    with pytest.raises(MfaRefused, match="not valid"):
        service.redeem(name, token)
    service.reissue(name, by=fixture_admin(engine))
    fresh = discord.direct_messages[discord_id][-1]["content"].split("--token ")[1].split()[0]
    bystander = add_operator(engine, new_name(), ["approver"]).operator
    with pytest.raises(MfaRefused, match="not valid"):
        service.redeem(bystander, fresh)  # another operator's name: no
    assert service.redeem(name, fresh).backup_codes
    with pytest.raises(MfaRefused, match="not valid"):
        service.redeem(name, fresh)


def test_a_token_goes_by_slack_dm_when_the_operator_has_only_slack(engine, fake_slack):
    from arrakis_engine.adapters.notify.approvals import SlackClient
    from arrakis_engine.security.enrolment import EnrolmentService
    from tests.fixtures.operators import fixture_admin

    with engine.db.platform() as tx:
        tx.execute("UPDATE operators SET slack_user_id = NULL WHERE slack_user_id = 'U0SECOND'")
    service = EnrolmentService(engine.db, engine.repos, engine.operators, engine.mfa, discord=engine.discord,
                               slack=SlackClient(fake_slack.token, base_url=fake_slack.base_url))
    name = new_name()
    issued = service.add_operator(name, ["approver"], by=fixture_admin(engine), slack_user_id="U0SECOND")
    assert issued.delivered_to == "a Slack direct message to U0SECOND"
    text = fake_slack.direct_messages("U0SECOND")[-1]
    token = text.split("--token ")[1].split()[0]
    assert service.redeem(name, token).uri.startswith("otpauth://")
    # Not a member of the workspace: nothing is added, and the admin is told why.
    from arrakis_engine.errors import ConfigError

    stranger = new_name()
    with pytest.raises(ConfigError, match="could not be sent"):
        service.add_operator(stranger, ["approver"], by=fixture_admin(engine), slack_user_id="U0NOBODY1")
    assert stranger not in [o.name for o in engine.operators.list()]


def test_a_redis_flush_does_not_lift_a_lockout(engine, operator):
    """Five wrong codes lock the operator out; deleting Redis's keys does not let the guessing
    go on (the wrong codes are kept in PostgreSQL)."""
    name, enrolment = operator
    for _ in range(5):
        with pytest.raises(MfaRefused, match="wrong code"):
            engine.mfa.verify(name, "99999x-000000", action="KILL_SWITCH")
    engine.redis.flushdb()
    with pytest.raises(MfaRefused, match="locked out"):
        engine.mfa.verify(name, pyotp.TOTP(secret_of(enrolment)).now(), action="KILL_SWITCH")
