"""The ``arrakis`` command end to end, on real PostgreSQL and Redis (and on the embedded default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from tests.fixtures.legacy_sqlite import build_legacy_db
from tests.fixtures.workers import wait_for



def test_db_upgrade_and_status(run):
    result = run("db", "upgrade")
    assert result.exit_code == 0 and "database is up to date" in result.output
    status = json.loads(run("db", "status", "--json").output)
    assert status and all(s["state"] == "applied" for s in status)


def test_community_create_and_list(run):
    created = run("community", "create", "--name", "Dune Fans", "--guild-id", "123456789012345000",
                  "--theme", "sietch", "--subscription", "premium", "--json")
    assert created.exit_code == 0, created.output
    cid = json.loads(created.output)["id"]
    listed = json.loads(run("community", "list", "--json").output)
    mine = [c for c in listed if c["id"] == cid]
    assert mine and mine[0]["theme_id"] == "sietch" and mine[0]["members"] == 0
    table = run("community", "list")
    assert "Dune Fans" in table.output


@pytest.mark.parametrize("args, message, status", [
    (["--theme", "sietch"], "needs a premium subscription", 1),  # refused
    (["--theme", "nope"], "unknown theme 'nope'", 2),  # a bad value
    (["--guild-id", "x"], "is not a Discord server id", 2),
])
def test_community_create_errors_are_one_clear_line(run, args, message, status):
    base = {"--name": "X", "--guild-id": "123456789012345111", "--theme": "basic"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [item for kv in base.items() for item in kv]
    result = run("community", "create", *flat)
    assert result.exit_code == status
    assert message in result.output
    assert "Traceback" not in result.output


def test_duplicate_guild_is_refused(run):
    run("community", "create", "--name", "A", "--guild-id", "123456789012345222")
    again = run("community", "create", "--name", "B", "--guild-id", "123456789012345222")
    assert again.exit_code == 1 and "already has a community" in again.output


def test_migrate_commands(run, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=25)
    cid = json.loads(run("community", "create", "--name", "Legacy", "--guild-id", "123456789012345333",
                         "--theme", "sietch", "--subscription", "premium", "--json").output)["id"]
    dry = run("migrate", "sqlite", str(source), "--community", cid, "--dry-run")
    assert dry.exit_code == 0 and "would import 25 profiles" in dry.output
    done = run("migrate", "sqlite", str(source), "--community", cid)
    assert done.exit_code == 0 and "imported 25 profiles" in done.output
    valid = json.loads(run("migrate", "validate", str(source), "--community", cid, "--json").output)
    assert valid["ok"] is True
    back = run("migrate", "rollback", "--community", cid)
    assert back.exit_code == 0 and "removed" in back.output and "25 profiles" in back.output
    bad = build_legacy_db(tmp_path / "bad.db", members=5, bad=("badge",))
    refused = run("migrate", "sqlite", str(bad), "--community", cid)
    assert refused.exit_code == 1
    assert "bad row" in refused.output and "badges row 9002" in refused.output


def test_bad_community_id_is_a_clear_error(run, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=2)
    result = run("migrate", "sqlite", str(source), "--community", "'; DROP TABLE profiles; --")
    assert result.exit_code == 2 and "not a valid UUID" in result.output


def test_private_key_in_environment_is_refused(database_url, redis_url, tmp_path):
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
           "PRIVATE_KEY": "0x" + "11" * 32}
    result = CliRunner().invoke(cli, ["community", "list"], env=env)
    assert result.exit_code == 1
    assert "PRIVATE_KEY" in result.output and "11" * 32 not in result.output


def test_audit_verify(run):
    cid = json.loads(run("community", "create", "--name", "Audit", "--guild-id", "123456789012345444",
                         "--json").output)["id"]
    result = json.loads(run("audit", "verify", cid, "--json").output)
    # Until a digest anchors it outside the database, the row is reported as unanchored.
    assert result["rows"] == 1 and not result["ok"] and result["anchoring"]["unanchored"] == [1]
    assert run("audit", "checkpoint").exit_code == 0
    result = json.loads(run("audit", "verify", cid, "--json").output)
    assert result["ok"] and result["problems"] == [] and result["anchoring"]["unanchored"] == []


@pytest.mark.slow
def test_demo_on_the_embedded_default_twice(tmp_path):
    """With no DATABASE_URL / REDIS_URL / DISCORD_API_BASE, `arrakis demo` starts embedded servers
    and the Discord sandbox in the data folder and runs the whole loop (manifest, synthesis on the
    queue, member roles, drift in sync); a second run reuses everything and calls Discord not once."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DISCORD_API_BASE", "DISCORD_BOT_TOKEN")}
    env["ARRAKIS_DATA_DIR"] = str(tmp_path / "data")
    env["ARRAKIS_EMBEDDED_GRACE"] = "0"  # stopped as soon as the last command ends (checked below)
    cmd = [sys.executable, "-m", "arrakis_engine.cli", "demo", "--json"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    # A process that was killed while using the server (a closed terminal) never let go of it:
    handles = tmp_path / "data" / "postgres" / ".handle_pids.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handles.write_text(json.dumps([dead.pid]))
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)
    assert one["stack"] == two["stack"] == "embedded"
    assert one["created"] is True and two["created"] is False
    assert one["community_id"] == two["community_id"]
    assert one["members"] == two["members"] == 40 and two["members_added"] == 0
    # A re-run that changes nothing adds nothing to the audit log.
    assert two["audit_chain"]["ok"] and two["audit_chain"]["rows"] == one["audit_chain"]["rows"]
    assert list(one["tiers"]) == ["Gold", "Silver", "Bronze", "none"]  # the theme's order, not the alphabet
    assert two["health"] == {"postgresql": "ok", "redis": "ok"}
    built, again = one["discord"], two["discord"]
    assert built["where"] == again["where"] == "sandbox"
    assert built["roles"] == ["Gold", "Silver", "Bronze"] and len(built["channels"]) == 8
    # Ranks 3, 6, ..., 120: 3 Gold, 13 Silver, 17 Bronze, 7 without a tier.
    assert built["members_by_role"] == {"Bronze": 17, "Gold": 3, "Silver": 13}
    assert built["member_updates"] == built["members_with_roles"] == 33
    assert built["drift"] == again["drift"] == "in sync" and built["drift_checked"] == "this run"
    # 2 reads + 15 creates + 4 overwrites, 2 reads for the plan, 40 member reads, 33 PATCHes, 2 for drift
    assert built["calls"] >= 15 + 33 and built["rate_limited"] == 0 and 0 < built["busiest_window"] <= 50
    assert again["calls"] == 0 and again["member_updates"] == 0 and again["members_with_roles"] == 33
    checked = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", "drift", one["community_id"]], env=env,
                             capture_output=True, text=True, timeout=180)
    assert checked.returncode == 0, checked.stderr
    assert "in sync (in the local Discord sandbox, not real Discord)" in checked.stdout  # says where it looked
    state = json.loads((tmp_path / "data" / "discord" / "state.json").read_text())
    guild = next(g for g in state["guilds"] if g["id"] == "990000000000000042")
    assert sorted(r["name"] for r in guild["roles"].values() if r["name"] != "@everyone") == [
        "Bronze", "Gold", "Silver"]
    assert sum(1 for roles in guild["members"].values() if roles) == 33
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
    # Stopped cleanly, the dead process forgotten: no server left running on the data folder (the
    # janitor, which stops servers whose users were killed, ends within a second of the last one).
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()
    assert not (tmp_path / "data" / "redis" / "pid").exists() and (tmp_path / "data" / "redis" / "arrakis.rdb").exists()
    assert not (tmp_path / "data" / "discord" / "pid").exists()
    wait_for(lambda: not _processes_naming(tmp_path / "data"), timeout=10,
             explain=lambda: f"still running on the data folder: {_processes_naming(tmp_path / 'data')}")


