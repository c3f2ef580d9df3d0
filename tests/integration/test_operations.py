"""Operator read models (fleet, health, community detail, drift) on real PostgreSQL and Redis,
with the fake Discord API where Discord is read."""

from __future__ import annotations

from tests.integration.test_synthesis import community_with_members


def entry(ops, cid):
    return next(f for f in ops.fleet() if f.id == cid)


def test_fleet_columns_follow_sync_synthesis_and_drift(e, discord, make_community):
    c, g, ids = community_with_members(e, discord, make_community)
    ops = e.operations
    first = entry(ops, c.id)
    assert (first.members, first.last_sync, first.last_synthesis, first.drift) == (5, None, None, "no plan yet")

    with e.db.tenant(c.id):
        e.repos.audit.append("sync", "eligibility.synced", {"members": 5})
    e.manifests.publish(c.id, actor="t")
    published = entry(ops, c.id)
    assert published.last_sync is not None and published.drift == "not synthesized"

    e.synthesis.synthesize(c.id, queued=False)
    done = entry(ops, c.id)
    assert done.last_synthesis is not None and done.shadow_status == "applied"
    assert done.drift == "not checked"  # Discord itself was not looked at yet

    assert ops.drift(c.id).status == "in sync"
    assert entry(ops, c.id).drift == "in sync"
    naib = next(r for r in g.roles.values() if r["name"] == "Naib")
    del g.roles[naib["id"]]  # deleted by hand in Discord
    report = ops.drift(c.id)
    assert report.status == "high" and any(i.problem == "deleted outside Arrakis" for i in report.items)
    assert entry(ops, c.id).drift == "high"


def test_health_reports_every_part_in_plain_words(e, discord):
    h = e.operations.health(minutes=2, step=10)
    names = {i.name: i for i in h.items}
    assert names["postgresql"].state == names["redis"].state == "ok"
    assert names["rpc"].state == "off" and names["score service"].state == "off"
    assert names["shadow store"].state in {"ok", "degraded"} and "local folder" in names["shadow store"].detail
    assert names["queue"].detail == "0 queued, 0 to retry later, 0 running" and names["dead letters"].detail == "0 jobs"
    assert len(h.bucket_use) == len(h.rate_limited) == 12

    discord.guild("300000000000000001")
    e.discord.list_roles("300000000000000001")
    e.bucket.record_rate_limited()
    h = e.operations.health(minutes=2, step=10)
    assert sum(h.bucket_use) >= 1 and sum(h.rate_limited) == 1 and h.bucket_use[-1] + h.bucket_use[-2] >= 1


def test_health_names_a_dead_rpc_endpoint_and_an_unreachable_store(e, anvil):
    from dataclasses import replace

    from arrakis_engine.bootstrap import build_engine

    eng = build_engine(replace(e.settings, rpc_urls={"berachain": [anvil.url, "http://127.0.0.1:9/"]},
                               s3_endpoint="127.0.0.1:9", s3_access_key="k", s3_secret_key="s", s3_bucket="b"))
    try:
        items = {i.name: i for i in eng.operations.health(rpc_timeout=1).items}
    finally:
        eng.close()
    assert items["rpc berachain"].state == "degraded" and items["rpc berachain"].detail.startswith("1/2")
    assert items["shadow store"].state == "down" and "S3 unreachable" in items["shadow store"].detail
    assert "k" not in items["shadow store"].detail.split() and "s" not in items["shadow store"].detail.split()


def test_community_detail(e, discord, make_community):
    c, g, ids = community_with_members(e, discord, make_community)
    with e.db.tenant(c.id):
        p = e.repos.profiles.by_discord_id(ids[0])
        e.repos.tier_history.record(p.id, from_tier="Fedaykin", to_tier="Naib", rank=1)
        e.repos.badges.award(p.id, "water_sharer")
        e.repos.audit.append("sync", "eligibility.synced", {"members": 5, "promoted": 1, "demoted": 0})
    e.synthesis.synthesize(c.id, queued=False)
    d = e.operations.community(c.id)
    tiers = {t.tier: t.members for t in d.tiers}
    assert d.members == 5 and tiers["Naib"] == 1 and tiers["Fedaykin"] == 1 and tiers["(no tier)"] == 0
    assert [t.tier for t in d.tiers][:2] == ["Naib", "Fedaykin"]  # in the theme's order
    assert d.badges == {"water_sharer": 1}
    assert d.recent_changes[0].discord_id == ids[0] and d.recent_changes[0].to_tier == "Naib"
    assert [m.version for m in d.manifests] == [1] and d.manifests[0].synthesized == "applied"
    assert d.last_diff["promoted"] == 1 and d.last_diff_by == "sync"
