"""A wizard session's JSON: what the previous release stored loads and is written back byte for byte."""

import json

from arrakis_engine.domain.wizard_session import WizardSession

# As the previous release stored them (json.dumps of the session dict), at INIT and after REVIEW.
AT_INIT = ('{"id": "0123456789abcdef0123456789abcdef", "guild_id": "123456789012345678", "user_id": "42", '
           '"community_name": "Community 123456789012345678", "state": "INIT", "data": {}, "revision": 0, '
           '"applied": [], "warnings": [], "deploy": null, "error": null, "created_at": 1700000000.5, '
           '"updated_at": 1700000000.5}')
DEPLOYED = ('{"id": "0123456789abcdef0123456789abcdef", "guild_id": "123456789012345678", "user_id": "42", '
            '"community_name": "Dunes", "state": "COMPLETE", "data": {"chain": {"chain": "berachain"}, '
            '"assets": {"assets": [{"kind": "native"}]}, "rules": {"template": "basic"}, '
            '"roles": {"roles": {"Gold": "create"}}, "channels": {"channel_template": "none"}}, "revision": 9, '
            '"applied": ["a", "deploy-0123456789abcdef0123456789abcdef"], "warnings": ["no channels will be created"], '
            '"deploy": {"community_id": "c1", "manifest_version": 1, "job_id": "j1", "updated_existing": false, '
            '"assets": {"added": ["x"], "kept": [], "replaced": []}}, "error": null, "created_at": 1700000000, '
            '"updated_at": 1700000100, "existing_community": null}')


def test_a_stored_session_loads_and_is_written_back_unchanged():
    for raw in (AT_INIT, DEPLOYED):
        session = WizardSession.from_json(raw)
        assert session.to_json() == raw
        assert json.dumps(session.as_dict()) == raw


def test_the_fields_read_what_was_stored():
    s = WizardSession.from_json(DEPLOYED)
    assert (s.id, s.guild_id, s.user_id, s.state, s.revision) == (
        "0123456789abcdef0123456789abcdef", "123456789012345678", "42", "COMPLETE", 9)
    assert s.deploy["community_id"] == "c1" and s.data["chain"] == {"chain": "berachain"}
    assert s.reviewed and s.existing_community is None and s.terminal
    assert not WizardSession.from_json(AT_INIT).reviewed


def test_existing_is_answered_but_never_stored():
    s = WizardSession.from_json(AT_INIT).copy(existing=True)
    assert s.as_dict()["existing"] is True and list(s.as_dict())[-1] == "existing"
    assert s.to_json() == AT_INIT


def test_a_key_this_release_does_not_know_is_kept():
    raw = AT_INIT[:-1] + ', "later": {"x": 1}}'
    assert WizardSession.from_json(raw).to_json() == raw
