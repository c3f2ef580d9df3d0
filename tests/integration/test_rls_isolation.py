"""Tenant isolation on a real PostgreSQL, with tenant work running as arrakis_app.

For every tenant table and each of SELECT / INSERT / UPDATE / DELETE, community A cannot see or
change community B's rows.
"""

from __future__ import annotations

import random
import uuid

import psycopg2
import psycopg2.errors
import pytest

from arrakis_engine.errors import InvalidTenantId, NotFound, TenantError, TenantIsolationError
from arrakis_engine.storage.database import validate_tenant_id

TENANT_TABLES = ["communities", "profiles", "wallet_links", "badges", "manifests", "shadow_states",
                 "tier_history", "audit_log", "legacy_imports", "community_assets", "asset_index_state",
                 "asset_holdings", "discord_member_roles", "pending_approvals",
                 "manifest_outbox", "gate_rules", "allowlists", "allowlist_entries", "gate_snapshot_balances",
                 "asset_holding_changes"]


def key(table: str) -> str:
    return "id" if table == "communities" else "community_id"


def _wallet() -> str:
    return "0x" + "".join(random.choice("0123456789abcdef") for _ in range(40))


def _discord() -> str:
    return str(random.randint(10**16, 10**18))


def seed(engine, community) -> dict:
    """One row in every tenant table for ``community``."""
    r = engine.repos
    with engine.db.tenant(community.id) as tx:
        profile = r.profiles.create(discord_id=_discord(), rank=1, tier="Gold")
        other = r.profiles.create(discord_id=_discord(), rank=2, tier="Gold")
        r.wallets.link(profile.id, _wallet())
        r.badges.award(other.id, "contributor", awarded_by=profile.id)
        manifest = r.manifests.create_version({"roles": ["Gold"]}, created_by="test")
        r.shadow_states.record(manifest.version, {"role:Gold": "1"})
        r.tier_history.record(profile.id, from_tier=None, to_tier="Gold", rank=1)
        r.audit.append("test", "seeded")
        tx.execute("INSERT INTO legacy_imports (community_id, source_name, source_checksum, imported_by) "
                   "VALUES (%s, 'seed.db', %s, 'test')", (community.id, "a" * 64))
        tx.execute("INSERT INTO community_assets (community_id, asset_key, spec) VALUES (%s, 'k', '{}')",
                   (community.id,))
        tx.execute("INSERT INTO asset_index_state (community_id, asset_key, last_block, page_size) "
                   "VALUES (%s, 'k', 0, 1)", (community.id,))
        tx.execute("INSERT INTO asset_holdings (community_id, asset_key, address, balance, updated_block) "
                   "VALUES (%s, 'k', %s, 1, 0)", (community.id, _wallet()))
        tx.execute("INSERT INTO discord_member_roles (community_id, discord_id) VALUES (%s, %s)",
                   (community.id, _discord()))
        tx.execute("INSERT INTO pending_approvals (community_id, kind, summary, requested_by) "
                   "VALUES (%s, 'x', 'x', 'x')", (community.id,))
        tx.execute("INSERT INTO gate_rules (community_id, rule, checksum, updated_by) VALUES (%s, '{}', %s, 't')",
                   (community.id, "0" * 64))
        tx.execute("INSERT INTO allowlists (community_id, name, imported_by) VALUES (%s, 'l', 't')", (community.id,))
        tx.execute("INSERT INTO allowlist_entries (community_id, name, address) VALUES (%s, 'l', %s)",
                   (community.id, _wallet()))
        tx.execute("INSERT INTO gate_snapshot_balances (community_id, asset_key, block, address, balance) "
                   "VALUES (%s, 'k', 1, %s, 1)", (community.id, _wallet()))
        tx.execute("INSERT INTO asset_holding_changes (community_id, asset_key, address, block, at, delta, balance) "
                   "VALUES (%s, 'k', %s, 1, now(), 1, 1)", (community.id, _wallet()))
    return {"profile": profile.id, "other": other.id}


@pytest.fixture
def two_tenants(engine, make_community):
    a, b = make_community(), make_community()
    return a, b, seed(engine, a), seed(engine, b)


