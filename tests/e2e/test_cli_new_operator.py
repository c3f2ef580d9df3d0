"""What a new operator hits first, through the real CLI on real PostgreSQL and Redis: bad input is
refused with one plain line and a non-zero exit, partial work says so in its exit status, and
nothing prints a library's raw words (a foreign-key message, an enum's repr, a traceback)."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from arrakis_engine.themes import THEMES
from tests.fixtures.legacy_sqlite import build_legacy_db



def snowflake() -> str:
    return str(10**18 + uuid.uuid4().int % (9 * 10**18))


def one_error_line(result) -> str:
    """The error a command printed: exactly one line, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


def community(run, **kw) -> str:
    args = ["community", "create", "--name", kw.get("name", "Ops"), "--guild-id", kw.get("guild", snowflake()),
            "--json"]
    if "theme" in kw:
        args += ["--theme", kw["theme"], "--subscription", "premium"]
    out = run(*args)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)["id"]


@pytest.mark.parametrize("guild", ["abc123", "12345678901234567a", "1234", "99999999999999999999",
                                   " 123456789012345678 x"])
def test_community_create_refuses_guild_ids_that_are_not_snowflakes(run, guild):
    out = run("community", "create", "--name", "X", "--guild-id", guild)
    assert out.exit_code == 2
    line = one_error_line(out)
    assert "is not a Discord server id: it must be 17 to 20 digits" in line and "sandbox uses the same shape" in line


@pytest.mark.parametrize("name, message", [("a\nb", "one line of plain text"), ("tab\there", "one line"),
                                           ("", "1 to 100 characters"), ("x" * 101, "1 to 100 characters")])
def test_community_create_refuses_names_that_break_rows(run, name, message):
    out = run("community", "create", "--name", name, "--guild-id", snowflake())
    assert out.exit_code == 2 and message in one_error_line(out)


def test_wizard_start_checks_the_same_way(run):
    out = run("wizard", "start", "abc123", "42")
    assert out.exit_code == 2 and "not a Discord server id" in one_error_line(out)
    out = run("wizard", "start", snowflake(), "42", "--name", "two\nlines")
    assert out.exit_code == 2 and "one line of plain text" in one_error_line(out)


def test_wallets_import_exit_status_and_counts(run, tmp_path):
    cid = community(run)
    w = [f"0x{i:040x}" for i in range(1, 5)]
    csv_file = tmp_path / "w.csv"
    csv_file.write_text("discord_id,wallet_address\n"
                        f"100000000000000001,{w[0]}\n"
                        f"100000000000000001,{w[0]}\n"          # the same line again
                        "100000000000000002\n"                   # a column missing
                        f"100000000000000003,{w[2]},extra\n"    # one too many
                        "\n"
                        f"100000000000000004,{w[3]}\n")
    out = run("wallets", "import", cid, str(csv_file))
    assert out.exit_code == 3, out.output
    assert out.stdout.splitlines()[0] == ("linked 2 wallet(s); 1 repeated line(s) skipped; 2 row(s) refused, fix "
                                          "them and import again (linked rows stay linked)")
    assert "line 4: has 1 field(s) where the header has 2 (discord_id, wallet_address)" in out.stdout
    assert "line 5: has 3 field(s) where the header has 2" in out.stdout
    assert "wallet address" not in out.stdout  # a missing column is not reported as a bad address
    again = run("wallets", "import", cid, str(csv_file), "--json")
    assert again.exit_code == 3
    assert {k: v for k, v in json.loads(again.stdout).items() if k != "errors"} == {
        "linked": 0, "unchanged": 2, "repeated": 1}
    clean = tmp_path / "clean.csv"
    clean.write_text(f"discord_id,wallet_address\n100000000000000009,{w[1]}\n")
    assert run("wallets", "import", cid, str(clean)).exit_code == 0


def test_wallets_import_into_an_unknown_community(run, tmp_path):
    csv_file = tmp_path / "w.csv"
    csv_file.write_text(f"discord_id,wallet_address\n100000000000000001,0x{1:040x}\n")
    missing = str(uuid.uuid4())
    out = run("wallets", "import", missing, str(csv_file))
    assert out.exit_code == 1
    line = one_error_line(out)
    assert f"no community {missing}" in line and "foreign key" not in line and "violates" not in line


def test_synthesize_an_unknown_community_or_a_queued_run(run):
    missing = str(uuid.uuid4())
    out = run("synthesize", missing, "--dry-run")
    assert out.exit_code == 1 and f"no community {missing}" in one_error_line(out)
    cid = community(run)
    fresh = run("synthesize", cid, "--dry-run")
    assert fresh.exit_code == 0 and "no manifest yet" in fresh.stdout
    queued = run("synthesize", cid, extra_env={"DISCORD_API_BASE": "", "DISCORD_BOT_TOKEN": ""})
    assert queued.exit_code == 0, queued.output
    assert queued.stdout.strip().endswith("is queued") and "JobStatus" not in queued.output


def test_migrate_sqlite_fails_before_drawing_a_bar(run, tmp_path):
    cid = community(run, theme="sietch")
    missing = run("migrate", "sqlite", str(tmp_path / "nope.db"), "--community", cid)
    assert missing.exit_code == 1 and "nope.db" in one_error_line(missing)
    source = build_legacy_db(tmp_path / "profiles.db", members=2)
    bad = run("migrate", "sqlite", str(source), "--community", "not-a-uuid")
    assert bad.exit_code == 2 and "not a valid UUID" in one_error_line(bad)
    done = run("migrate", "sqlite", str(source), "--community", cid)
    assert done.exit_code == 0 and "imported 2 profiles" in done.stdout


