"""Raw database text never reaches users: every CHECK, UNIQUE, primary and foreign key (and
unique index) in the migrated schema has a sentence naming its field
(``storage/constraints.py``), and a refused row shows that sentence, not the constraint."""

from __future__ import annotations

import psycopg2
import pytest

from arrakis_engine.errors import Conflict, NotFound, ValidationError
from arrakis_engine.storage.constraints import CONSTRAINTS
from arrakis_engine.storage.database import translate_db_error

CATALOG = """
    SELECT conname FROM pg_constraint
     WHERE connamespace = 'public'::regnamespace AND contype IN ('c', 'u', 'f', 'p', 'x')
    UNION
    SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indisunique AND c.relnamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
"""


def catalog(owner_conn) -> set[str]:
    with owner_conn.cursor() as cur:
        cur.execute(CATALOG)
        return {r[0] for r in cur.fetchall()}


def test_every_constraint_in_the_catalog_has_words(engine, owner_conn):
    names = catalog(owner_conn)
    assert len(names) > 50  # the walk sees the schema (a wrong schema name would pass vacuously)
    missing = sorted(names - set(CONSTRAINTS))
    assert not missing, f"constraints without a sentence in storage/constraints.py: {missing}"
    stale = sorted(set(CONSTRAINTS) - names)
    assert not stale, f"sentences for constraints the schema no longer has: {stale}"
    for name, (field, sentence) in CONSTRAINTS.items():
        assert field and sentence and "_check" not in sentence and "_fkey" not in sentence, name


def refused(owner_conn, sql: str, params=()) -> psycopg2.Error:
    with owner_conn.cursor() as cur, pytest.raises(psycopg2.Error) as err:
        cur.execute(sql, params)
    return err.value


def test_a_refused_row_says_the_sentence_not_the_constraint(engine, owner_conn, make_community):
    c = make_community()
    check = translate_db_error(refused(
        owner_conn, "INSERT INTO community_assets (community_id, asset_key, spec, purpose, min_amount) "
                    "VALUES (%s, 'k', '{}', 'rank', -5)", (str(c.id),)))
    assert isinstance(check, ValidationError) and check.field == "min_amount"
    assert str(check) == "the minimum amount must be 0 or more"
    unique = translate_db_error(refused(
        owner_conn, "INSERT INTO communities (name, guild_id, theme_id, subscription_tier) "
                    "VALUES ('Y', %s, 'basic', 'free')", (c.guild_id,)))
    assert isinstance(unique, Conflict) and str(unique) == "this Discord server already has a community"
    fk = translate_db_error(refused(
        owner_conn, "INSERT INTO profiles (community_id, discord_id) "
                    "VALUES ('00000000-0000-4000-8000-000000000000', '1')"))
    assert isinstance(fk, NotFound) and str(fk) == "the community does not exist"
    for error in (check, unique, fk):
        assert "constraint" not in str(error) and "community_assets" not in str(error)


def test_add_asset_with_a_negative_minimum_names_the_option(run, make_community):
    cid = str(make_community().id)
    out = run("eligibility", "add-asset", cid, "--chain", "berachain", "--kind", "native", "--min-amount", "-5")
    assert out.exit_code == 2, out.output
    assert out.output.strip() == "error: --min-amount: the minimum amount must be 0 or more"
