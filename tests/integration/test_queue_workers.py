"""The synthesis queue with real RQ worker processes, real Redis and PostgreSQL, and the fake
Discord API: idempotency, retries into the dead-letter queue, freeze, a worker killed mid-way."""

from __future__ import annotations

import os
import signal
import time

import pytest

from arrakis_engine.adapters.rq.queue import SynthesisQueue

from tests.fixtures.workers import member_update, sietch, wait_for


@pytest.fixture
def role_create_limit():
    return (3, 1.0)  # slow role creation, so a synthesis is still running when the worker is killed


def test_same_key_twice_runs_once(e, discord, make_community, workers):
    c, g, ids = sietch(e, discord, make_community)
    q = SynthesisQueue(e.redis)
    a = member_update(e, c, ids[0], key="k1")
    payload = a.args[2]
    b = q.enqueue("ASSIGN_ROLE", c.id, payload, key="k1")
    assert a.id == b.id and q.queue(c.id).count == 1
    assert workers("--burst").wait(60) == 0
    assert q.enqueue("ASSIGN_ROLE", c.id, payload, key="k1").get_status() == "finished"  # still once
    assert sum(1 for _, m, p in discord.request_log if m == "PATCH") == 1


def test_synthesis_and_member_jobs_on_two_worker_processes(e, discord, make_community, workers):
    c, g, ids = sietch(e, discord, make_community)
    svc = e.synthesis
    out = svc.synthesize(c.id)
    assert out["status"] == "queued"
    for _ in range(2):
        workers()
    wait_for(lambda: svc.status(c.id).synthesized, 90)
    assert len(g.roles) == 11 and len(g.channels) == 22
    queued = svc.sync_members(c.id)
    assert queued.status == "queued" and queued.changes == 4
    wait_for(lambda: all(g.members[d] for d in ids), 60)
    roles = {r["name"]: r["id"] for r in g.roles.values()}
    assert g.members[ids[1]] == {roles["Naib"]}
    assert discord.count_429 == 0
    # every job taken is off its queue's intermediate list (RQ's maintenance fails jobs left there)
    wait_for(lambda: not e.queue.counts()["running"], 30)
    leftovers = {k: e.redis.llen(k) for k in e.redis.scan_iter("rq:queue:*:intermediate")}
    assert sum(leftovers.values()) == 0, leftovers


@pytest.mark.slow
def test_outage_retries_then_dead_letters_with_nothing_lost(e, discord, make_community, workers):
    c, g, ids = sietch(e, discord, make_community)
    discord.outage(3600, status=503)
    job = member_update(e, c, ids[0], key="outage")
    workers()
    dead = wait_for(lambda: e.queue.dead_letters(), 60)
    assert dead[0]["job_id"] == job.id and dead[0]["type"] == "ASSIGN_ROLE"
    assert dead[0]["args"][2]["discord_id"] == ids[0] and "503" in dead[0]["error"]
    patches = [x for x in discord.request_log if x[1] == "PATCH"]
    assert len(patches) == 4  # the first try and three retries


def test_a_burst_worker_says_what_it_left_for_a_later_try(e, discord, make_community, workers, tmp_path):
    c, g, ids = sietch(e, discord, make_community)
    discord.outage(3600, status=503)
    job = member_update(e, c, ids[0], key="burst-retry")
    assert workers("--burst").wait(60) == 0
    said = (tmp_path / "worker-0.log").read_text()
    assert job.get_status(refresh=True) == "scheduled"  # its retry waits: not lost, not dead-lettered
    assert "1 job(s) wait for a later try or slice and were left for a running worker" in said, said
    assert e.queue.dead_letters() == []


def test_final_errors_are_not_retried(e, discord, make_community, workers):
    c, g, ids = sietch(e, discord, make_community)
    member_update(e, c, "1234", key="gone")
    workers()
    dead = wait_for(lambda: e.queue.dead_letters(), 30)
    assert dead[0]["retryable"] is False and "does not know" in dead[0]["error"]
    assert len([x for x in discord.request_log if x[1] == "PATCH"]) == 1


def test_freeze_holds_jobs_and_unfreeze_resumes(e, discord, make_community, workers):
    c, g, ids = sietch(e, discord, make_community)
    e.freeze.freeze(c.id)
    job = member_update(e, c, ids[0], key="frozen")
    workers()
    wait_for(lambda: e.freeze.waiting(), 30, explain=lambda: job.get_status(refresh=True))
    assert discord.requests == 0 and job.get_status(refresh=True) == "started"  # waiting, not failed
    assert [w["community"] for w in e.freeze.waiting()] == [str(c.id)]
    e.freeze.unfreeze(c.id)
    wait_for(lambda: job.get_status(refresh=True) == "finished", 30)
    assert discord.requests == 1 and e.freeze.waiting() == []