def _to_review(run, guild: str, user: str, template: str = "basic", name: str = "Wizard Made") -> str:
    sid = json.loads(run("wizard", "start", guild, user, "--name", name, "--json").stdout)["id"]
    steps = [{}, {"chain": "berachain"}, {"assets": [{"kind": "native"}]}, {"template": template},
             {"roles": dict.fromkeys(THEMES["sietch" if template == "sietch" else "basic"].tier_names, "create")},
             {"channel_template": "basic"}]
    for data in steps:
        out = run("wizard", "step", sid, user, "--data", json.dumps(data))
        assert out.exit_code == 0, out.output
    return sid


def test_wizard_review_shows_the_summary_and_a_failed_deploy_exits_1(run):
    guild, user = snowflake(), "42"
    sid = _to_review(run, guild, user, template="sietch")
    shown = run("wizard", "show", sid, user)
    assert shown.exit_code == 0
    assert "chain: berachain" in shown.stdout and "asset 1: native (ranks members)" in shown.stdout
    assert "tiers: the sietch template" in shown.stdout and "channels: the basic template" in shown.stdout
    assert "warning: the Sietch template needs a premium subscription" in shown.stdout
    failed = run("wizard", "deploy", sid, user)
    assert failed.exit_code == 1 and "FAILED" in failed.stdout and "premium" in failed.stdout
    listed = json.loads(run("community", "list", "--json").stdout)
    assert not [c for c in listed if c["guild_id"] == guild]  # nothing was written before the plan was checked


def test_wizard_on_a_guild_that_has_a_community_asks_first(run):
    guild, user = snowflake(), "43"
    cid = community(run, name="Already Here", guild=guild)
    sid = _to_review(run, guild, user, name="Another Name")
    shown = run("wizard", "show", sid, user)
    assert "already has 'Already Here'" in shown.stdout and "keeps its name" in shown.stdout
    assert "must be confirmed" in shown.stdout
    refused = run("wizard", "deploy", sid, user)
    assert refused.exit_code == 1
    line = one_error_line(refused)
    assert f"already has the community 'Already Here' ({cid})" in line and "update-existing" in line
    assert json.loads(run("wizard", "show", sid, user, "--json").stdout)["state"] == "REVIEW"  # still asks
    done = run("wizard", "deploy", sid, user, "--update-existing")
    assert done.exit_code == 0 and f"deployed: community {cid}" in done.stdout
    names = [c["name"] for c in json.loads(run("community", "list", "--json").stdout) if c["id"] == cid]
    assert names == ["Already Here"]


def test_wizard_help_documents_each_steps_data(run):
    text = CliRunner().invoke(cli, ["wizard", "step", "--help"]).output
    for state in ("CHAIN_SELECT", "ASSET_CONFIG", "ELIGIBILITY_RULES", "ROLE_MAPPING", "CHANNEL_STRUCTURE"):
        assert state in text
    assert '{"chain": "berachain"}' in text and '"channel_template"' in text
    for command in ("show", "abandon", "back", "resume", "deploy"):
        assert CliRunner().invoke(cli, ["wizard", command, "--help"]).output.count("\n") > 5
        listed = CliRunner().invoke(cli, ["wizard", "--help"]).output
        assert [line for line in listed.splitlines() if line.strip().startswith(command + " ")][0].split(None, 1)[1]


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/x", "postgresql://postgres@127.0.0.1:5432/nope_db"])
def test_a_bad_database_url_is_one_line(run, url):
    out = run("community", "list", extra_env={"DATABASE_URL": url})
    assert out.exit_code == 1
    assert "could not connect to PostgreSQL" in one_error_line(out)


def test_a_failing_job_is_one_line_and_status_shows_retries_and_dead_letters(run, engine, database_url,
                                                                             redis_url, tmp_path):
    import subprocess
    import sys

    from arrakis_engine.adapters.rq.queue import DLQ_KEY

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DISCORD_")}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path)})
    gone = str(uuid.uuid4())  # a guild the (sandbox) Discord does not know: the job fails for good at once
    later = engine.queue.enqueue("ASSIGN_ROLE", gone, {"guild_id": snowflake(), "discord_id": "1", "roles": []},
                                 key=f"later-{gone}", delay=600)  # a job waiting to be tried later
    dead_before = engine.queue.dead_letter_count()
    try:
        for debug in ([], ["--debug"]):
            engine.queue.enqueue("ASSIGN_ROLE", gone, {"guild_id": snowflake(), "discord_id": "1", "roles": []},
                                 key=f"now-{gone}-{bool(debug)}")
            worker = subprocess.run([sys.executable, "-m", "arrakis_engine.cli", *debug, "worker", "--burst"],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert worker.returncode == 0, worker.stderr
            failed = [line for line in worker.stderr.splitlines() if "dead-lettered" in line]
            assert len(failed) == 1 and "no community" in failed[0], failed  # refused before any call
            assert ("Traceback" in worker.stderr) == bool(debug)
        status = json.loads(run("status", "--json").stdout)["health"]
        items = {i["name"]: i["detail"] for i in status["items"]}
        assert "1 to retry later" in items["queue"]
        assert items["dead letters"] == f"{dead_before + 2} jobs (arrakis dlq list)"
        assert "1 to retry later" in run("status").stdout
    finally:
        later.delete()
        for entry in engine.redis.lrange(DLQ_KEY, 0, -1):
            if gone in entry.decode():
                engine.redis.lrem(DLQ_KEY, 1, entry)


def test_community_list_never_cuts_an_id(run):
    cid = community(run, name="A rather long community name for a narrow terminal")
    table = run("community", "list")  # not a terminal: rich assumes 80 columns
    row = [line for line in table.stdout.splitlines() if cid in line]
    assert row and "A rather long community name for a narrow terminal" in row[0]
