"""Migrations on a fresh database: apply, re-run, status, refuse edited files, repair roles."""

from __future__ import annotations

import shutil

import psycopg2
import pytest

from arrakis_engine.errors import SchemaError
from arrakis_engine.storage.migrations import Migrator, default_sql_dir, discover
from tests.conftest import create_database, drop_database


@pytest.fixture
def fresh_db(pg_server_url):
    url = create_database(pg_server_url, prefix="arrakis_mig")
    yield url
    drop_database(pg_server_url, url)


def test_upgrade_is_idempotent_and_status_lists_everything(fresh_db):
    migrator = Migrator(lambda: psycopg2.connect(fresh_db))
    names = [m.version for m in discover(default_sql_dir())]
    assert [s.state for s in migrator.status()] == ["pending"] * len(names)
    assert migrator.upgrade() == names
    assert migrator.upgrade() == []
    assert [(s.version, s.state) for s in migrator.status()] == [(v, "applied") for v in names]


def test_edited_migration_is_refused(fresh_db, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql_dir)
    migrator = Migrator(lambda: psycopg2.connect(fresh_db), sql_dir)
    migrator.upgrade()
    first = sorted(sql_dir.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    assert migrator.status()[0].state == "changed"
    with pytest.raises(SchemaError, match="changed after it was applied"):
        migrator.upgrade()


def test_failed_migration_rolls_back_and_says_which(fresh_db, tmp_path):
    sql_dir = tmp_path / "sql"
    shutil.copytree(default_sql_dir(), sql_dir)
    (sql_dir / "9999_broken.sql").write_text("CREATE TABLE ok_table (id int); SELECT no_such_function();")
    migrator = Migrator(lambda: psycopg2.connect(fresh_db), sql_dir)
    with pytest.raises(SchemaError, match="9999_broken failed"):
        migrator.upgrade()
    conn = psycopg2.connect(fresh_db)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ok_table') IS NULL, to_regclass('profiles') IS NOT NULL")
        assert cur.fetchone() == (True, True)
    conn.close()
    assert migrator.status()[-1].state == "pending"


def test_upgrade_repairs_drifted_role(fresh_db):
    migrator = Migrator(lambda: psycopg2.connect(fresh_db))
    migrator.upgrade()
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("ALTER ROLE arrakis_app BYPASSRLS")
        migrator.upgrade()
        with conn.cursor() as cur:
            cur.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = 'arrakis_app'")
            assert cur.fetchone()[0] is False
    finally:
        conn.close()


def test_every_tenant_lookup_is_indexed(engine, owner_conn):
    """Each tenant table has an index that starts with its community key."""
    with owner_conn.cursor() as cur:
        cur.execute(
            """SELECT t.relname FROM pg_class t
                WHERE t.relname = ANY(%s)
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_index i JOIN pg_attribute a
                        ON a.attrelid = t.oid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = t.oid
                         AND a.attname = CASE WHEN t.relname = 'communities' THEN 'id' ELSE 'community_id' END)""",
            (["communities", "profiles", "wallet_links", "badges", "manifests", "shadow_states",
              "tier_history", "audit_log", "legacy_imports", "community_assets", "asset_index_state",
              "asset_holdings", "discord_member_roles", "pending_approvals",
              "manifest_outbox", "gate_rules", "allowlists", "allowlist_entries", "gate_snapshot_balances",
              "asset_holding_changes"],))
        assert cur.fetchall() == []


def test_upgrades_of_two_databases_at_once_both_succeed(pg_server_url):
    """The roles belong to the server, so two deployments (or two test processes) upgrading their
    own databases at the same moment alter the same roles: PostgreSQL refuses one of two
    concurrent ALTER ROLEs ("tuple concurrently updated"), and the upgrade tries again."""
    import threading

    urls = [create_database(pg_server_url, prefix="arrakis_mig") for _ in range(4)]
    roles_sql = (default_sql_dir() / "rls" / "roles.sql").read_text()
    start, errors = threading.Barrier(len(urls)), []

    def repair_roles(url: str) -> None:
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                start.wait(10)
                for _ in range(25):  # many rounds, so that some do overlap
                    Migrator._ensure_roles(conn, cur, roles_sql)
                    conn.commit()
        except Exception as exc:  # reported below, with the database it came from
            errors.append(f"{url}: {exc}")
        finally:
            conn.close()

    try:
        threads = [threading.Thread(target=repair_roles, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        for url in urls:  # and a whole upgrade still works on each
            assert Migrator(lambda u=url: psycopg2.connect(u)).upgrade()
    finally:
        for url in urls:
            drop_database(pg_server_url, url)
