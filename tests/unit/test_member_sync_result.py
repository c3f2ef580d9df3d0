"""A member sync's answer is a dataclass; its ``as_dict()`` is the summary ``--json`` prints and
logs show, which must stay what it was when the answer was a dict: the same keys in the same
order, per shape."""

from __future__ import annotations

import json

from arrakis_engine.synthesis.results import MemberSyncResult


def test_each_shape_gives_its_own_keys_in_their_order():
    dry = MemberSyncResult("dry_run", changes=1, strips=0, tier_holders=3, skipped_unknown=2, would_pause=False,
                           members=[{"discord_id": "7", "roles": ["9"], "added": ["9"], "removed": []}])
    done = MemberSyncResult("done", changes=4, strips=0, skipped_unknown=1)
    paused = MemberSyncResult("paused", approval="a1", changes=20, strips=20, tier_holders=20)
    queued = MemberSyncResult("queued", changes=2, jobs=["j1", "j2"], members=["7", "8"], skipped_unknown=0,
                              on_their_way=1)
    assert json.dumps(dry.as_dict()) == (
        '{"status": "dry_run", "changes": 1, "strips": 0, "tier_holders": 3, "skipped_unknown": 2, '
        '"would_pause": false, "members": [{"discord_id": "7", "roles": ["9"], "added": ["9"], "removed": []}]}')
    assert json.dumps(done.as_dict()) == '{"status": "done", "changes": 4, "strips": 0, "skipped_unknown": 1}'
    assert json.dumps(paused.as_dict()) == (
        '{"status": "paused", "approval": "a1", "changes": 20, "strips": 20, "tier_holders": 20}')
    assert json.dumps(queued.as_dict()) == (
        '{"status": "queued", "changes": 2, "jobs": ["j1", "j2"], "members": ["7", "8"], "skipped_unknown": 0, '
        '"on_their_way": 1}')


def test_zero_and_false_stay_in_and_a_community_not_synthesized_yet_answers_as_before():
    assert MemberSyncResult("queued", changes=0, members=[]).as_dict() == {"status": "queued", "changes": 0,
                                                                          "members": []}
    assert MemberSyncResult("done", changes=0, strips=0, skipped_unknown=0).as_dict() == {
        "status": "done", "changes": 0, "strips": 0, "skipped_unknown": 0}
