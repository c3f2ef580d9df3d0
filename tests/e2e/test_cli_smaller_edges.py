"""Smaller edges an operator met: `manifests verify` of an unknown id and of a tampered version,
and what `killswitch activate` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.e2e.test_cli_new_operator import community, one_error_line



@pytest.fixture(autouse=True)
def no_jobs_left(engine):
    """Deploys and queued syntheses here have no worker: their jobs go when the test ends, so a
    later test's worker does not run them."""
    yield
    engine.redis.flushdb()

def test_manifests_verify_says_which_check_failed(run, tmp_path, engine):
    unknown = str(uuid.uuid4())
    out = run("manifests", "verify", unknown)
    assert out.exit_code == 1
    line = one_error_line(out)
    assert f"the shadow store has no manifests for community {unknown}" in line
    assert "index.json" not in line and "manifests/" not in line and str(tmp_path) not in line

    cid = community(run, name="Shadowed")
    no_discord = {"DISCORD_API_BASE": "", "DISCORD_BOT_TOKEN": ""}
    with engine.db.tenant(cid):  # a member, so that a second version differs from the first
        engine.repos.profiles.create(discord_id="510000000000000001")
    first = run("synthesize", cid, extra_env=no_discord)
    assert first.exit_code == 0, first.output
    with engine.db.tenant(cid):
        engine.repos.profiles.create(discord_id="510000000000000002")
    second = run("synthesize", cid, extra_env=no_discord)
    assert second.exit_code == 0, second.output
    assert run("manifests", "flush").exit_code == 0
    ok = run("manifests", "verify", cid)
    assert ok.exit_code == 0 and ok.stdout.split() == ["v1:", "ok", "v2:", "ok"], ok.output

    [v1] = tmp_path.rglob(f"manifests/{cid}/v000001.json")
    [v2] = v1.parent.glob("v000002.json")
    [index] = v1.parent.glob("index.json")
    v1.write_bytes(v1.read_bytes().replace(b"}", b" }", 1))  # the file changed
    record = json.loads(index.read_text())
    record["versions"][1]["signature"] = record["versions"][0]["signature"]  # v2's signature swapped
    index.write_text(json.dumps(record))
    checked = run("manifests", "verify", cid)
    assert checked.exit_code == 1
    assert "v1: MISMATCH: checksum" in checked.stdout and "v2: MISMATCH: signature" in checked.stdout
    v1.unlink()
    gone = run("manifests", "verify", cid, "--json")
    assert json.loads(gone.stdout)[0]["problem"] == "file"
    assert "v1: MISMATCH: file missing" in run("manifests", "verify", cid).stdout


def test_killswitch_prints_one_warning_and_a_release_hint_with_its_scope(run, engine, database_url, redis_url,
                                                                          tmp_path):
    """In a real process (where the log reaches stderr): the alert, logged when no webhook is set,
    is the one WARNING line; the hint says how to release this very scope."""
    name = f"ks-{uuid.uuid4().hex[:8]}"
    from tests.fixtures.operators import add_operator

    codes = list(add_operator(engine, name, ["platform_admin"]).backup_codes)
    cid = community(run, name="Hint")
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path)}
    env.pop("ALERT_WEBHOOK_URL", None)
    on = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "killswitch", "activate", "--scope", "community",
                         "--community", cid, "--reason", "drill", "--as", name, "--code", codes.pop()],
                        env=env, capture_output=True, text=True, timeout=120)
    try:
        assert on.returncode == 0, on.stderr
        warnings = [line for line in on.stderr.splitlines() if "WARNING" in line]
        assert len(warnings) == 1 and "Kill switch ON" in warnings[0], on.stderr
        assert f"release: arrakis killswitch release --scope community --community {cid}" in on.stdout
    finally:
        off = run("killswitch", "release", "--scope", "community", "--community", cid, "--as", name,
                  "--code", codes.pop())
        assert off.exit_code == 0, off.output


def test_status_with_postgresql_down_still_shows_the_rest_and_fails(run):
    down = {"DATABASE_URL": "postgresql://arrakis@127.0.0.1:1/arrakis", "DISCORD_API_BASE": "http://127.0.0.1:9",
            "DISCORD_BOT_TOKEN": "not-used"}
    out = run("status", extra_env=down)
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    assert any(line.split()[:3] == ["postgresql", "down", "not"] and "not reachable" in line for line in lines)
    assert any(line.split()[:2] == ["redis", "ok"] for line in lines)  # what still works is shown
    assert lines[-1].startswith("communities: not readable (could not connect to PostgreSQL")
    data = json.loads(run("status", "--json", extra_env=down).stdout)
    assert data["communities"] is None and "could not connect" in data["error"]
    assert {i["name"]: i["state"] for i in data["health"]["items"]}["postgresql"] == "down"
