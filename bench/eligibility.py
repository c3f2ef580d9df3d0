"""Eligibility sync benchmark against a real local chain (anvil).

    python bench/eligibility.py [--holders 10000] [--members 100000]

10,000 holders x 2 assets (an ERC-20 that ranks, an ERC-721 that gates), each holder a member
with a linked wallet in a fresh scratch database. Prints the JSON-RPC requests a full sync made,
their ratio to the reads (holders x assets), and the wall time of a first sync (everyone joins)
and of a second one (steady state). Then prints tier + badge evaluation throughput for 100,000
members of the Sietch theme.

Then a 5-requirement gating rule over the same two assets and two allowlists is set: a sync
with it must make exactly as many JSON-RPC requests as without it (one read per wallet and asset,
however many requirements name it), and the rule alone is evaluated for 100,000 members.

A held_for requirement is evaluated from a synthetic holdings history for the same members.

Targets: <= 1 request per 500 reads; a full sync of 10,000 members under 5 s;
evaluation >= 200,000 members/s; gating rule >= 100,000 evaluations/s, RPC calls unchanged.
Uses BENCH_DATABASE_URL (default: the loopback server as postgres) and BENCH_REDIS_URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg2
import psycopg2.extras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.bootstrap import build_engine  # noqa: E402
from bench.harness import parse_args, scratch_database  # noqa: E402
from arrakis_engine.domain.chain import Asset  # noqa: E402
from arrakis_engine.settings import Settings  # noqa: E402
from arrakis_engine.themes import THEMES  # noqa: E402
from arrakis_engine.themes.evaluator import MemberFacts, ThemeEvaluator  # noqa: E402
from arrakis_engine.domain.chain import UNKNOWN  # noqa: E402
from arrakis_engine.gating.evaluate import Facts, evaluate_many, held_history  # noqa: E402
from arrakis_engine.gating.rules import parse_rule  # noqa: E402
from tests.fixtures.chain import ChainKit, holder, start_anvil  # noqa: E402


def five_requirements(token: str, nft: str) -> dict:
    """NFT or 5,000 tokens; at least 1 token; not banned; under a billion tokens or a VIP; the NFT."""
    return {"all": [
        {"any": [{"type": "nft", "address": nft}, {"type": "balance", "address": token, "min": "5000"}]},
        {"type": "balance", "address": token, "min": "1"},
        {"not": {"type": "allowlist", "name": "banned"}},
        {"any": [{"type": "balance", "address": token, "min": "0", "max": "1000000000"},
                 {"type": "allowlist", "name": "vip"}]},
        {"type": "nft", "address": nft, "min": 1}]}


def rule_throughput(members: int, rounds: int = 5) -> tuple[float, float, dict]:
    """(median, best) evaluations per second of the 5-requirement rule over ``members`` members
    (one in ten with two wallets, one read in a hundred failed), and the count of each result."""
    token, nft = "0x" + "b" * 40, "0x" + "c" * 40
    rule = parse_rule(five_requirements(token, nft), default_chain="berachain")
    keys = {a.kind: a.key for a in rule.assets()}
    wallets = [f"0x{i:040x}" for i in range(members + members // 10)]
    facts = Facts(datetime.now(timezone.utc), balances={
        keys["erc20"]: {w: UNKNOWN if i % 100 == 0 else (i % 9000) * 10**18 for i, w in enumerate(wallets)},
        keys["erc721"]: {w: i % 2 for i, w in enumerate(wallets)}},
        allowlists={"banned": frozenset(wallets[::50]), "vip": frozenset(wallets[::7])})
    pairs = [(str(10**17 + i), (wallets[i], wallets[members + i // 10]) if i % 10 == 0 else (wallets[i],))
             for i in range(members)]
    rates, out = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        out = evaluate_many(rule, facts, pairs)
        rates.append(members / (time.perf_counter() - t))
    return statistics.median(rates), max(rates), {k: out.count(v) for k, v in
                                                   (("true", True), ("false", False), ("unknown", None))}


def held_for_throughput(members: int, rounds: int = 5) -> tuple[float, float, dict]:
    """(median, best) members per second for a held_for requirement from the holdings history:
    pooling each member's wallets block by block over 30 days (one in ten members with two wallets,
    three balance changes per wallet, one in five dipping below the minimum) and evaluating it
    with today's balance (one read in a hundred failed)."""
    token = "0x" + "b" * 40
    rule = parse_rule({"type": "held_for", "address": token, "min": "1000", "days": 30}, default_chain="berachain")
    req = rule.requirements()[0]
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=30)
    wallets = [f"0x{i:040x}" for i in range(members + members // 10)]
    start = {w: 2000 * 10**18 for w in wallets}
    changes = []
    for day in range(3):
        at = since + timedelta(days=5 + 10 * day)
        for i, w in enumerate(wallets):
            low = day == 1 and i % 5 == 0
            changes.append((at, 100 + day, w, (500 if low else 2000 + day) * 10**18))
    pairs = [(str(10**17 + i), (wallets[i], wallets[members + i // 10]) if i % 10 == 0 else (wallets[i],))
             for i in range(members)]
    balances = {req.holding.asset.key: {w: UNKNOWN if i % 100 == 0 else 2002 * 10**18 for i, w in enumerate(wallets)}}
    rates, out = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        held = held_history(req.holding, start, changes, since, pairs, covered=True, last=now)
        facts = Facts(now, balances=balances, held={(req.key, d): v for d, v in held.items()})
        out = evaluate_many(rule, facts, pairs)
        rates.append(members / (time.perf_counter() - t))
    return statistics.median(rates), max(rates), {k: out.count(v) for k, v in
                                                   (("true", True), ("false", False), ("unknown", None))}


def evaluation_throughput(members: int, rounds: int = 5) -> tuple[float, float]:
    """(median, best) members per second; each round uses a fresh evaluator, as each sync does."""
    now = datetime.now(timezone.utc)
    facts = [MemberFacts(joined_at=now - timedelta(days=i % 500), rank=i + 1,
                         current_tier="Hajra" if i % 3 else None, highest_tier="Usul" if i % 7 == 0 else None,
                         activity=Decimal(i % 300), conviction=Decimal(i % 20000),
                         held_badges=frozenset({"og"}) if i % 5 == 0 else frozenset()) for i in range(members)]
    rates = []
    for _ in range(rounds):
        ev = ThemeEvaluator(THEMES["sietch"])
        t = time.perf_counter()
        ev.evaluate_many(facts, now, members)
        rates.append(members / (time.perf_counter() - t))
    return statistics.median(rates), max(rates)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holders", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=100_000, help="members for the evaluation throughput")
    args = parse_args(ap, holders=20, members=2000)

    with scratch_database() as url:
        return run(args, url)


def run(args, url: str) -> int:
    anvil = start_anvil()
    engine = build_engine(Settings.from_env({
        "DATABASE_URL": url, "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "ARRAKIS_DATA_DIR": tempfile.mkdtemp(prefix="arrakis-bench-"), "RPC_URLS_BERACHAIN": anvil.url},
        env_file=None))
    try:
        engine.migrator.upgrade()
        kit = ChainKit(anvil.url)
        t0 = time.perf_counter()
        token = kit.deploy("TestERC20", "Rank", "RNK", 18)
        nft = kit.deploy("TestERC721", "Pass", "PASS")
        wallets = [holder(i) for i in range(args.holders)]
        checksummed = [kit.w3.to_checksum_address(w) for w in wallets]
        for i in range(0, len(wallets), 1000):
            part = checksummed[i:i + 1000]
            kit.send(token.functions.mintMany(part, [10**18 * (i + j + 1) for j in range(len(part))]))
            kit.send(nft.functions.mintMany(part, i + 1))
        print(f"chain: minted {args.holders} ERC-20 balances and {args.holders} ERC-721 tokens "
              f"in {time.perf_counter() - t0:.1f}s")

        community = engine.communities.create(name="Bench", guild_id="123456789012300029", theme_id="sietch",
                                              subscription="premium", actor="bench")
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            ids = [uuid.uuid4() for _ in wallets]
            now = datetime.now(timezone.utc)
            psycopg2.extras.execute_values(cur, "INSERT INTO profiles (id, community_id, discord_id, joined_at) VALUES %s",
                                           [(str(p), str(community.id), str(10**17 + i), now - timedelta(days=i % 400))
                                            for i, p in enumerate(ids)], page_size=2000)
            psycopg2.extras.execute_values(cur, "INSERT INTO wallet_links (community_id, profile_id, wallet_address, "
                                                "source) VALUES %s",
                                           [(str(community.id), str(p), w, "import") for p, w in zip(ids, wallets)],
                                           page_size=2000)
        conn.close()

        sync = engine.eligibility
        sync.configure(community.id, Asset("berachain", "erc20", token.address), purpose="rank")
        sync.configure(community.id, Asset("berachain", "erc721", nft.address), purpose="gate", min_amount=1)
        reads = args.holders * 2
        for label in ("first sync (everyone joins)", "second sync (steady state)"):
            diff = sync.run(community.id, actor="bench")
            print(f"\n{label}: {diff.summary()}")
            print(f"  JSON-RPC requests: {diff.chain_requests} for {reads} reads "
                  f"(1 request per {reads / max(diff.chain_requests, 1):.0f} reads; target >= 500)  "
                  f"{'PASS' if diff.chain_requests * 500 <= reads else 'FAIL'}")
            print(f"  wall time: {diff.seconds:.2f} s for {args.holders} members (target < 5 s)  "
                  f"{'PASS' if diff.seconds < 5 else 'FAIL'}")
        plain = diff.chain_requests
        lists = Path(tempfile.mkdtemp(prefix="arrakis-bench-lists-"))
        (lists / "banned.csv").write_text("".join(w + "\n" for w in wallets[::50]))
        (lists / "vip.csv").write_text("".join(w + "\n" for w in wallets[::7]))
        t = time.perf_counter()
        engine.gating.import_allowlist(community.id, "banned", lists / "banned.csv", actor="bench")
        engine.gating.import_allowlist(community.id, "vip", lists / "vip.csv", actor="bench")
        print(f"\nallowlists: {len(wallets[::50]) + len(wallets[::7])} addresses imported in "
              f"{time.perf_counter() - t:.2f} s")
        engine.gating.set_rule(community.id, five_requirements(token.address, nft.address), actor="bench")
        gated = sync.run(community.id, actor="bench")
        print(f"sync with a 5-requirement rule: {gated.summary()}")
        print(f"  JSON-RPC requests: {gated.chain_requests} (without the rule: {plain})  "
              f"{'PASS' if gated.chain_requests == plain else 'FAIL'}")
        grate, gbest, counts = rule_throughput(args.members)
        print(f"gating rule evaluation: median {grate:,.0f} evaluations/s (best {gbest:,.0f}) over "
              f"{args.members:,} members, 5 rounds; {counts}  (target >= 100,000)  "
              f"{'PASS' if grate >= 100_000 else 'FAIL'}")
        hrate, hbest, hcounts = held_for_throughput(args.members)
        print(f"held_for from the holdings history: median {hrate:,.0f} members/s (best {hbest:,.0f}) over "
              f"{args.members:,} members, 3 changes per wallet in the period, 5 rounds; {hcounts}")
        rate, best = evaluation_throughput(args.members)
        print(f"\ntier + badge evaluation: median {rate:,.0f} members/s (best {best:,.0f}) over "
              f"{args.members:,} members, 5 rounds (target >= 200,000)  {'PASS' if rate >= 200_000 else 'FAIL'}")
        return 0
    finally:
        engine.close()
        anvil.stop()


if __name__ == "__main__":
    sys.exit(main())
