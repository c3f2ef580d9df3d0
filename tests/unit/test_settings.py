"""Settings are read once, validated, and never show secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from arrakis_engine.errors import ConfigError
from arrakis_engine.settings import Settings


def test_defaults_mean_embedded(tmp_path):
    s = Settings.from_env({"ARRAKIS_DATA_DIR": str(tmp_path)}, env_file=None)
    assert s.embedded_database and s.embedded_redis
    assert s.data_dir == tmp_path
    assert s.describe()["database"] == "embedded"


def test_private_key_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"PRIVATE_KEY": "0xdeadbeefsecret", "ARRAKIS_DATA_DIR": str(tmp_path)}, env_file=None)
    assert "deadbeefsecret" not in str(err.value)


def test_rpc_urls_per_chain(tmp_path):
    s = Settings.from_env({"ARRAKIS_DATA_DIR": str(tmp_path),
                           "RPC_URLS_BERACHAIN": "http://127.0.0.1:1, http://127.0.0.1:2"}, env_file=None)
    assert s.rpc_urls == {"berachain": ("http://127.0.0.1:1", "http://127.0.0.1:2")}
    with pytest.raises(ConfigError, match="unknown chain 'dogechain'"):
        Settings.from_env({"RPC_URLS_DOGECHAIN": "http://x"}, env_file=None)
    with pytest.raises(ConfigError, match="not an http"):
        Settings.from_env({"RPC_URLS_BASE": "ftp://x"}, env_file=None)


@pytest.mark.parametrize("name, value", [("DATABASE_URL", "mysql://x"), ("REDIS_URL", "http://x"),
                                         ("ARRAKIS_LOG_LEVEL", "LOUD")])
def test_malformed_values_are_refused(name, value):
    with pytest.raises(ConfigError):
        Settings.from_env({name: value}, env_file=None)


def test_secrets_stay_out_of_repr_and_describe(tmp_path):
    s = Settings.from_env({"ARRAKIS_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://u:hunter2@db/x",
                           "DISCORD_BOT_TOKEN": "tok-hunter2", "SCORE_API_KEY": "key-hunter2"}, env_file=None)
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.describe())


def test_env_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ARRAKIS_LOG_LEVEL=debug\nSCORE_API_URL=http://from-file\n")
    s = Settings.from_env({"SCORE_API_URL": "http://from-env", "ARRAKIS_DATA_DIR": str(tmp_path)},
                          env_file=env_file)
    assert s.log_level == "DEBUG"
    assert s.score_api_url == "http://from-env"
    assert isinstance(s.data_dir, Path)