def test_worker_killed_mid_synthesis_resumes_without_duplicates(e, discord, make_community, workers):
    c, g, ids = sietch(e, discord, make_community)
    e.synthesis.synthesize(c.id)
    w = workers()
    wait_for(lambda: len(g.roles) >= 5, 60, 0.02)  # some roles made (3 per second), more to come
    # The console sees the running slice's progress: steps done of those planned, time left.
    running = wait_for(lambda: [j for j in e.operations.community(c.id).running
                                if j["progress"] and j["progress"]["done"]], 30, 0.05)
    progress = running[0]["progress"]
    assert running[0]["type"] == "SYNTHESIZE_COMMUNITY" and 0 < progress["done"] < progress["total"]
    assert progress["eta_seconds"] is not None and progress["eta_seconds"] >= 0
    os.killpg(w.pid, signal.SIGKILL)
    w.wait(10)
    made = len(g.roles) + len(g.channels)
    assert made < 1 + 10 + 22
    workers()  # a new worker finds the abandoned job and runs it again
    wait_for(lambda: e.synthesis.status(c.id).synthesized, 90)
    names = [r["name"] for r in g.roles.values()]
    assert len(names) == len(set(names)) == 11  # @everyone + 10, no duplicates
    assert len(g.channels) == 22
    assert len({(ch["name"], ch["parent_id"]) for ch in g.channels.values()}) == 22
    report = e.reconciler.run(c.id, dry_run=True)
    assert report.actions == []  # the guild matches the manifest exactly


def test_small_community_is_not_starved_by_a_big_one(e, discord, make_community, workers):
    big, gb, _ = sietch(e, discord, make_community, members=0)
    small, gs, _ = sietch(e, discord, make_community, members=0)
    for i in range(300):
        gb.members[str(600_000_000_000_000_000 + i)] = set()
    for i in range(5):
        gs.members[str(610_000_000_000_000_000 + i)] = set()
    from rq import Worker

    workers()
    wait_for(lambda: Worker.all(connection=e.redis), 30)
    for uid in gb.members:
        member_update(e, big, uid, key=uid)
    # the small community's work arrives behind 300 of the big one's
    small_jobs = [member_update(e, small, uid, key=uid) for uid in gs.members]
    wait_for(lambda: all(j.get_status(refresh=True) == "finished" for j in small_jobs), 60, 0.05,
             lambda: [j.get_status(refresh=True) for j in small_jobs] + [e.queue.pending(), e.queue.dead_letters()[:2]])
    # Served in turn, not in arrival order: by the time the small community's five are done, the
    # big one has had about as many (one each per round, a few more while the first arrived), not
    # its 300. Counted in requests, not seconds, so a loaded machine does not change the answer.
    big_sent = sum(1 for _, m, p in discord.request_log if m == "PATCH" and f"/guilds/{big.guild_id}/" in p)
    assert big_sent <= 20, f"the big community sent {big_sent} updates before the small one's 5 were done"
    assert e.queue.queue(big.id).count > 200  # the big one still has most of its work queued


def test_a_live_update_takes_the_guilds_member_route_before_the_bulk_ones(e, discord, make_community, workers):
    """A community's first sync queues an update per member, paced by the guild's member route
    (10 per 10 s); a live change of one member of the same community, queued meanwhile, is sent
    before the bulk updates still waiting: they step aside while it is on its way."""
    c, g, ids = sietch(e, discord, make_community, members=24)
    for d in ids[:-1]:
        member_update(e, c, d, key=f"bulk-{d}")
    for _ in range(2):
        workers()
    patches = lambda: [p for _, m, p in discord.request_log if m == "PATCH"]  # noqa: E731
    wait_for(lambda: len(patches()) >= 10, 60)  # the route's first 10 are spent: the rest wait for it
    before = len(patches())
    member_update(e, c, ids[-1], key="live", first_contact=True)
    wait_for(lambda: any(p.endswith(f"/members/{ids[-1]}") for p in patches()), 60)
    sent = patches()
    at = next(i for i, p in enumerate(sent) if p.endswith(f"/members/{ids[-1]}"))
    # at most one bulk update that already held its turn at the route goes first
    assert at - before <= 1, sent[before:at + 1]
    wait_for(lambda: len(patches()) == len(ids), 90)  # and the bulk ones all follow, none lost
    assert discord.count_429 == 0 and e.queue.dead_letters() == []
    assert not e.redis.exists(f"arrakis:synthesis:live:{c.id}")  # the live mark is gone with its update