# Statements that insert one row for tenant `c`, using profile ids `p` of some community.
INSERTS = {
    "profiles": ("INSERT INTO profiles (community_id, discord_id) VALUES (%s, %s)", lambda c, p: (c, _discord())),
    "wallet_links": ("INSERT INTO wallet_links (community_id, profile_id, wallet_address) VALUES (%s, %s, %s)",
                     lambda c, p: (c, p["profile"], _wallet())),
    "badges": ("INSERT INTO badges (community_id, profile_id, badge_type) VALUES (%s, %s, 'veteran')",
               lambda c, p: (c, p["profile"])),
    "manifests": ("INSERT INTO manifests (community_id, version, content, checksum, created_by) "
                  "VALUES (%s, 99, '{}', %s, 'x')", lambda c, p: (c, "0" * 64)),
    "shadow_states": ("INSERT INTO shadow_states (community_id, manifest_version, checksum) VALUES (%s, 1, %s)",
                      lambda c, p: (c, "0" * 64)),
    "tier_history": ("INSERT INTO tier_history (community_id, profile_id, to_tier) VALUES (%s, %s, 'Gold')",
                     lambda c, p: (c, p["profile"])),
    "audit_log": ("INSERT INTO audit_log (community_id, actor, action) VALUES (%s, 'x', 'x')",
                  lambda c, p: (c,)),
    "legacy_imports": ("INSERT INTO legacy_imports (community_id, source_name, source_checksum, imported_by) "
                       "VALUES (%s, 'x', %s, 'x')", lambda c, p: (c, "b" * 64)),
    "community_assets": ("INSERT INTO community_assets (community_id, asset_key, spec) VALUES (%s, %s, '{}')",
                         lambda c, p: (c, uuid.uuid4().hex)),
    "asset_index_state": ("INSERT INTO asset_index_state (community_id, asset_key, last_block, page_size) "
                          "VALUES (%s, %s, 0, 1)", lambda c, p: (c, uuid.uuid4().hex)),
    "asset_holdings": ("INSERT INTO asset_holdings (community_id, asset_key, address, balance, updated_block) "
                       "VALUES (%s, 'k', %s, 1, 0)", lambda c, p: (c, _wallet())),
    "discord_member_roles": ("INSERT INTO discord_member_roles (community_id, discord_id) VALUES (%s, %s)",
                             lambda c, p: (c, _discord())),
    "pending_approvals": ("INSERT INTO pending_approvals (community_id, kind, summary, requested_by) "
                          "VALUES (%s, 'x', 'x', 'x')", lambda c, p: (c,)),
    "manifest_outbox": ("INSERT INTO manifest_outbox (community_id, object_key, body, checksum) "
                        "VALUES (%s, 'k', '{}', %s)", lambda c, p: (c, "0" * 64)),
    "gate_rules": ("INSERT INTO gate_rules (community_id, tier, rule, checksum, updated_by) "
                   "VALUES (%s, 'Gold', '{}', %s, 'x')", lambda c, p: (c, "0" * 64)),
    "allowlists": ("INSERT INTO allowlists (community_id, name, imported_by) VALUES (%s, %s, 'x')",
                   lambda c, p: (c, uuid.uuid4().hex[:12])),
    "allowlist_entries": ("INSERT INTO allowlist_entries (community_id, name, address) VALUES (%s, 'l', %s)",
                          lambda c, p: (c, _wallet())),
    "gate_snapshot_balances": ("INSERT INTO gate_snapshot_balances (community_id, asset_key, block, address, balance) "
                               "VALUES (%s, 'k', 1, %s, 1)", lambda c, p: (c, _wallet())),
    "asset_holding_changes": ("INSERT INTO asset_holding_changes (community_id, asset_key, address, block, at, "
                              "delta, balance) VALUES (%s, 'k', %s, 1, now(), 1, 1)", lambda c, p: (c, _wallet())),
    "communities": ("INSERT INTO communities (id, name, guild_id, theme_id) VALUES (%s, 'x', %s, 'basic')",
                    lambda c, p: (c, uuid.uuid4().hex[:16])),
}


