"""The audit trail against the database's owner. Each attack below is made as the PostgreSQL
superuser (who can disable triggers, rewrite rows, fix ``audit_heads`` and delete the signed
checkpoints) after a digest was written to the object store; ``arrakis audit verify`` must name
the rows missing, rewritten or unanchored and exit 1. Everything else goes through the real
``arrakis`` command, on a database and a data folder of each case's own."""

from __future__ import annotations

import json
import uuid

import psycopg2
import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from tests.conftest import create_database, drop_database

WALLETS = 6  # community.created is row 1, then one wallet.linked row per wallet: rows 1..7


@pytest.fixture
def world(pg_server_url, redis_url, tmp_path):
    url = create_database(pg_server_url, prefix="arrakis_anchor")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "ARRAKIS_DATA_DIR": str(tmp_path / "data"),
           "ARRAKIS_OPERATOR": None}

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert run("db", "upgrade").exit_code == 0
    guild = str(10**18 + uuid.uuid4().int % (9 * 10**18))
    made = run("community", "create", "--name", "Anchored", "--guild-id", guild, "--theme", "basic",
               "--subscription", "free", "--json")
    assert made.exit_code == 0, made.output
    cid = json.loads(made.output)["id"]
    csv = tmp_path / "wallets.csv"
    csv.write_text("discord_id,wallet_address\n" + "".join(
        f"{10**17 + i},0x{i + 1:040x}\n" for i in range(WALLETS)))
    assert run("wallets", "import", cid, str(csv)).exit_code == 0
    owner = psycopg2.connect(url)  # the database's owner: a superuser
    owner.autocommit = True
    yield run, owner, cid, tmp_path
    owner.close()
    drop_database(pg_server_url, url)


def sql(owner, statement: str, *params) -> None:
    with owner.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # no trigger stops the owner
        cur.execute(statement, params)
        cur.execute("SET session_replication_role = DEFAULT")


REHASH = """
DO $$
DECLARE r record; prev text := NULL;
BEGIN
  FOR r IN SELECT id FROM audit_log WHERE community_id = '{cid}' ORDER BY seq LOOP
    UPDATE audit_log SET prev_hash = prev,
           hash = audit_row_hash(prev, community_id, seq, actor, action, payload, created_at)
     WHERE id = r.id RETURNING hash INTO prev;
  END LOOP;
  UPDATE audit_heads SET seq = (SELECT max(seq) FROM audit_log WHERE community_id = '{cid}'), hash = prev
   WHERE chain = '{cid}';
END $$;
"""

FIX_HEAD = """UPDATE audit_heads SET (seq, hash) = (SELECT seq, hash FROM audit_log WHERE community_id = %s
                                                    ORDER BY seq DESC LIMIT 1) WHERE chain = %s"""


def delete_last_rows_and_fix_head(owner, cid):
    sql(owner, "DELETE FROM audit_log WHERE community_id = %s AND seq >= 6", cid)
    sql(owner, FIX_HEAD, cid, cid)


def append_forged_row(owner, cid):
    # Through the chaining trigger: the row gets a correct seq, link and hash.
    with owner.cursor() as cur:
        cur.execute("INSERT INTO audit_log (community_id, actor, action, payload) VALUES (%s, %s, %s, %s)",
                    (cid, "operator:ada", "wallet.linked", json.dumps({"discord_id": "100000000000000999",
                                                                        "wallet": "0x" + "f" * 40})))


def swap_and_rehash(owner, cid):
    sql(owner, """UPDATE audit_log a SET actor = b.actor, action = b.action, payload = b.payload
                    FROM audit_log b
                   WHERE a.community_id = %s AND b.community_id = %s
                     AND ((a.seq = 3 AND b.seq = 4) OR (a.seq = 4 AND b.seq = 3))""", cid, cid)
    sql(owner, REHASH.format(cid=cid))


