"""Property test: random operations across several communities never move a row across tenants.

A model of what each community should hold is kept beside the real database; after every step,
each community (as arrakis_app under RLS) must see exactly its model and nothing else.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from arrakis_engine.errors import Conflict, NotFound

_ids = itertools.count(10**15)


def test_random_operations_never_cross_tenants(engine, make_community):
    tenants = [make_community().id for _ in range(3)]
    pick_tenant = st.sampled_from(tenants)
    wallets = itertools.count(1)

    class Isolation(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            # Start each example from empty communities.
            for t in tenants:
                with engine.db.tenant(t) as tx:
                    tx.execute("DELETE FROM badges")
                    tx.execute("DELETE FROM wallet_links")
                    tx.execute("DELETE FROM profiles")
            self.profiles: dict = {t: {} for t in tenants}  # tenant -> {profile id: discord id}
            self.badges: dict = {t: set() for t in tenants}  # tenant -> {(profile id, badge type)}
            self.wallets: dict = {t: set() for t in tenants}
            self.owner: dict = {}  # profile id -> tenant
            self.created: list = []  # profile ids in creation order, so replays pick the same ones

        def _any_profile(self, data):
            everyone = [p for p in self.created if p in self.owner]
            return data.draw(st.sampled_from(everyone)) if everyone else None

        @rule(t=pick_tenant)
        def create_profile(self, t):
            discord_id = str(next(_ids))
            with engine.db.tenant(t):
                p = engine.repos.profiles.create(discord_id=discord_id)
            self.profiles[t][p.id] = discord_id
            self.owner[p.id] = t
            self.created.append(p.id)

        @rule(t=pick_tenant, data=st.data(), rank=st.integers(1, 500))
        def update_any_profile(self, t, data, rank):
            pid = self._any_profile(data)
            if pid is None:
                return
            try:
                with engine.db.tenant(t):
                    engine.repos.profiles.update_standing(pid, tier="Gold", rank=rank)
                assert self.owner[pid] == t, "updated another community's member"
            except NotFound:
                assert self.owner[pid] != t

        @rule(t=pick_tenant, data=st.data(), badge=st.sampled_from(["early_adopter", "veteran", "active"]))
        def award_to_any_profile(self, t, data, badge):
            pid = self._any_profile(data)
            if pid is None:
                return
            try:
                with engine.db.tenant(t):
                    engine.repos.badges.award(pid, badge)
                assert self.owner[pid] == t, "awarded a badge to another community's member"
                self.badges[t].add((pid, badge))
            except Conflict:
                assert (pid, badge) in self.badges[t]
            except NotFound:
                assert self.owner[pid] != t

        @rule(t=pick_tenant, data=st.data())
        def link_wallet_to_any_profile(self, t, data):
            pid = self._any_profile(data)
            if pid is None:
                return
            wallet = f"0x{next(wallets):040x}"
            try:
                with engine.db.tenant(t):
                    engine.repos.wallets.link(pid, wallet)
                assert self.owner[pid] == t
                self.wallets[t].add((pid, wallet))
            except NotFound:
                assert self.owner[pid] != t

        @rule(t=pick_tenant, data=st.data())
        def delete_any_profile(self, t, data):
            pid = self._any_profile(data)
            if pid is None:
                return
            with engine.db.tenant(t):
                deleted = engine.repos.profiles.delete(pid)
            assert deleted == (self.owner[pid] == t)
            if deleted:
                del self.profiles[t][pid]
                del self.owner[pid]
                self.badges[t] = {b for b in self.badges[t] if b[0] != pid}
                self.wallets[t] = {w for w in self.wallets[t] if w[0] != pid}

        @rule(t=pick_tenant)
        def read_everything_unfiltered(self, t):
            with engine.db.tenant(t) as tx:
                for table in ("profiles", "badges", "wallet_links"):
                    assert {r["community_id"] for r in tx.all(f"SELECT community_id FROM {table}")} <= {t}

        @invariant()
        def each_tenant_sees_exactly_its_model(self):
            for t in tenants:
                with engine.db.tenant(t) as tx:
                    seen = {r["id"]: r["discord_id"] for r in tx.all("SELECT id, discord_id FROM profiles")}
                    assert seen == self.profiles[t]
                    badges = {(r["profile_id"], r["badge_type"])
                              for r in tx.all("SELECT profile_id, badge_type FROM badges")}
                    assert badges == self.badges[t]
                    links = {(r["profile_id"], r["wallet_address"])
                             for r in tx.all("SELECT profile_id, wallet_address FROM wallet_links")}
                    assert links == self.wallets[t]

    run_state_machine_as_test(
        Isolation,
        settings=settings(max_examples=25, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
