"""Secrets at rest on the embedded default: the local signing key file must be 0600 (anything
looser is refused with the chmod that fixes it), and the embedded Redis keeps its snapshot 0600
in a 0700 folder and asks every client for the password generated into that folder."""

from __future__ import annotations

import os
import stat

import pytest
import redis
from click.testing import CliRunner

from arrakis_engine.cli import cli
from arrakis_engine.embedded import EmbeddedRedis
from tests.conftest import create_database, drop_database


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_signing_key_file_others_may_read_is_refused_with_the_fix(pg_server_url, redis_url, tmp_path):
    url = create_database(pg_server_url, prefix="arrakis_keyfile")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path)}

    def run(*args):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    try:
        assert run("db", "upgrade").exit_code == 0
        assert run("signing", "public-key").exit_code == 0  # creates the key file
        key_file = tmp_path / "signing" / "keys.json"
        assert mode(key_file) == 0o600
        for loose in (0o644, 0o640, 0o604):
            key_file.chmod(loose)
            refused = run("signing", "status")
            assert refused.exit_code == 1
            lines = refused.output.strip().splitlines()
            assert len(lines) == 1 and f"chmod 600 {key_file}" in lines[0], refused.output
            assert "Traceback" not in refused.output
        key_file.chmod(0o600)
        assert run("signing", "status").exit_code == 0
    finally:
        drop_database(pg_server_url, url)


def test_the_embedded_redis_has_a_password_and_keeps_its_files_private(tmp_path):
    server = EmbeddedRedis(tmp_path)
    address = server.start()
    try:
        folder = tmp_path / "redis"
        assert mode(folder) == 0o700
        assert mode(folder / "redis.conf") == 0o600
        sock = EmbeddedRedis(tmp_path).socket_path(folder)
        anonymous = redis.Redis(unix_socket_path=str(sock))
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("arrakis:probe", "1")
        anonymous.close()
        wrong = redis.Redis(unix_socket_path=str(sock), password="guessed")
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
        wrong.close()
        client = redis.Redis.from_url(address)  # what the engine is given
        client.set("arrakis:probe", "1")
        client.save()
        assert mode(folder / "arrakis.rdb") == 0o600
        client.close()
        assert (folder / "redis.conf").read_text().split()[1] not in " ".join(
            open(f"/proc/{server.running_pid()}/cmdline").read().split("\0"))  # never on a command line
    finally:
        server.stop()
