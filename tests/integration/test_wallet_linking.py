"""Sign-In with Ethereum wallet linking (real Redis nonces, real PostgreSQL) and CSV import."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from arrakis_engine.errors import Conflict
from arrakis_engine.storage.redis_state import SignInNonces
from arrakis_engine.use_cases.wallets import MAX_WALLETS_PER_MEMBER, SignInError, WalletLinking, parse_message


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def linking(engine, clock):
    return WalletLinking(engine.db, engine.repos, SignInNonces(engine.redis), clock=clock, nonce_ttl=600)


def sign(account, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex().removeprefix("0x")


def test_link_with_a_signed_message(engine, make_community, linking):
    c = make_community()
    acct = Account.create()
    ch = linking.start(c.id, "111111111111111111", acct.address)
    fields = parse_message(ch.message)
    assert fields["Nonce"] == ch.nonce and fields["Chain ID"] == "80094" and fields["address"] == acct.address
    link = linking.complete(c.id, "111111111111111111", ch.message, sign(acct, ch.message))
    assert link.wallet_address == acct.address.lower() and link.source == "siwe" and link.verified_at
    with engine.db.tenant(c.id):
        assert engine.repos.profiles.by_discord_id("111111111111111111").wallet_address == acct.address.lower()
    # The nonce is gone: replaying the same signed message fails.
    with pytest.raises(SignInError, match="expired or was already used"):
        linking.complete(c.id, "111111111111111111", ch.message, sign(acct, ch.message))


def test_wrong_signer_expired_and_foreign_requests_are_refused(make_community, linking, clock):
    c = make_community()
    acct, other = Account.create(), Account.create()
    ch = linking.start(c.id, "222222222222222222", acct.address)
    with pytest.raises(SignInError, match="not made by that wallet"):
        linking.complete(c.id, "222222222222222222", ch.message, sign(other, ch.message))
    ch = linking.start(c.id, "222222222222222222", acct.address)
    with pytest.raises(SignInError, match="someone else"):
        linking.complete(c.id, "333333333333333333", ch.message, sign(acct, ch.message))
    ch = linking.start(c.id, "222222222222222222", acct.address)
    tampered = ch.message.replace("Chain ID: 80094", "Chain ID: 1")
    with pytest.raises(SignInError, match="another site or chain"):
        linking.complete(c.id, "222222222222222222", tampered, sign(acct, tampered))
    ch = linking.start(c.id, "222222222222222222", acct.address)
    clock.now += timedelta(minutes=11)
    with pytest.raises(SignInError, match="expired"):
        linking.complete(c.id, "222222222222222222", ch.message, sign(acct, ch.message))
    with pytest.raises(SignInError, match="not a Sign-In"):
        linking.complete(c.id, "222222222222222222", "hello", "0x00")


@pytest.mark.parametrize("edit", [
    lambda m: m.replace("Link this wallet to your membership of", "Link this wallet, and every other, to"),
    lambda m: m.replace("Issued At: 2026-11-24T12:00:00Z", "Issued At: 2026-11-23T12:00:00Z"),
    lambda m: m.replace("Expiration Time: 2026-11-24T12:10:00Z", "Expiration Time: 2036-11-24T12:10:00Z"),
    lambda m: m + "\nResources:\n- https://evil.example/grant",
    lambda m: m.replace("Version: 1", "Version: 1 "),
], ids=["statement", "issued-at", "expiration-time", "extra-lines", "trailing-space"])
def test_an_edited_message_signed_by_the_wallet_itself_is_refused(engine, make_community, linking, edit):
    """The wallet's owner edits what was issued and signs the edit: the signature is genuine and
    every checked field still matches, but it is not the message the server issued."""
    c = make_community()
    acct = Account.create()
    ch = linking.start(c.id, "444444444444444444", acct.address)
    edited = edit(ch.message)
    assert edited != ch.message
    with pytest.raises(SignInError, match="not the one this page issued"):
        linking.complete(c.id, "444444444444444444", edited, sign(acct, edited))
    with engine.db.tenant(c.id):
        assert engine.repos.profiles.by_discord_id("444444444444444444") is None
    with pytest.raises(SignInError, match="expired or was already used"):  # the nonce went with it
        linking.complete(c.id, "444444444444444444", ch.message, sign(acct, ch.message))


def test_nonce_lives_in_redis_with_a_ttl(engine, make_community, linking):
    c = make_community()
    ch = linking.start(c.id, "444444444444444444", Account.create().address)
    ttl = engine.redis.ttl(f"arrakis:siwe:{ch.nonce}")
    assert 590 <= ttl <= 600


def test_several_wallets_per_member_up_to_the_cap_and_one_member_per_wallet(engine, make_community, linking):
    c = make_community()
    accounts = [Account.create() for _ in range(MAX_WALLETS_PER_MEMBER + 1)]

    def link(discord_id, acct):
        ch = linking.start(c.id, discord_id, acct.address)
        return linking.complete(c.id, discord_id, ch.message, sign(acct, ch.message))

    for acct in accounts[:MAX_WALLETS_PER_MEMBER]:
        link("555555555555555555", acct)
    with pytest.raises(Conflict, match=f"the most one member may have \\({MAX_WALLETS_PER_MEMBER}\\)"):
        link("555555555555555555", accounts[-1])
    with pytest.raises(Conflict, match="another member"):
        link("666666666666666666", accounts[0])
    link("555555555555555555", accounts[0])  # linking the same wallet again is fine, even at the cap
    with engine.db.tenant(c.id):
        p = engine.repos.profiles.by_discord_id("555555555555555555")
        assert len(engine.repos.wallets.for_profile(p.id)) == MAX_WALLETS_PER_MEMBER
        assert p.wallet_address == accounts[0].address.lower()  # the first linked stays the primary


def test_csv_import_reports_bad_rows_and_links_the_rest(engine, make_community, linking, tmp_path):
    c = make_community()
    w = [f"0x{i:040x}" for i in range(1, 6)]
    csv_file = tmp_path / "wallets.csv"
    csv_file.write_text(
        "discord_id,wallet_address\n"
        f"100000000000000001,{w[0]}\n"
        f"100000000000000002,{w[1].upper().replace('0X', '0x')}\n"
        "not-a-number,0x" + "1" * 40 + "\n"
        "100000000000000003,0x1234\n"
        f"100000000000000004,{w[0]}\n"
        f"100000000000000001,{w[2]}\n"
        f"100000000000000005,{w[4]}\n")
    result = linking.import_csv(c.id, csv_file)
    assert result["linked"] == 4  # line 7 gives member 1 a second wallet
    assert [e.split(":")[0] for e in result["errors"]] == ["line 4", "line 5", "line 6"]
    assert "Discord id" in result["errors"][0] and "wallet_address" in result["errors"][1]
    assert "another member" in result["errors"][2] or "earlier line" in result["errors"][2]
    with engine.db.tenant(c.id):
        p1 = engine.repos.profiles.by_discord_id("100000000000000001")
        assert sorted(x.wallet_address for x in engine.repos.wallets.for_profile(p1.id)) == sorted([w[0], w[2]])
    with engine.db.tenant(c.id):
        assert engine.repos.wallets.by_wallet(w[1]).source == "import"


def test_a_primary_wallet_without_its_link_is_kept_when_a_second_is_linked(engine, make_community, linking,
                                                                           tmp_path, owner_conn):
    """Older data: profiles.wallet_address set, no wallet_links row. Linking another wallet links
    the first too (the sync reads both); the migration that backfills such links is idempotent."""
    c = make_community()
    first, second, orphan = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
    with engine.db.tenant(c.id):
        engine.repos.profiles.create(discord_id="700000000000000001", wallet_address=first)
        engine.repos.profiles.create(discord_id="700000000000000002", wallet_address=orphan)
    csv_file = tmp_path / "w.csv"
    csv_file.write_text(f"discord_id,wallet_address\n700000000000000001,{second}\n")
    assert linking.import_csv(c.id, csv_file)["linked"] == 1
    with engine.db.tenant(c.id):
        standings = {s.discord_id: s.wallets for s in engine.eligibility.store.standings()}
        p = engine.repos.profiles.by_discord_id("700000000000000001")
    assert standings["700000000000000001"] == (first, second) and p.wallet_address == first
    migration = (Path(__file__).resolve().parents[2] / "sql" / "0058_wallet_links_backfill.sql").read_text()
    owner_conn.autocommit = False  # run twice inside one transaction, checked, then rolled back (shared DB)
    try:
        with owner_conn.cursor() as cur:
            cur.execute(migration)
            cur.execute(migration)
            cur.execute("""SELECT w.wallet_address, w.source FROM wallet_links w JOIN profiles p ON p.id = w.profile_id
                            WHERE p.community_id = %s AND p.discord_id = '700000000000000002'""", (c.id,))
            assert cur.fetchall() == [(orphan, "legacy")]
            cur.execute("SELECT count(*) FROM wallet_links WHERE community_id = %s", (c.id,))
            assert cur.fetchone()[0] == 3  # first, second and the orphan's: nothing twice
            cur.execute("SELECT relforcerowsecurity FROM pg_class WHERE relname IN ('wallet_links', 'profiles')")
            assert [r[0] for r in cur.fetchall()] == [True, True]  # fenced again after the backfill
    finally:
        owner_conn.rollback()
        owner_conn.autocommit = True
