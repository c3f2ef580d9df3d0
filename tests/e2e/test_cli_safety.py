"""The safety layer against the operators it guards, through the real ``arrakis`` command on a
database of the test's own: a frozen member cannot release their own freeze."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from tests.conftest import create_database, drop_database
from tests.fixtures.operators import in_sandbox

D = "100000000000000555"  # carol's Discord id


@pytest.fixture
def run(pg_server_url, redis_url, tmp_path):
    url = create_database(pg_server_url, prefix="arrakis_cli_safe")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path), "ARRAKIS_OPERATOR": None}

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("db", "upgrade").exit_code == 0
    invoke.env = env
    yield invoke
    drop_database(pg_server_url, url)


def first_admin(run, name: str = "ada"):
    first = run("operators", "add", name, "--role", "platform_admin", "--json")
    assert first.exit_code == 0, first.output
    out = run("mfa", "enroll", name, "--token", json.loads(first.output)["enrolment_token"], "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    return pyotp.TOTP(parse_qs(urlparse(data["otpauth_uri"]).query)["secret"][0]), list(data["backup_codes"])


def test_a_frozen_user_cannot_release_their_own_freeze(run):
    totp, backups = first_admin(run)
    # carol shares a server with the bot, so her enrolment token reaches her by direct message.
    in_sandbox(run.env, lambda d: d.add_guild("1800000000000000555", members=[D]))
    added = run("operators", "add", "carol", "--role", "auditor", "--discord", D, "--as", "ada",
                "--code", backups.pop())
    assert added.exit_code == 0, added.output
    on = run("killswitch", "activate", "--scope", "user", "--user", D, "--reason", "carol's account was phished",
             "--as", "ada", "--code", totp.now())
    assert on.exit_code == 0, on.output

    refused = run("killswitch", "release", "--scope", "user", "--user", D, "--as", "carol")
    assert refused.exit_code == 1
    assert "only a platform admin, with a code, may release a kill switch" in refused.output
    assert D in run("killswitch", "status").output  # still frozen
    # Nor with a code of hers, nor an admin without one.
    assert run("killswitch", "release", "--scope", "user", "--user", D, "--as", "carol",
               "--code", "123456").exit_code == 1
    assert run("killswitch", "release", "--scope", "user", "--user", D, "--as", "ada").exit_code != 0
    assert D in run("killswitch", "status").output
    released = run("killswitch", "release", "--scope", "user", "--user", D, "--as", "ada", "--code", backups.pop())
    assert released.exit_code == 0, released.output
    assert "nothing is frozen" in run("killswitch", "status").output