def edit_early_row_rehash_and_drop_checkpoints(owner, cid):
    sql(owner, """UPDATE audit_log SET payload = jsonb_set(payload, '{name}', '"Rewritten"')
                   WHERE community_id = %s AND seq = 1""", cid)
    sql(owner, REHASH.format(cid=cid))
    sql(owner, "DELETE FROM audit_checkpoints")


def truncate_and_drop_checkpoints(owner, cid):
    sql(owner, "TRUNCATE audit_log")
    sql(owner, "DELETE FROM audit_checkpoints")
    sql(owner, "DELETE FROM audit_heads")


@pytest.mark.parametrize("attack, missing, rewritten, unanchored", [
    (delete_last_rows_and_fix_head, [6, 7], [], []),
    (append_forged_row, [], [], [8]),
    (swap_and_rehash, [], [3, 4, 5, 6, 7], []),
    (edit_early_row_rehash_and_drop_checkpoints, [], [1, 2, 3, 4, 5, 6, 7], []),
    (truncate_and_drop_checkpoints, [1, 2, 3, 4, 5, 6, 7], [], []),
], ids=lambda v: v.__name__ if callable(v) else None)
def test_the_database_owner_cannot_rewrite_the_audit_trail_unnoticed(world, attack, missing, rewritten,
                                                                      unanchored):
    run, owner, cid, _ = world
    # Before any digest, nothing outside the database vouches for the rows: verify says so.
    early = run("audit", "verify", cid, "--json")
    assert early.exit_code == 1 and json.loads(early.output)["anchoring"]["unanchored"] == list(range(1, 8))
    assert run("audit", "checkpoint", cid).exit_code == 0  # a signed checkpoint and digest #1
    clean = run("audit", "verify", cid, "--json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["anchoring"]["anchored_to"] == 7

    attack(owner, cid)

    result = run("audit", "verify", cid, "--json")
    assert result.exit_code == 1, result.output
    found = json.loads(result.output)["anchoring"]
    assert (found["missing"], found["rewritten"], found["unanchored"]) == (missing, rewritten, unanchored)
    words = run("audit", "verify", cid).output
    for said, rows in (("are missing", missing), ("were rewritten", rewritten), ("are unanchored", unanchored)):
        assert (said in words) == bool(rows), words
    # The digests themselves are untouched (they are not in the database) ...
    assert run("audit", "digests").exit_code == 0
    # ... and the scheduler refuses to write a digest over a rewritten log (the forged row alone
    # cannot be told from a real one until then: that is the window docs/security.md states).
    scheduled = run("scheduler", "--once", "--interval", "999999")
    if missing or rewritten:
        assert f"chain {cid} NOT extended" in scheduled.output, scheduled.output
        assert run("audit", "verify", cid).exit_code == 1


def test_digests_are_checked_from_the_store_alone_and_a_changed_or_dropped_digest_shows(world):
    run, _, cid, tmp_path = world
    for _ in range(3):
        assert run("audit", "checkpoint", cid).exit_code == 0
    keys = tmp_path / "keys.json"
    keys.write_text(run("signing", "public-key", "--json").output)
    folder = tmp_path / "data" / "shadow"
    ok = run("audit", "digests", "--folder", str(folder), "--public-keys", str(keys), "--json")
    assert ok.exit_code == 0 and json.loads(ok.output)["digests"] == 3, ok.output
    # An edited digest (its signature no longer matches), then a dropped one (the chain breaks).
    second = folder / "audit-digests" / "000000000002.json"
    body = json.loads(second.read_text())
    body["chains"][cid]["head"] = "0" * 64
    second.chmod(0o644)
    second.write_text(json.dumps(body))
    edited = run("audit", "digests", "--folder", str(folder), "--public-keys", str(keys))
    assert edited.exit_code == 1 and "digest #2 has a bad signature" in edited.output
    second.unlink()
    dropped = run("audit", "digests", "--folder", str(folder), "--public-keys", str(keys))
    assert dropped.exit_code == 1 and "digests #2..#2 are missing" in dropped.output
    # The engine's own check agrees, and verify reports the damaged digests too.
    assert run("audit", "digests").exit_code == 1
    assert run("audit", "verify", cid).exit_code == 1
