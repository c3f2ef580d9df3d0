"""RLS overhead: the same tenant-scoped queries as arrakis_app under row-level security versus
as arrakis_admin (BYPASSRLS) with an explicit ``WHERE community_id = ...``, in one run.

    python bench/rls_overhead.py [--tenants 100] [--profiles 1000] [--iterations 1500]

Uses ``BENCH_DATABASE_URL`` (default: the loopback server as postgres) to create a scratch
database, seeds it, measures, prints medians and ratios, and drops the database again.
Each measured operation is a whole transaction, as the engine runs it (BEGIN with the tenant
setting in one round trip for the app role, a plain BEGIN for admin; the query; COMMIT).
Target: overall ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.bootstrap import build_engine  # noqa: E402
from bench.harness import parse_args, scratch_database  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402

PROFILE_COLS = ("id, community_id, discord_id, wallet_address, tier, rank, conviction, activity, joined_at, "
                "first_claim_at, metadata, legacy_import_id")
BADGE_COLS = ("id, community_id, profile_id, badge_type, awarded_at, awarded_by, revoked_at, revoked_reason, "
              "metadata, legacy_import_id")

# The app side runs the repositories' statements (no tenant filter: RLS adds it); the admin side
# runs the same statements with the explicit filter. Both go through the same Tx code path, so
# the difference is what row-level security costs.
APP_SQL = {
    "profile by discord id": f"SELECT {PROFILE_COLS} FROM profiles WHERE discord_id = %(d)s",
    "top 10 by rank": f"SELECT {PROFILE_COLS} FROM profiles WHERE rank IS NOT NULL ORDER BY rank LIMIT 10",
    "badges of a profile": f"SELECT {BADGE_COLS} FROM badges WHERE profile_id = %(p)s AND revoked_at IS NULL "
                           f"ORDER BY awarded_at",
    "lineage depth 10": f"""WITH RECURSIVE chain AS (
            SELECT b.*, 1 AS depth FROM badges b
             WHERE b.profile_id = %(p)s AND b.badge_type = 'water_sharer' AND b.revoked_at IS NULL
            UNION ALL
            SELECT up.*, chain.depth + 1 FROM chain
              JOIN badges up ON up.profile_id = chain.awarded_by AND up.badge_type = chain.badge_type
                            AND up.revoked_at IS NULL
             WHERE chain.depth < 1000
        ) CYCLE profile_id SET is_cycle USING path
        SELECT {BADGE_COLS} FROM chain WHERE NOT is_cycle ORDER BY depth""",
}
ADMIN_SQL = {
    "profile by discord id": f"SELECT {PROFILE_COLS} FROM profiles WHERE community_id = %(c)s AND discord_id = %(d)s",
    "top 10 by rank": f"SELECT {PROFILE_COLS} FROM profiles WHERE community_id = %(c)s AND rank IS NOT NULL "
                      f"ORDER BY rank LIMIT 10",
    "badges of a profile": f"SELECT {BADGE_COLS} FROM badges WHERE community_id = %(c)s AND profile_id = %(p)s "
                           f"AND revoked_at IS NULL ORDER BY awarded_at",
    "lineage depth 10": f"""WITH RECURSIVE chain AS (
            SELECT b.*, 1 AS depth FROM badges b
             WHERE b.community_id = %(c)s AND b.profile_id = %(p)s AND b.badge_type = 'water_sharer'
               AND b.revoked_at IS NULL
            UNION ALL
            SELECT up.*, chain.depth + 1 FROM chain
              JOIN badges up ON up.community_id = %(c)s AND up.profile_id = chain.awarded_by
                            AND up.badge_type = chain.badge_type AND up.revoked_at IS NULL
             WHERE chain.depth < 1000
        ) CYCLE profile_id SET is_cycle USING path
        SELECT {BADGE_COLS} FROM chain WHERE NOT is_cycle ORDER BY depth""",
}


def seed(owner_url: str, tenants: int, profiles: int) -> None:
    conn = psycopg2.connect(owner_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO communities (name, guild_id, theme_id, subscription_tier)
                       SELECT 'Bench ' || g, 'bench-' || g, 'sietch', 'premium' FROM generate_series(1, %s) g""",
                    (tenants,))
        cur.execute("""INSERT INTO profiles (community_id, discord_id, wallet_address, tier, rank, joined_at)
                       SELECT c.id, (100000000000000000 + g)::text, '0x' || lpad(to_hex(g), 40, '0'),
                              'Hajra', g, now() - g * interval '1 hour'
                         FROM communities c, generate_series(1, %s) g""", (profiles,))
        cur.execute("""INSERT INTO badges (community_id, profile_id, badge_type, awarded_at)
                       SELECT community_id, id, 'og', joined_at FROM profiles""")
        cur.execute("""INSERT INTO badges (community_id, profile_id, badge_type, awarded_at)
                       SELECT community_id, id, 'elder', joined_at FROM profiles WHERE rank % 3 = 0""")
        # A Water Sharer chain per community: rank 1 -> 2 -> ... -> 11 (lineage of depth 10).
        cur.execute("""INSERT INTO badges (community_id, profile_id, badge_type, awarded_by)
                       SELECT p.community_id, p.id, 'water_sharer', prev.id
                         FROM profiles p LEFT JOIN profiles prev
                           ON prev.community_id = p.community_id AND prev.rank = p.rank - 1
                        WHERE p.rank <= 11""")
        cur.execute("ANALYZE")
    conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=int, default=100)
    ap.add_argument("--profiles", type=int, default=1000)
    ap.add_argument("--iterations", type=int, default=1500, help="measured operations per query and side")
    args = parse_args(ap, tenants=3, profiles=20, iterations=10)

    with scratch_database() as url:
        return run(args, url)


