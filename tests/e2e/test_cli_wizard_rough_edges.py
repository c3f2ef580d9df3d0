"""The wizard through the real CLI where an operator met rough edges: updating a server that
already has a community (and a rank asset), the tiers to map at ROLE_MAPPING, what a deploy says
about its synthesis, abandoning a deployed session, and bad names echoed in full."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_cli_new_operator import _to_review, community, one_error_line, snowflake

TOKEN = "0x" + "ab" * 20



@pytest.fixture(autouse=True)
def no_jobs_left(engine):
    """Deploys and queued syntheses here have no worker: their jobs go when the test ends, so a
    later test's worker does not run them."""
    yield
    engine.redis.flushdb()

def test_update_existing_replaces_the_rank_asset_and_is_audited(run, engine):
    guild, user = snowflake(), "44"
    cid = community(run, name="Ranked Already", guild=guild)
    added = run("eligibility", "add-asset", cid, "--chain", "berachain", "--kind", "erc20", "--address", TOKEN)
    assert added.exit_code == 0, added.output
    sid = _to_review(run, guild, user, name="Another Name")  # ranks by the native coin
    refused = run("wizard", "deploy", sid, user)
    assert refused.exit_code == 1
    assert "--update-existing" in one_error_line(refused)
    done = run("wizard", "deploy", sid, user, "--update-existing")
    assert done.exit_code == 0, done.output
    assert f"deployed: community {cid}" in done.stdout
    assert "updated the existing community: assets added berachain:native:native; replaced berachain:erc20:" in done.stdout
    assert "synthesis waits on the queue for a worker: none is running" in done.stdout
    with engine.db.tenant(cid):
        assets = [(a.kind, p) for a, p, _ in engine.eligibility.assets.all()]
        entry = [x for x in engine.repos.audit.entries(cid, limit=20) if x.action == "wizard.deployed"][0]
    assert assets == [("native", "rank")]
    assert entry.payload["updated_existing"] is True
    assert entry.payload["assets"]["replaced"] == [f"berachain:erc20:{TOKEN}"]
    # The same again keeps the asset: nothing replaced.
    sid = _to_review(run, guild, "45", name="Again")
    again = run("wizard", "deploy", sid, "45", "--update-existing", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["deploy"]["assets"] == {"added": [], "kept": ["berachain:native:native"],
                                                            "replaced": []}


def test_role_mapping_lists_every_tier_at_once(run):
    guild, user = snowflake(), "46"
    sid = json.loads(run("wizard", "start", guild, user, "--json").stdout)["id"]
    for data in ({}, {"chain": "berachain"}, {"assets": [{"kind": "native"}]}, {"template": "basic"}):
        assert run("wizard", "step", sid, user, "--data", json.dumps(data)).exit_code == 0
    shown = run("wizard", "show", sid, user)
    assert "ROLE_MAPPING" in shown.stdout and "tiers to map: Gold, Silver, Bronze" in shown.stdout
    partial = run("wizard", "step", sid, user, "--data", json.dumps({"roles": {"Gold": "create"}}))
    assert partial.exit_code != 0 and "tiers Silver, Bronze are not mapped" in one_error_line(partial)


def test_abandon_of_a_deployed_session_is_refused(run):
    guild, user = snowflake(), "47"
    sid = _to_review(run, guild, user)
    assert run("wizard", "deploy", sid, user).exit_code == 0
    refused = run("wizard", "abandon", sid, user)
    assert refused.exit_code == 1 and "this session was deployed" in one_error_line(refused)
    assert json.loads(run("wizard", "show", sid, user, "--json").stdout)["state"] == "COMPLETE"


def test_a_bad_channel_name_is_named_and_a_long_one_cut(run):
    guild, user = snowflake(), "48"
    sid = json.loads(run("wizard", "start", guild, user, "--json").stdout)["id"]
    for data in ({}, {"chain": "berachain"}, {"assets": [{"kind": "native"}]}, {"template": "basic"},
                 {"roles": {"Gold": "create", "Silver": "create", "Bronze": "create"}}):
        assert run("wizard", "step", sid, user, "--data", json.dumps(data)).exit_code == 0
    bad = {"channel_template": "custom", "categories": [{"name": "Holders", "channels": ["general", "Alpha Chat"]}]}
    out = run("wizard", "step", sid, user, "--data", json.dumps(bad))
    assert "channel 'Alpha Chat' in category 'Holders' is not a channel name" in one_error_line(out)
    long = {"channel_template": "custom", "categories": [{"name": "Holders", "channels": ["X" * 300]}]}
    line = one_error_line(run("wizard", "step", sid, user, "--data", json.dumps(long)))
    assert "X" * 300 not in line and "X" * 39 + "…" in line


def test_a_300_character_bad_value_is_not_echoed_whole(run):
    for args in (["themes", "show", "n" * 300], ["community", "create", "--name", "X", "--guild-id",
                                                  "123456789012349999", "--theme", "t" * 300],
                 ["watcher", "--chain", "c" * 300]):
        out = run(*args)
        assert out.exit_code == 2, (args, out.output)
        line = one_error_line(out)
        assert len(line) < 250 and "…" in line, line


def test_eligibility_sync_without_an_endpoint_says_which_chain_and_exits_1(run, tmp_path):
    cid = community(run, name="No Endpoint")
    rows = "".join(f"{700000000000000000 + i},0x{i + 1:040x}\n" for i in range(4))
    (tmp_path / "w.csv").write_text("discord_id,wallet_address\n" + rows)
    assert run("wallets", "import", cid, str(tmp_path / "w.csv")).exit_code == 0
    assert run("eligibility", "add-asset", cid, "--chain", "berachain", "--kind", "native").exit_code == 0
    text = run("eligibility", "sync", cid)
    assert text.exit_code == 1, text.output
    assert "4 unknown" in text.stdout
    assert "no RPC endpoint is configured for berachain: set RPC_URLS_BERACHAIN" in text.stdout
    assert "nothing could be read" in text.stdout
    assert text.stderr.strip() == "", text.stderr  # no progress bar left behind
    as_json = run("eligibility", "sync", cid, "--json")
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert data["no_endpoint"] == ["berachain"] and data["nothing_read"] is True
    assert "RPC_URLS_BERACHAIN" in data["problems"][0]
