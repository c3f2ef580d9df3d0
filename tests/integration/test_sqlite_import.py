"""Legacy SQLite import on a real PostgreSQL: round trip, validation, rollback, bad input."""

from __future__ import annotations

import pytest

from arrakis_engine.errors import LegacyImportError, NotFound
from tests.fixtures.legacy_sqlite import build_legacy_db

DATA_TABLES = ["profiles", "wallet_links", "badges", "tier_history", "legacy_imports", "manifests", "shadow_states"]


def snapshot(owner_conn, community_id) -> dict:
    """Every tenant data row of one community, as text, for before/after comparison."""
    out = {}
    with owner_conn.cursor() as cur:
        for table in DATA_TABLES:
            cur.execute(f"SELECT to_jsonb(t)::text FROM {table} t WHERE community_id = %s ORDER BY 1", (community_id,))
            out[table] = [r[0] for r in cur.fetchall()]
    return out


def audit_count(owner_conn, community_id) -> int:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_log WHERE community_id = %s", (community_id,))
        return cur.fetchone()[0]


@pytest.fixture
def sietch(make_community):
    return make_community(theme="sietch", subscription="premium")


def test_round_trip_import_validate_rollback(engine, sietch, owner_conn, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=120)
    with engine.db.tenant(sietch.id):
        engine.repos.profiles.create(discord_id="123456789012345678")  # a member who was there before
    before = snapshot(owner_conn, sietch.id)
    audit_before = audit_count(owner_conn, sietch.id)

    seen_progress = []
    importer = engine.legacy_importer(progress=lambda phase, done, total: seen_progress.append((phase, done, total)))
    result = importer.import_file(source, sietch.id)
    assert result.counts["profiles"] == 120
    assert result.counts["badges"] == 120 + 10
    assert seen_progress and seen_progress[-1][1] == seen_progress[-1][2] == sum(result.counts.values())

    with engine.db.tenant(sietch.id):
        r = engine.repos
        assert r.profiles.count() == 121
        tenth = r.profiles.by_discord_id(str(800000000000000010))
        lineage = r.badges.lineage(tenth.id, "water_sharer")
        assert len(lineage) == 10  # lineage kept across the import
        # Award timestamps kept exactly.
        og = [b for b in r.badges.for_profile(r.profiles.by_discord_id(str(800000000000000001)).id)
              if b.badge_type == "og"][0]
        assert og.awarded_at.isoformat() == "2024-04-01T12:00:00+00:00"
        seventh = r.profiles.by_discord_id(str(800000000000000007))
        assert seventh.wallet_address == f"0x{7:040x}"  # mixed case normalised

    report = engine.legacy_importer().validate(source, sietch.id)
    assert report.ok, report.as_dict()
    assert {t.table: t.source_count for t in report.tables} == result.counts

    removed = engine.legacy_importer().rollback(sietch.id)
    assert removed["profiles"] == 120
    assert snapshot(owner_conn, sietch.id) == before
    assert audit_count(owner_conn, sietch.id) == audit_before + 2  # imported + rolled back, kept for history
    with pytest.raises(NotFound):
        engine.legacy_importer().rollback(sietch.id)


def test_validate_detects_a_changed_row(engine, sietch, owner_conn, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=30)
    engine.legacy_importer().import_file(source, sietch.id)
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE badges SET awarded_at = awarded_at + interval '1 second' "
                    "WHERE community_id = %s AND badge_type = 'og' AND awarded_by IS NULL "
                    "AND profile_id = (SELECT id FROM profiles WHERE discord_id = '800000000000000003' AND community_id = %s)",
                    (sietch.id, sietch.id))
    report = engine.legacy_importer().validate(source, sietch.id)
    assert not report.ok
    bad = [t for t in report.tables if not t.ok]
    assert [t.table for t in bad] == ["badges"]
    assert bad[0].source_count == bad[0].target_count


def test_dry_run_writes_nothing(engine, sietch, owner_conn, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=20)
    before = snapshot(owner_conn, sietch.id)
    result = engine.legacy_importer().import_file(source, sietch.id, dry_run=True)
    assert result.dry_run and result.import_id is None and result.counts["profiles"] == 20
    assert snapshot(owner_conn, sietch.id) == before


def test_bad_rows_are_listed_and_nothing_is_written(engine, sietch, owner_conn, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=20, bad=("wallet", "badge", "awarded_by"))
    before = snapshot(owner_conn, sietch.id)
    with pytest.raises(LegacyImportError) as err:
        engine.legacy_importer().import_file(source, sietch.id)
    problems = "\n".join(err.value.problems)
    assert "member_profiles row 9001: malformed wallet address" in problems
    assert "badges row 9002: unknown badge 'Spice Lord'" in problems
    assert "badges row 9003: awarded by member 7777, who does not exist" in problems
    assert len(err.value.problems) == 3
    assert "nothing was imported" in str(err.value)
    assert snapshot(owner_conn, sietch.id) == before


def test_members_already_present_are_refused(engine, sietch, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=10)
    engine.legacy_importer().import_file(source, sietch.id)
    with pytest.raises(LegacyImportError) as err:
        engine.legacy_importer().import_file(source, sietch.id)
    assert len(err.value.problems) == 10 and "already exists" in err.value.problems[0]


@pytest.mark.parametrize("content", [b"", b"this is not sqlite at all" * 100,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
def test_corrupt_source_gives_one_clear_error(engine, sietch, owner_conn, tmp_path, content):
    path = tmp_path / "broken.db"
    path.write_bytes(content)
    before = snapshot(owner_conn, sietch.id)
    with pytest.raises(LegacyImportError) as err:
        engine.legacy_importer().import_file(path, sietch.id)
    assert "broken.db" in str(err.value)
    assert snapshot(owner_conn, sietch.id) == before


def test_truncated_file_is_refused(engine, sietch, owner_conn, tmp_path):
    good = build_legacy_db(tmp_path / "good.db", members=200)
    data = good.read_bytes()
    cut = tmp_path / "cut.db"
    cut.write_bytes(data[: len(data) // 2])
    before = snapshot(owner_conn, sietch.id)
    with pytest.raises(LegacyImportError):
        engine.legacy_importer().import_file(cut, sietch.id)
    assert snapshot(owner_conn, sietch.id) == before


def test_missing_file(engine, sietch, tmp_path):
    with pytest.raises(LegacyImportError, match="does not exist"):
        engine.legacy_importer().import_file(tmp_path / "nope.db", sietch.id)


def test_rollback_refused_when_newer_badges_depend_on_imported_members(engine, sietch, tmp_path):
    source = build_legacy_db(tmp_path / "profiles.db", members=10)
    engine.legacy_importer().import_file(source, sietch.id)
    with engine.db.tenant(sietch.id):
        newcomer = engine.repos.profiles.create(discord_id="123456789012345999")
        giver = engine.repos.profiles.by_discord_id("800000000000000002")
        engine.repos.badges.award(newcomer.id, "water_sharer", awarded_by=giver.id)
    with pytest.raises(LegacyImportError, match="roll back refused"):
        engine.legacy_importer().rollback(sietch.id)
    with engine.db.tenant(sietch.id):
        assert engine.repos.profiles.count() == 11