@pytest.mark.slow
def test_thirty_communities_on_four_workers_stay_under_discords_global_limit(e, discord, make_community, workers):
    """The strict fake counts every request in any sliding 1-s window where it arrives; with 4
    worker processes sharing the Redis pacing, no window goes over 50 and no 429 comes back."""
    communities = [sietch(e, discord, make_community, members=2) for _ in range(30)]
    for c, _, _ in communities:
        assert e.synthesis.synthesize(c.id)["status"] == "queued"
    for _ in range(4):
        workers()
    wait_for(lambda: all(e.synthesis.status(c.id).synthesized for c, _, _ in communities), 240, 0.5,
             lambda: [e.queue.dead_letters()[:2], _recorded_elsewhere(e, discord, communities)])
    for c, g, ids in communities:
        synced = e.synthesis.sync_members(c.id)
        assert synced.changes == 2, (synced, {d: g.members.get(d) for d in ids},
                                        _recorded_elsewhere(e, discord, communities))
    wait_for(lambda: all(all(g.members[d] for d in ids) for _, g, ids in communities), 120, 0.5)
    assert (discord.count_429, discord.global_429) == (0, 0), discord.stats()
    assert 0 < discord.busiest_window <= 50
    assert discord.requests >= 30 * (2 + 10 + 22 + 2)
    for c, g, _ in communities:
        names = [r["name"] for r in g.roles.values()]
        assert len(names) == len(set(names)) == 11
        explain = (sorted(ch["name"] for ch in g.channels.values()), e.synthesis.status(c.id),
                   _recorded_elsewhere(e, discord, communities))
        assert len({(ch["name"], ch["parent_id"]) for ch in g.channels.values()}) == len(g.channels) == 22, explain
    assert e.queue.dead_letters() == []


def _recorded_elsewhere(e, discord, communities) -> list:
    """Ids a community's shadow state records that its own guild does not hold: in which guild
    of the fake they are, if any (what a failure here needs explained)."""
    from arrakis_engine.storage.synthesis import SynthesisRepository

    where = {oid: gid for gid, g in discord.guilds.items() for oid in [*g.roles, *g.channels]}
    out = []
    for c, g, _ in communities:
        with e.db.tenant(c.id):
            shadow = SynthesisRepository(e.db).latest_shadow()
        for mid, did in (shadow[1] if shadow else {}).items():
            if not mid.startswith("overwrites:") and did not in g.roles and did not in g.channels:
                out.append({"community": str(c.id), "guild": c.guild_id, "item": mid, "id": did,
                            "found_in": where.get(did)})
    return out


