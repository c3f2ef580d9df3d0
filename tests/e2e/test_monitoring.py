"""Monitoring end to end, with the processes an operator runs: a real Prometheus scrapes `arrakis
web` while a worker synthesizes a community on the Discord sandbox, and reads the Discord calls
back through its HTTP API; `arrakis web` logs JSON lines with no secret or one-time token in them;
a worker serves its own /metrics on --metrics-port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.fixtures.ports import ServerProcess, free_port

BOT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.not-a-real-token-but-secret"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def arrakis(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arrakis_engine.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def base_env(database_url, redis_url, tmp_path, engine):
    engine.redis.flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_", "ARRAKIS_"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path / "data"),
                "ARRAKIS_METRICS_FLUSH": "0.5"})
    return env


def start_web(env: dict, folder, *, extra: dict | None = None) -> tuple[ServerProcess, int]:
    port = free_port()
    server = ServerProcess("arrakis web", [sys.executable, "-m", "arrakis_engine.cli", "web", "--port", str(port)],
                           folder / f"web-{port}.log", env={**env, **(extra or {})})
    server.start(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200, timeout=90)
    return server, port


@pytest.mark.slow
def test_prometheus_reads_the_discord_calls_of_a_synthesis_back(base_env, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("Prometheus is needed: Debian's prometheus package (scripts/services.sh installs it)")
    web, web_port = start_web(base_env, tmp_path)
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {os.path.abspath('ops/prometheus/alerts.yml')}
scrape_configs:
  - job_name: arrakis
    static_configs:
      - targets: ['127.0.0.1:{web_port}']
""")
    prometheus = ServerProcess("prometheus", [binary, f"--config.file={config}",
                                              f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                              f"--web.listen-address=127.0.0.1:{prom_port}"],
                               tmp_path / "prometheus.log")
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    prometheus.start(lambda: httpx.get(f"http://127.0.0.1:{prom_port}/-/ready", timeout=1).status_code == 200,
                     timeout=60)

    def query(expr: str) -> list:
        answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=5).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    try:
        guild = str(10**17 + uuid.uuid4().int % (9 * 10**17))
        made = arrakis("community", "create", "--name", "Scraped", "--guild-id", guild, "--theme", "basic",
                       "--subscription", "free", "--json", env=base_env)
        assert made.returncode == 0, made.stderr
        community = json.loads(made.stdout)["id"]
        queued = arrakis("synthesize", community, env=base_env)
        assert queued.returncode == 0, queued.stderr
        worked = arrakis("worker", "--burst", env=base_env)
        assert worked.returncode == 0, worked.stderr
        status = arrakis("synthesize", community, "--dry-run", "--json", env=base_env)
        assert status.returncode == 0, status.stderr
        deadline = time.monotonic() + 60
        series = []
        while time.monotonic() < deadline:
            series = query('sum by (route, status) (arrakis_discord_requests_total)')
            if series and sum(float(s["value"][1]) for s in series) > 0:
                break
            time.sleep(1)
        calls = {(s["metric"]["route"], s["metric"]["status"]): float(s["value"][1]) for s in series}
        assert calls.get(("/guilds/{guild_id}/roles", "200"), 0) >= 1, calls  # the roles it read and made
        assert guild not in json.dumps(series)  # route templates, never ids
        assert query('up{job="arrakis"}')[0]["value"][1] == "1"
        jobs = query('sum(arrakis_jobs_total{type="SYNTHESIZE_COMMUNITY", outcome="ok"})')
        assert jobs and float(jobs[0]["value"][1]) >= 1
        assert not query('arrakis_discord_429_total > 0')  # the sandbox's strict limits: no 429
        rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"][0]["rules"]
        assert {r["name"] for r in rules} >= {"ArrakisDiscordRateLimited", "ArrakisDangerousOperationApproved"}
        assert all(r["health"] == "ok" for r in rules), [r for r in rules if r["health"] != "ok"]
    finally:
        prometheus.stop()
        web.stop()


def test_web_logs_json_lines_without_secrets_and_serves_metrics(base_env, tmp_path):
    env = {**base_env, "ARRAKIS_LOG_FORMAT": "json", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "DISCORD_BOT_TOKEN": BOT_TOKEN, "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"}
    web, port = start_web(env, tmp_path)
    token = "Zq3x9lkJ8aaaaBBBBccccDDDDeeee"
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/verify/{token}", timeout=10).status_code == 410
        forged = httpx.post(f"http://127.0.0.1:{port}/slack/interactions", content=b"payload=%7B%7D", timeout=10,
                            headers={"X-Slack-Request-Timestamp": str(int(time.time())),
                                     "X-Slack-Signature": "v0=" + "0" * 64})
        assert forged.status_code == 401
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE arrakis_discord_requests_total counter" in metrics.text
        assert "arrakis_mfa_failures_total 0.0" in metrics.text
        time.sleep(0.5)
    finally:
        web.stop()
    log = web.log.read_text()
    lines = [line for line in log.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("/verify/" in e["event"] for e in entries)  # the access log saw the link...
    assert any("refused a Slack request" in e["event"] for e in entries)
    for e in entries:
        assert {"time", "level", "process", "event"} <= set(e) and e["process"] == "web"
    for secret in (token, BOT_TOKEN, SIGNING_SECRET):
        assert secret not in log  # ...but never the token in it, nor any secret


def test_a_worker_serves_its_own_metrics_on_metrics_port(base_env, tmp_path):
    port = free_port()
    worker = ServerProcess("arrakis worker", [sys.executable, "-m", "arrakis_engine.cli", "worker",
                                              "--metrics-port", str(port)], tmp_path / "worker.log", env=base_env)
    worker.start(lambda: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200, timeout=90)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "# TYPE arrakis_jobs_total counter" in text and "arrakis_discord_bucket_wait_seconds_count" in text
    finally:
        worker.stop()
    refused = arrakis("worker", "--burst", "--metrics-port", "http", env=base_env, timeout=60)
    assert refused.returncode == 2 and "metrics-port" in refused.stderr