def run(args, url: str) -> int:
    data_dir = tempfile.mkdtemp(prefix="arrakis-bench-")
    engine = build_engine(Settings.from_env({"DATABASE_URL": url, "REDIS_URL": os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"), "ARRAKIS_DATA_DIR": data_dir}, env_file=None))
    try:
        engine.migrator.upgrade()
        t0 = time.perf_counter()
        seed(url, args.tenants, args.profiles)
        print(f"seeded {args.tenants} tenants x {args.profiles} profiles "
              f"(+ ~{args.profiles * 4 // 3} badges each) in {time.perf_counter() - t0:.1f}s")

        with engine.db.platform() as tx:
            tenants = [r["id"] for r in tx.all("SELECT id FROM communities")]
            lineage_tip = {r["community_id"]: r["id"] for r in tx.all("SELECT community_id, id FROM profiles "
                                                                       "WHERE rank = 11")}
        r = engine.repos
        rng = random.Random(7)

        def pick():
            c = rng.choice(tenants)
            k = rng.randint(1, args.profiles)
            with engine.db.platform() as tx:
                pid = tx.scalar("SELECT id FROM profiles WHERE community_id = %s AND rank = %s", (c, k))
            return {"c": c, "d": str(100000000000000000 + k), "p": pid, "tip": lineage_tip[c]}

        # The repositories must answer exactly what the measured statements answer.
        a = pick()
        with engine.db.tenant(a["c"]):
            assert r.profiles.by_discord_id(a["d"]).id == a["p"]
            assert len(r.profiles.top_by_rank(10)) == 10
            assert len(r.badges.for_profile(a["p"])) >= 1
            assert len(r.badges.lineage(a["tip"], "water_sharer")) == 11

        def run_app(q, a):
            params = dict(a)
            if q == "lineage depth 10":
                params["p"] = a["tip"]
            with engine.db.tenant(a["c"]) as tx:
                return tx.all(APP_SQL[q], params)

        def run_admin(q, a):
            params = dict(a)
            if q == "lineage depth 10":
                params["p"] = a["tip"]
            with engine.db.platform() as tx:
                return tx.all(ADMIN_SQL[q], params)

        samples = [pick() for _ in range(200)]
        # Sanity: both sides return the same rows.
        for q in APP_SQL:
            for a in samples[:20]:
                assert run_app(q, a) == run_admin(q, a), f"{q}: app and admin disagree"
        # Warm up both sides.
        for q in APP_SQL:
            for a in samples[:50]:
                run_app(q, a), run_admin(q, a)

        results = {}
        all_app, all_admin = [], []
        for q in APP_SQL:
            app_t, admin_t = [], []
            for i in range(args.iterations):
                a = samples[i % len(samples)]
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for side in order:
                    t = time.perf_counter()
                    run_app(q, a) if side == 0 else run_admin(q, a)
                    (app_t if side == 0 else admin_t).append(time.perf_counter() - t)
            results[q] = (statistics.median(app_t), statistics.median(admin_t))
            all_app += app_t
            all_admin += admin_t

        print(f"\n{'query':<24}{'app+RLS median':>16}{'admin+WHERE median':>20}{'ratio':>8}")
        for q, (app_m, admin_m) in results.items():
            print(f"{q:<24}{app_m * 1e6:>13.0f} us{admin_m * 1e6:>17.0f} us{app_m / admin_m:>8.3f}")
        app_med, admin_med = statistics.median(all_app), statistics.median(all_admin)
        ratio = app_med / admin_med
        print(f"{'all queries':<24}{app_med * 1e6:>13.0f} us{admin_med * 1e6:>17.0f} us{ratio:>8.3f}")
        print(f"\nRLS overhead ratio (median, all queries): {ratio:.3f}  target <= 1.10  "
              f"{'PASS' if ratio <= 1.10 else 'FAIL'}")
        return 0
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