def test_jobs_written_into_redis_by_hand_never_run(e, discord, make_community, workers, tmp_path):
    """Someone who can write to Redis cannot run code in a worker, nor have the bot change roles it
    did not decide: jobs are JSON (a pickle is not even read), a worker performs only Arrakis's own
    job function, and a member update must name the community's own server and a decision that was
    made. Each such job is refused and dead-lettered; nothing of it runs."""
    import pickle
    import zlib

    from rq import Queue
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from arrakis_engine.adapters.rq.queue import QUEUES_KEY, queue_name

    c, g, ids = sietch(e, discord, make_community)
    e.synthesis.synthesize(c.id, queued=False)
    assert e.synthesis.sync_members(c.id, queued=False).changes == len(ids)  # every decision applied
    other, og, _ = sietch(e, discord, make_community, members=0)
    e.synthesis.synthesize(other.id, queued=False)
    before = len(discord.request_log)
    roles_before, channels_before = dict(g.roles), dict(g.channels)
    marker = tmp_path / "ran"
    lane = Queue(queue_name(c.id), connection=e.redis, serializer=JSONSerializer)
    e.redis.sadd(QUEUES_KEY, lane.name)
    lane.enqueue("os.system", f"touch {marker}", job_id="forged-function")
    pickled = e.queue.enqueue("ASSIGN_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": ids[0], "roles": []},
                              key="forged-pickle")

    class Touch:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    e.redis.hset(Job.key_for(pickled.id), "data", zlib.compress(pickle.dumps(Touch())))
    e.queue.enqueue("ASSIGN_ROLE", c.id, {"guild_id": "1234567890123456789", "discord_id": ids[1], "roles": []},
                    key="forged-guild")
    e.queue.enqueue("ASSIGN_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": ids[2], "roles": ["1"], "seq": 7},
                    key="forged-decision")
    # a member whose decision was delivered, given every role of the server by an update naming
    # no decision (or a number that is not one)
    everything = sorted(g.roles)
    e.queue.enqueue("ASSIGN_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": ids[3], "roles": everything},
                    key="forged-unnumbered")
    e.queue.enqueue("ASSIGN_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": ids[3], "roles": everything,
                                          "seq": "99"}, key="forged-text-number")
    # structure and messages: a delete of the community's own role, an update of another server's
    # role, a message to another server's channel
    own_role = next(r for r, v in g.roles.items() if v["name"] != "@everyone")  # one the synthesis made
    e.queue.enqueue("DELETE_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": own_role, "version": 1,
                                          "manifest_id": "role:naib"}, key="forged-delete")
    e.queue.enqueue("UPDATE_ROLE", c.id, {"guild_id": other.guild_id, "discord_id": next(iter(og.roles)),
                                          "changes": {"name": "owned"}}, key="forged-update")
    e.queue.enqueue("UPDATE_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": own_role,
                                          "changes": {"permissions": str(1 << 3)}}, key="forged-admin")
    e.queue.enqueue("SEND_MESSAGE", c.id, {"channel_id": next(iter(og.channels)), "content": "@everyone free mint"},
                    key="forged-message")
    assert workers("--burst").wait(60) == 0
    dead = {d["job_id"]: d["error"] for d in e.queue.dead_letters()}
    assert "names 'os.system'" in dead["forged-function"]
    assert "not JSON" in dead[pickled.id]
    assert "not the community's own" in dead["ASSIGN_ROLE-forged-guild"]
    assert "never made" in dead["ASSIGN_ROLE-forged-decision"]
    assert "names no decision" in dead["ASSIGN_ROLE-forged-unnumbered"]
    assert "names no decision" in dead["ASSIGN_ROLE-forged-text-number"]
    assert "deletes run only inside an approved reconcile" in dead["DELETE_ROLE-forged-delete"]
    assert "not the community's own" in dead["UPDATE_ROLE-forged-update"]
    assert "not a change the community's plan asks for" in dead["UPDATE_ROLE-forged-admin"]
    assert "Arrakis queues none" in dead["SEND_MESSAGE-forged-message"]
    assert not marker.exists()
    assert discord.request_log[before:] == [] or all(m == "GET" for _, m, _ in discord.request_log[before:]), \
        discord.request_log[before:]  # nothing was changed or posted anywhere
    assert g.roles == roles_before and g.channels == channels_before
    # an update the plan does ask for (a role renamed by hand in Discord) still runs from the queue
    renamed = g.roles[own_role]["name"]
    g.roles[own_role]["name"] = "renamed by hand"
    fix = next(a for a in e.reconciler.plan(c.id)[0] if a.op == "update" and a.discord_id == own_role)
    e.queue.enqueue("UPDATE_ROLE", c.id, {"guild_id": c.guild_id, "discord_id": own_role, "changes": fix.changes,
                                          "manifest_id": fix.manifest_id}, key="planned-update")
    assert workers("--burst").wait(60) == 0
    assert g.roles[own_role]["name"] == renamed
    # a synthesis of an older version than the one in the guild would roll it back: skipped
    with e.db.tenant(c.id):
        e.repos.profiles.create(discord_id=str(700_000_000_000_000_999))
    e.synthesis.synthesize(c.id, queued=False)
    applied = e.synthesizer.applied_version(c.id)
    assert applied is not None and applied > 1
    old = e.queue.enqueue("SYNTHESIZE_COMMUNITY", c.id, {"version": 1, "part": 0}, key="forged-old-version")
    before = len(discord.request_log)
    assert workers("--burst").wait(60) == 0
    assert old.return_value(refresh=True)["status"] == "superseded"
    assert discord.request_log[before:] == []
    assert sum(e.redis.llen(k) for k in e.redis.scan_iter("rq:queue:*:intermediate")) == 0


def test_live_updates_that_wait_for_the_route_keep_their_turn(e, discord, make_community, workers):
    """The guild's member route takes 10 updates per 10 s. Of 12 live updates queued at once, 2
    wait for it; 10 more queued 3 s later wait as well. When the route frees up, the 2 earlier
    ones go first: coming back from a wait never costs an update its turn. (The earlier ones are
    the members with the higher ids, so that no order of ids or keys puts them first by chance.)"""
    c, g, ids = sietch(e, discord, make_community, members=22)
    early, late = ids[10:], ids[:10]
    for _ in range(2):
        workers()
    patches = lambda: [p.rsplit("/", 1)[1] for _, m, p in discord.request_log if m == "PATCH"]  # noqa: E731
    for d in early:
        member_update(e, c, d, key=f"early-{d}", first_contact=True)
    wait_for(lambda: len(patches()) >= 10, 60)
    time.sleep(3)
    for d in late:
        member_update(e, c, d, key=f"late-{d}", first_contact=True)
    wait_for(lambda: len(patches()) == 22, 90, explain=patches)
    sent = patches()
    assert set(sent[:12]) == set(early), sent  # the two that waited went before every later one
    assert discord.count_429 == 0 and e.queue.dead_letters() == []