def owner_count(owner_conn, table: str, community_id) -> int:
    with owner_conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table} WHERE {key(table)} = %s", (community_id,))
        return cur.fetchone()[0]


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_select_sees_only_own_rows(engine, two_tenants, owner_conn, table):
    a, b, _, _ = two_tenants
    assert owner_count(owner_conn, table, b.id) >= 1, "B must have rows for the check to mean anything"
    with engine.db.tenant(a.id) as tx:
        seen = {r[key(table)] for r in tx.all(f"SELECT {key(table)} FROM {table}")}
        assert seen == {a.id}
        assert tx.scalar(f"SELECT count(*) FROM {table} WHERE {key(table)} = %s", (b.id,)) == 0


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_insert_into_other_tenant_fails(engine, two_tenants, owner_conn, table):
    a, b, _, refs_b = two_tenants
    sql, params = INSERTS[table]
    before = owner_count(owner_conn, table, b.id)
    target = b.id if table != "communities" else uuid.uuid4()
    with pytest.raises(TenantIsolationError):
        with engine.db.tenant(a.id) as tx:
            tx.execute(sql, params(target, refs_b))
    assert owner_count(owner_conn, table, b.id) == before


@pytest.mark.parametrize("table", ["wallet_links", "badges", "tier_history"])
def test_own_row_pointing_at_other_tenants_member_fails(engine, two_tenants, table):
    """Community A cannot reference B's member even when it labels the row as its own."""
    a, b, _, refs_b = two_tenants
    sql, params = INSERTS[table]
    with pytest.raises(NotFound):
        with engine.db.tenant(a.id) as tx:
            tx.execute(sql, params(a.id, refs_b))


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_update_cannot_reach_or_move_rows(engine, two_tenants, owner_conn, table):
    a, b, _, _ = two_tenants
    k = key(table)
    if table == "audit_log":
        with pytest.raises(TenantIsolationError):
            with engine.db.tenant(a.id) as tx:
                tx.execute("UPDATE audit_log SET actor = 'x' WHERE community_id = %s", (b.id,))
        return
    with engine.db.tenant(a.id) as tx:
        assert tx.execute(f"UPDATE {table} SET {k} = {k} WHERE {k} = %s", (b.id,)).rowcount == 0
    # Moving one's own rows into B is refused by the WITH CHECK policy.
    with pytest.raises(TenantIsolationError):
        with engine.db.tenant(a.id) as tx:
            tx.execute(f"UPDATE {table} SET {k} = %s", (b.id,))
    assert owner_count(owner_conn, table, a.id) >= 1


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_delete_cannot_reach_other_tenant(engine, two_tenants, owner_conn, table):
    a, b, refs_a, _ = two_tenants
    before = owner_count(owner_conn, table, b.id)
    if table in ("audit_log", "communities"):
        # No DELETE privilege at all for the app role.
        with pytest.raises(TenantIsolationError):
            with engine.db.tenant(a.id) as tx:
                tx.execute(f"DELETE FROM {table} WHERE {key(table)} = %s", (b.id,))
    else:
        with engine.db.tenant(a.id) as tx:
            assert tx.execute(f"DELETE FROM {table} WHERE {key(table)} = %s", (b.id,)).rowcount == 0
            # Its own rows it can delete (a member who handed on a badge is kept by the lineage key).
            own = "id = %s" if table == "profiles" else f"{key(table)} = %s"
            arg = refs_a["other"] if table == "profiles" else a.id
            assert tx.execute(f"DELETE FROM {table} WHERE {own}", (arg,)).rowcount >= 1
            tx.conn.rollback()  # keep A's seed; the outer COMMIT then has nothing to commit
    assert owner_count(owner_conn, table, b.id) == before


def test_repositories_never_return_other_tenants_rows(engine, two_tenants):
    a, b, refs_a, refs_b = two_tenants
    r = engine.repos
    with engine.db.tenant(a.id):
        with pytest.raises(NotFound):
            r.profiles.get(refs_b["profile"])
        assert r.badges.for_profile(refs_b["other"]) == []
        assert r.tier_history.for_profile(refs_b["profile"]) == []
        assert [m.community_id for m in [r.manifests.latest()]] == [a.id]
        assert {e.community_id for e in r.audit.entries()} == {a.id}
        with pytest.raises(NotFound):
            r.communities.get(b.id)


# --- tenant id attack inputs -------------------------------------------------------------------

ATTACKS = [
    "' OR 1=1 --",
    "00000000-0000-0000-0000-000000000000'; DROP TABLE profiles; --",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "",
    "   ",
    " 3f0e6c1c-8a8e-4d5b-9a57-8f5f6f0f0b11",
    "3F0E6C1C-8A8E-4D5B-9A57-8F5F6F0F0B11",
    "{3f0e6c1c-8a8e-4d5b-9a57-8f5f6f0f0b11}",
    "3f0e6c1c8a8e4d5b9a578f5f6f0f0b11",
    "3f0e6c1c-8a8e-4d5b-9a57-8f5f6f0f0b11\x00",
    123,
    None,
    b"3f0e6c1c-8a8e-4d5b-9a57-8f5f6f0f0b11",
    ["3f0e6c1c-8a8e-4d5b-9a57-8f5f6f0f0b11"],
    3.5,
    uuid.UUID(int=0),
    uuid.UUID(int=(1 << 128) - 1),
]


