"""Log lines: plain text by default, one JSON object per line with ARRAKIS_LOG_FORMAT=json, and
never a secret or a one-time token in either."""

from __future__ import annotations

import io
import json
import logging

import pytest

from arrakis_engine.errors import ConfigError
from arrakis_engine.logs import configure, log_context, secret_values
from arrakis_engine.settings import Settings

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.secret-part-of-the-token"
LINES = [
    ("GET /verify/Zq3x_9-lkJ8aaaaBBBBccccDDDD HTTP/1.1 410", "Zq3x_9-lkJ8aaaaBBBBccccDDDD"),
    ("POST https://discord.com/api/webhooks/123456789012345678/AbCdEf-GhIj_KlMn posted", "AbCdEf-GhIj_KlMn"),
    (f"Authorization: Bot {BOT_TOKEN}", BOT_TOKEN),
    ("slack token xoxb-1234-5678-abcdefABCDEF in use", "xoxb-1234-5678-abcdefABCDEF"),
    ("connecting to postgresql://arrakis:hunter2secret@db:5432/arrakis", "hunter2secret"),
]


@pytest.fixture
def capture():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def settings(**env):
    return Settings.from_env({"ARRAKIS_DATA_DIR": "/tmp/x", **env}, env_file=None)


def test_json_lines_carry_time_level_process_event_and_ids(capture):
    s = settings(ARRAKIS_LOG_FORMAT="json")
    configure(level="INFO", fmt=s.log_format, process="worker", secrets=secret_values(s), stream=capture, force=True)
    log = logging.getLogger("arrakis.test")
    with log_context(community_id="5b0c6f0e-0000-4000-8000-000000000001", job_id="ASSIGN_ROLE-x"):
        log.warning("job failed (%s); %d tries left", "Discord answered 503", 2)
    log.info("plain line")
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("it broke")
    lines = [json.loads(line) for line in capture.getvalue().splitlines()]
    assert len(lines) == 3
    first = lines[0]
    assert set(first) >= {"time", "level", "process", "event", "community_id", "job_id"}
    assert first["level"] == "warning" and first["process"] == "worker"
    assert first["event"] == "job failed (Discord answered 503); 2 tries left"
    assert first["community_id"].startswith("5b0c6f0e") and first["job_id"] == "ASSIGN_ROLE-x"
    assert "community_id" not in lines[1]  # the context ended with its block
    assert lines[2]["error"] == "ValueError: bad thing"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_and_one_time_tokens_never_appear(capture, fmt):
    s = settings(ARRAKIS_LOG_FORMAT=fmt, DISCORD_BOT_TOKEN=BOT_TOKEN, DISCORD_API_BASE="http://127.0.0.1:1/api/v10",
                 SLACK_SIGNING_SECRET="8f742231b10e8888abcd99yyyzzz85a5", SCORE_API_KEY="score-key-0123456789")
    configure(level="INFO", fmt=s.log_format, process="web", secrets=secret_values(s), stream=capture, force=True)
    log = logging.getLogger("arrakis.test")
    for line, _ in LINES:
        log.info(line)
    log.info("signing secret is %s and score key %s", s.slack_signing_secret, s.score_api_key)
    out = capture.getvalue()
    for _, secret in LINES:
        assert secret not in out
    assert s.slack_signing_secret not in out and s.score_api_key not in out
    assert out.count("[redacted]") >= len(LINES) + 2
    lines = out.splitlines()
    if fmt == "json":
        assert all(json.loads(line)["process"] == "web" for line in lines)
    else:
        assert not lines[0].startswith("{") and " INFO arrakis.test: " in lines[0]


def test_the_default_is_text_and_an_unknown_format_is_refused():
    assert settings().log_format == "text"
    with pytest.raises(ConfigError, match="ARRAKIS_LOG_FORMAT"):
        settings(ARRAKIS_LOG_FORMAT="xml")
    with pytest.raises(ConfigError, match="ARRAKIS_METRICS_PORT"):
        settings(ARRAKIS_METRICS_PORT="http")
    assert settings().metrics is True and settings(ARRAKIS_METRICS="off").metrics is False
    assert settings(ARRAKIS_METRICS="ON").metrics is True
    with pytest.raises(ConfigError, match="ARRAKIS_METRICS 'no' is not on or off"):
        settings(ARRAKIS_METRICS="no")
