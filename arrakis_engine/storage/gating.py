"""SQL for gating rules (tenant): rules, allowlists, snapshot balances (held_for reads the holdings
history: storage/chain_holdings.py)."""

from __future__ import annotations

import io
from typing import Iterable, Sequence

from .database import Database


class GatingRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def member(self, discord_id: str) -> dict | None:
        """One member's profile id, tier, rank and linked wallets (as the eligibility sync reads them)."""
        return self.db.current().one(
            """SELECT p.id, p.discord_id, p.tier, p.rank,
                      coalesce((SELECT array_agg(w.wallet_address ORDER BY w.wallet_address) FROM wallet_links w
                                 WHERE w.profile_id = p.id),
                               CASE WHEN p.wallet_address IS NULL THEN '{}'::text[]
                                    ELSE ARRAY[p.wallet_address] END) AS wallets
                 FROM profiles p WHERE p.discord_id = %s""", (discord_id,))

    # --- rules ------------------------------------------------------------------------------------

    def put_rule(self, tier: str, rule: dict, checksum: str, *, actor: str) -> None:
        self.db.current().execute(
            """INSERT INTO gate_rules (community_id, tier, rule, checksum, updated_by, updated_at)
               VALUES (%s, %s, %s, %s, %s, now())
               ON CONFLICT (community_id, tier) DO UPDATE
               SET rule = EXCLUDED.rule, checksum = EXCLUDED.checksum, updated_by = EXCLUDED.updated_by,
                   updated_at = now()""",
            (self.db.current_tenant(), tier, rule, checksum, actor))

    def remove_rule(self, tier: str) -> bool:
        return self.db.current().execute("DELETE FROM gate_rules WHERE tier = %s", (tier,)).rowcount > 0

    def rules(self) -> dict[str, dict]:
        """tier ('' for membership) -> {rule, checksum, updated_by, updated_at}."""
        rows = self.db.current().all("SELECT tier, rule, checksum, updated_by, updated_at FROM gate_rules ORDER BY tier")
        return {r["tier"]: r for r in rows}

    def follow_assets(self, specs: dict[str, dict], history: dict[str, int] | None = None) -> None:
        """Keep exactly these assets (key -> Asset.as_dict()) as the rules' in community_assets
        (purpose 'rule'), for the watcher; an asset that ranks or gates keeps its purpose.
        ``history``: asset key -> the longest held_for period naming it; the watcher keeps those
        assets' holdings history (``history_days``). An asset followed without a history that now
        needs one, or one that no longer does, starts its history again (none was kept meanwhile)."""
        history = history or {}
        tx = self.db.current()
        tx.execute("DELETE FROM community_assets WHERE purpose = 'rule' AND NOT (asset_key = ANY(%s))",
                   (sorted(specs),))
        stale = [r["asset_key"] for r in tx.all(
            "SELECT asset_key FROM community_assets WHERE (history_days IS NULL) = (asset_key = ANY(%s))",
            (sorted(history),))]
        if stale:
            tx.execute("UPDATE asset_index_state SET history_from_block = NULL, history_from_at = NULL "
                       "WHERE asset_key = ANY(%s)", (stale,))
            tx.execute("DELETE FROM asset_holding_changes WHERE asset_key = ANY(%s)", (stale,))
        tx.execute("UPDATE community_assets SET history_days = NULL WHERE NOT (asset_key = ANY(%s))", (sorted(history),))
        if specs:
            tenant = self.db.current_tenant()
            tx.execute_values(
                "INSERT INTO community_assets (community_id, asset_key, spec, purpose, min_amount, history_days) "
                "VALUES %s ON CONFLICT (community_id, asset_key) DO UPDATE SET history_days = EXCLUDED.history_days",
                [(tenant, k, spec, "rule", 0, history.get(k)) for k, spec in sorted(specs.items())])

    # --- allowlists -------------------------------------------------------------------------------

    def replace_allowlist(self, name: str, addresses: Sequence[str], *, actor: str) -> int:
        """Make the list exactly ``addresses`` (lower-case, distinct): COPY into a temporary table,
        then one INSERT ... SELECT (COPY cannot write a table under row-level security)."""
        tx = self.db.current()
        tenant = self.db.current_tenant()
        tx.execute(
            """INSERT INTO allowlists (community_id, name, size, imported_by, imported_at)
               VALUES (%s, %s, %s, %s, now())
               ON CONFLICT (community_id, name) DO UPDATE
               SET size = EXCLUDED.size, imported_by = EXCLUDED.imported_by, imported_at = now()""",
            (tenant, name, len(addresses), actor))
        tx.execute("DELETE FROM allowlist_entries WHERE name = %s", (name,))
        tx.execute("CREATE TEMP TABLE IF NOT EXISTS allowlist_load (address text) ON COMMIT DROP")
        tx.execute("TRUNCATE allowlist_load")
        cur = tx.conn.cursor()
        cur.copy_expert("COPY allowlist_load (address) FROM STDIN", io.StringIO("".join(a + "\n" for a in addresses)))
        tx.execute("INSERT INTO allowlist_entries (community_id, name, address) "
                   "SELECT %s, %s, address FROM allowlist_load", (tenant, name))
        return len(addresses)

    def allowlists(self) -> list[dict]:
        return self.db.current().all("SELECT name, size, imported_by, imported_at FROM allowlists ORDER BY name")

    def allowlist_names(self) -> set[str]:
        return {r["name"] for r in self.db.current().all("SELECT name FROM allowlists")}

    def allowlisted(self, names: Iterable[str], addresses: Sequence[str]) -> dict[str, frozenset]:
        """name -> which of ``addresses`` are on it, for the lists that exist (a missing list is absent)."""
        names = sorted(set(names))
        if not names:
            return {}
        tx = self.db.current()
        existing = {r["name"] for r in tx.all("SELECT name FROM allowlists WHERE name = ANY(%s)", (names,))}
        out: dict[str, set] = {n: set() for n in existing}
        if existing and addresses:
            rows = tx.all("SELECT name, address FROM allowlist_entries WHERE name = ANY(%s) AND address = ANY(%s)",
                          (sorted(existing), list(addresses)))
            for r in rows:
                out[r["name"]].add(r["address"])
        return {n: frozenset(v) for n, v in out.items()}

    # --- snapshots --------------------------------------------------------------------------------

    def snapshot_balances(self, asset_key: str, block: int, addresses: Sequence[str]) -> dict[str, int]:
        rows = self.db.current().all(
            "SELECT address, balance FROM gate_snapshot_balances WHERE asset_key = %s AND block = %s "
            "AND address = ANY(%s)", (asset_key, block, list(addresses)))
        return {r["address"]: int(r["balance"]) for r in rows}

    def keep_snapshot(self, asset_key: str, block: int, balances: dict[str, int]) -> None:
        if balances:
            tenant = self.db.current_tenant()
            self.db.current().execute_values(
                "INSERT INTO gate_snapshot_balances (community_id, asset_key, block, address, balance) VALUES %s "
                "ON CONFLICT DO NOTHING", [(tenant, asset_key, block, a, b) for a, b in balances.items()],
                page_size=1000)