@pytest.mark.parametrize("bad", ATTACKS, ids=lambda v: repr(v)[:40])
def test_attack_tenant_ids_are_refused(engine, bad):
    with pytest.raises(InvalidTenantId):
        with engine.db.tenant(bad):
            pass
    with pytest.raises(InvalidTenantId):
        validate_tenant_id(bad)


def test_unknown_but_valid_tenant_sees_nothing(engine, two_tenants):
    with engine.db.tenant(uuid.uuid4()) as tx:
        for table in TENANT_TABLES:
            assert tx.scalar(f"SELECT count(*) FROM {table}") == 0


def test_nested_tenant_switch_is_an_error(engine, two_tenants):
    a, b, _, _ = two_tenants
    with engine.db.tenant(a.id) as outer:
        with engine.db.tenant(a.id) as inner:
            assert inner is outer  # same tenant joins the open transaction
        with pytest.raises(TenantError):
            with engine.db.tenant(b.id):
                pass
        with pytest.raises(TenantError):
            with engine.db.platform():
                pass


def test_repository_outside_a_transaction_is_refused(engine):
    with pytest.raises(TenantError):
        engine.repos.profiles.count()


# --- what arrakis_app cannot do ------------------------------------------------------------------

APP_FORBIDDEN = [
    "ALTER TABLE profiles DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE profiles NO FORCE ROW LEVEL SECURITY",
    "DROP POLICY tenant_select ON profiles",
    "ALTER POLICY tenant_select ON profiles USING (true)",
    "CREATE POLICY sneaky ON profiles FOR SELECT USING (true)",
    "SET ROLE arrakis_admin",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION arrakis_admin",
    "CREATE TABLE sneaky (id int)",
    "TRUNCATE profiles",
    "UPDATE audit_log SET actor = 'x'",
    "DELETE FROM audit_log",
    "SELECT * FROM schema_migrations",
    "SELECT * FROM audit_heads",
]


@pytest.mark.parametrize("statement", APP_FORBIDDEN)
def test_app_role_cannot(app_conn, statement):
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        with app_conn.cursor() as cur:
            cur.execute(statement)
    app_conn.rollback()


def test_app_role_attributes(owner_conn):
    with owner_conn.cursor() as cur:
        cur.execute("SELECT rolname, rolbypassrls, rolsuper, rolcanlogin FROM pg_roles "
                    "WHERE rolname IN ('arrakis_app', 'arrakis_admin') ORDER BY rolname")
        assert cur.fetchall() == [("arrakis_admin", True, False, True), ("arrakis_app", False, False, True)]
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = 'arrakis_app'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) AND NOT (relrowsecurity AND relforcerowsecurity)",
                    (TENANT_TABLES,))
        assert cur.fetchall() == []


def test_no_tenant_means_no_rows(app_conn, two_tenants):
    with app_conn.cursor() as cur:
        for table in TENANT_TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone()[0] == 0, table
    app_conn.rollback()


def test_tenant_does_not_outlive_its_transaction_on_a_pooled_connection(engine, two_tenants):
    a, _, _, _ = two_tenants
    pool = engine.db.app_pool
    with engine.db.tenant(a.id) as tx:
        conn_used = tx.conn
        assert tx.scalar("SELECT count(*) FROM profiles") >= 1
    pool.connect(reuse_if_open=True)
    again = pool.connection()
    try:
        assert again is conn_used, "the pool should hand back the same connection"
        with again.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT current_setting('app.current_tenant', true)")
            assert cur.fetchone()[0] in (None, "")
            cur.execute("SELECT count(*) FROM profiles")
            assert cur.fetchone()[0] == 0
            cur.execute("ROLLBACK")
    finally:
        pool.close()


def test_admin_sees_every_tenant(engine, two_tenants):
    a, b, _, _ = two_tenants
    with engine.db.platform() as tx:
        for table in TENANT_TABLES:
            seen = {r[key(table)] for r in tx.all(f"SELECT {key(table)} FROM {table}")}
            assert {a.id, b.id} <= seen, table