def _processes_naming(folder) -> list[int]:
    """Processes whose command line mentions ``folder`` (a server left running on it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_themes_commands():
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["themes", "list", "--json"]).output)
    assert {t["id"]: t["requires"] for t in listed} == {"basic": "free", "sietch": "premium"}
    shown = json.loads(runner.invoke(cli, ["themes", "show", "sietch", "--json"]).output)
    assert [t["name"] for t in shown["tiers"]][:3] == ["Naib", "Fedaykin", "Usul"]
    assert len(shown["badges"]) == 12 and len(shown["categories"]) == 7
    assert shown["demotion_grace_hours"] == 24
    text = runner.invoke(cli, ["themes", "show", "basic"]).output
    assert "LEADERSHIP [Gold only]" in text
    tier = json.loads(runner.invoke(cli, ["themes", "tier", "sietch", "1001", "--json"]).output)
    assert tier["tier"] == "Hajra"
    assert "no tier" in runner.invoke(cli, ["themes", "tier", "basic", "101"]).output
    bad = runner.invoke(cli, ["themes", "tier", "basic", "0"])
    assert bad.exit_code == 2 and "rank must be a whole number from 1 up" in bad.output
    unknown = runner.invoke(cli, ["themes", "show", "nope"])
    assert unknown.exit_code == 2 and "unknown theme 'nope'" in unknown.output


def test_wallets_eligibility_commands(database_url, redis_url, tmp_path, engine, chain, anvil):
    from tests.fixtures.chain import holder

    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
           "RPC_URLS_BERACHAIN": anvil.url}
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    token = chain.deploy("TestERC20", "Rank", "RNK", 18)
    wallets = [holder(70_000 + i) for i in range(12)]
    chain.send(token.functions.mintMany([chain.w3.to_checksum_address(w) for w in wallets],
                                        [1000 - i for i in range(12)]))
    cid = json.loads(run("community", "create", "--name", "Chain", "--guild-id", "123456789012345555",
                         "--json").output)["id"]
    csv_file = tmp_path / "w.csv"
    csv_file.write_text("discord_id,wallet_address\n" + "".join(
        f"{600000000000000000 + i},{w}\n" for i, w in enumerate(wallets)) + "oops,0x12\n")
    imported = json.loads(run("wallets", "import", cid, str(csv_file), "--json").output)
    assert imported["linked"] == 12 and len(imported["errors"]) == 1
    added = run("eligibility", "add-asset", cid, "--chain", "berachain", "--kind", "erc20", "--address", token.address)
    assert added.exit_code == 0 and "rank asset set" in added.output
    diff = json.loads(run("eligibility", "sync", cid, "--json").output)
    assert len(diff["joined"]) == 12 and diff["unknown"] == [] and diff["chain_requests"] == 1
    text = run("eligibility", "sync", cid)
    assert "12 members (native ranks): 0 joined" in text.output
    status = json.loads(run("eligibility", "status", "--json").output)
    assert status["mode"] == "partial" and status["chains"] == ["berachain"]
    bad = run("eligibility", "add-asset", cid, "--chain", "berachain", "--kind", "erc20", "--address", "0x12")
    assert bad.exit_code == 2 and "asset address" in bad.output


@pytest.mark.slow
def test_synthesis_commands(database_url, redis_url, tmp_path, engine):
    from tests.fakes.discord_api import FakeDiscord

    discord = FakeDiscord(route_limits={"create_role": (50, 1.0)})
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path),
           "DISCORD_API_BASE": discord.url, "DISCORD_BOT_TOKEN": discord.token}
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    try:
        cid = json.loads(run("community", "create", "--name", "Synth", "--guild-id", "123456789012345666",
                             "--json").output)["id"]
        guild = discord.guild("123456789012345666")
        dry = run("synthesize", cid, "--dry-run")
        assert "no manifest yet" in dry.output and discord.requests == 0
        done = run("synthesize", cid, "--now")
        assert done.exit_code == 0 and "created 15" in done.stdout  # 4 categories, 3 roles, 8 channels
        # The progress bar (stderr): steps done of those planned, with the time left.
        assert "synthesis" in done.stderr and "19/19" in done.stderr  # 15 creates + 4 category overwrites
        run("manifests", "flush")  # the shadow store (a local folder here) gets what the outbox holds
        assert [v["version"] for v in json.loads(run("manifests", "list", cid, "--last", "1", "--json").output)] == [1]
        assert "v1: ok" in run("manifests", "verify", cid).output
        assert run("manifests", "list", cid, "--last", "0").exit_code == 2  # a clear usage error
        queued = json.loads(run("synthesize", cid, "--json").output)
        assert queued["new_version"] is False and queued["job_id"]
        roles = [r for r in guild.roles.values() if r["name"] == "Gold"]
        roles[0]["name"] = "Renamed"
        plan = json.loads(run("reconcile", cid, "--dry-run", "--json").output)
        assert [(a["op"], a["manifest_id"], a["severity"]) for a in plan["actions"]] == [
            ("update", "role:gold", "medium")]
        fixed = run("reconcile", cid)
        assert "reconcile did: create 0, update 1" in fixed.output
        assert any(r["name"] == "Gold" for r in guild.roles.values())
        stats = json.loads(run("bucket", "stats", "--json").output)
        assert stats["granted"] >= discord.requests and stats["rate_limited"] == 0 and len(stats["per_second"]) == 60
        rounds = run("scheduler", "--once")
        assert "Synth: reconcile did: create 0, update 0, delete 0" in rounds.output
        assert "reconcile round: " in rounds.output and "shadow store: " in rounds.output  # says what it did
        assert "no dead letters" in run("dlq", "list").output
        status = json.loads(run("status", "--json").output)  # the scheduler's round checked drift too
        mine = next(c for c in status["communities"] if c["id"] == cid)
        assert mine["drift"] == "in sync" and mine["shadow_status"] == "applied" and mine["last_synthesis"]
        assert {i["name"]: i["state"] for i in status["health"]["items"]}["postgresql"] == "ok"
        text = run("status").output
        assert "Synth" in text and "drift: in sync" in text and "dead letters" in text
        assert "in sync" in run("drift", cid).output
        unconfigured = runner.invoke(cli, ["reconcile", cid], env={**env, "DISCORD_API_BASE": ""})
        assert unconfigured.exit_code == 1 and "Discord is not configured" in unconfigured.output
    finally:
        discord.close()


def test_wizard_commands(run):
    g, user = "123456789012345777", "42"
    s = json.loads(run("wizard", "start", g, user, "--name", "Via CLI", "--json").output)
    sid = s["id"]
    assert json.loads(run("wizard", "start", g, user, "--json").output)["existing"] is True
    steps = [{}, {"chain": "berachain"}, {"assets": [{"kind": "native"}]}, {"template": "basic"},
             {"roles": {"Gold": "create", "Silver": "create", "Bronze": "create"}}, {"channel_template": "basic"}]
    for data in steps:
        out = run("wizard", "step", sid, user, "--data", json.dumps(data), "--json")
        assert out.exit_code == 0, out.output
    assert json.loads(run("wizard", "resume", g, user, "--json").output)["state"] == "REVIEW"
    bad = run("wizard", "step", sid, user, "--data", "{}", "--expect", "CHAIN_SELECT")
    assert bad.exit_code == 1 and "not CHAIN_SELECT" in bad.output
    deployed = run("wizard", "deploy", sid, user)
    assert deployed.exit_code == 0 and "deployed: community" in deployed.output and "manifest v1" in deployed.output
    wrong = run("wizard", "show", sid, "99")
    assert wrong.exit_code == 1 and "belongs to someone else" in wrong.output
