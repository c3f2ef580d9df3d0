"""Operators, MFA, signing and the kill switch through the real ``arrakis`` command, on a database
of the test's own (so "the first operator" really is the first)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from tests.conftest import create_database, drop_database


@pytest.fixture
def run(pg_server_url, redis_url, tmp_path):
    url = create_database(pg_server_url, prefix="arrakis_cli_sec")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path), "ARRAKIS_OPERATOR": None}

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    yield invoke
    drop_database(pg_server_url, url)


def enroll(run, name: str):
    out = run("mfa", "enroll", name, "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    return pyotp.TOTP(parse_qs(urlparse(data["otpauth_uri"]).query)["secret"][0]), data["backup_codes"]


def test_operators_mfa_killswitch_and_signing_end_to_end(run):
    first = run("operators", "add", "ada", "--role", "platform_admin", "--json")
    assert first.exit_code == 0 and json.loads(first.output)["created_by"] == "bootstrap"
    totp, backups = enroll(run, "ada")
    assert len(backups) == 10
    # From now on adding operators needs a platform admin and a code.
    refused = run("operators", "add", "bob", "--role", "approver")
    assert refused.exit_code != 0 and "say who is acting" in refused.output
    wrong = run("operators", "add", "bob", "--role", "approver", "--as", "ada", "--code", "12345x-000000")
    assert wrong.exit_code != 0 and "wrong code" in wrong.output
    ok = run("operators", "add", "bob", "--role", "approver", "--as", "ada", "--code", backups[0])
    assert ok.exit_code == 0, ok.output
    bob_totp, bob_backups = enroll(run, "bob")
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
