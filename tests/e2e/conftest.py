"""The ``run`` fixture of the CLI tests: the real ``arrakis`` command, in-process, on the session's
PostgreSQL and Redis (``run(*args, extra_env={...})``)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli


@pytest.fixture
def run(database_url, redis_url, tmp_path, engine):
    # The command line is one more process of the same deployment: it shares the session
    # engine's signing key file (operators' TOTP secrets are sealed with it), as processes on
    # one machine share their data folder.
    keys = engine.settings.data_dir / "signing"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    (tmp_path / "signing").symlink_to(keys, target_is_directory=True)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path)}

    def invoke(*args: str, extra_env: dict | None = None):
        return CliRunner().invoke(cli, list(args), env={**env, **(extra_env or {})}, catch_exceptions=False)

    return invoke
