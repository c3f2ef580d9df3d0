"""The kill switch's authorisation matrix: every scope against every kind of actor, including a
community admin reaching for another community and a member reaching for another member."""

from __future__ import annotations

import pytest

from arrakis_engine.security.authz import Actor, may_kill, may_manage_operators, may_rotate_keys

A, B = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
ME, OTHER = "100000000000000001", "100000000000000002"

ACTORS = {
    "platform_admin": Actor(operator="ada", roles=frozenset({"platform_admin"})),
    "approver": Actor(operator="bob", roles=frozenset({"approver"})),
    "auditor": Actor(operator="cy", roles=frozenset({"auditor"})),
    "admin_of_A": Actor(discord_user_id="100000000000000009", admin_of=frozenset({A})),
    "member_ME": Actor(discord_user_id=ME),
    "nobody": Actor(),
}

# (actor, scope, community, user, the user's communities) -> allowed
CASES = [
    ("platform_admin", "global", None, None, (), True),
    ("platform_admin", "community", B, None, (), True),
    ("platform_admin", "user", None, OTHER, (), True),
    ("approver", "global", None, None, (), False),
    ("approver", "community", A, None, (), False),
    ("approver", "user", None, OTHER, (A,), False),
    ("auditor", "global", None, None, (), False),
    ("auditor", "community", A, None, (), False),
    ("auditor", "user", None, OTHER, (A,), False),
    ("admin_of_A", "global", None, None, (), False),
    ("admin_of_A", "community", A, None, (), True),
    ("admin_of_A", "community", B, None, (), False),  # another community
    ("admin_of_A", "user", None, OTHER, (A,), True),  # a member of their community
    ("admin_of_A", "user", None, OTHER, (B,), False),  # a member of another community only
    ("member_ME", "global", None, None, (), False),
    ("member_ME", "community", A, None, (), False),
    ("member_ME", "user", None, ME, (A,), True),  # themself
    ("member_ME", "user", None, OTHER, (A,), False),  # another member
    ("nobody", "global", None, None, (), False),
    ("nobody", "community", A, None, (), False),
    ("nobody", "user", None, ME, (A,), False),
    ("admin_of_A", "everything", None, None, (), False),  # an unknown scope is refused
]


@pytest.mark.parametrize("who,scope,community,user,user_communities,allowed", CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_kill_switch_matrix(who, scope, community, user, user_communities, allowed):
    decision = may_kill(ACTORS[who], scope, community_id=community, user_id=user,
                        user_communities=frozenset(user_communities))
    assert decision.allowed is allowed, decision.reason
    assert decision.reason  # always a reason in plain words


def test_every_scope_and_actor_is_covered():
    assert {(c[0], c[1]) for c in CASES} >= {(a, s) for a in ACTORS for s in ("global", "community", "user")}


@pytest.mark.parametrize("who", list(ACTORS))
def test_only_platform_admins_manage_operators_and_keys(who):
    expected = who == "platform_admin"
    assert may_manage_operators(ACTORS[who]).allowed is expected
    assert may_rotate_keys(ACTORS[who]).allowed is expected
