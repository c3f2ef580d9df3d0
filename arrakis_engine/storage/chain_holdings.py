"""SQL for chain data per community: eligibility assets, Transfer-log index state, holdings."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Iterable, Sequence

from ..domain.chain import Asset
from .database import Database


class CommunityAssetRepository:
    """Which assets decide eligibility in the community (tenant)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, asset: Asset, *, purpose: str = "gate", min_amount: int | Decimal = 0) -> None:
        self.db.current().execute(
            """INSERT INTO community_assets (community_id, asset_key, spec, purpose, min_amount)
               VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (community_id, asset_key)
               DO UPDATE SET spec = EXCLUDED.spec, purpose = EXCLUDED.purpose, min_amount = EXCLUDED.min_amount""",
            (self.db.current_tenant(), asset.key, asset.as_dict(), purpose, min_amount))

    def remove(self, asset_key: str) -> None:
        self.db.current().execute("DELETE FROM community_assets WHERE asset_key = %s", (asset_key,))

    def all(self) -> list[tuple[Asset, str, Decimal]]:
        rows = self.db.current().all(
            "SELECT spec, purpose, min_amount FROM community_assets ORDER BY purpose DESC, asset_key")
        return [(Asset.from_dict(r["spec"]), r["purpose"], r["min_amount"]) for r in rows]


class HoldingsRepository:
    """Balances built from Transfer logs (tenant)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def lock_index(self, asset_key: str) -> tuple[int, int] | None:
        """Hold the asset's index for this transaction (one writer at a time: an indexer page or
        a watcher step) and return its state as it is now."""
        self.db.current().execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                  (f"asset-index:{self.db.current_tenant()}:{asset_key}",))
        return self.state(asset_key)

    def state(self, asset_key: str) -> tuple[int, int] | None:
        row = self.db.current().one(
            "SELECT last_block, page_size FROM asset_index_state WHERE asset_key = %s", (asset_key,))
        return None if row is None else (row["last_block"], row["page_size"])

    def save_state(self, asset_key: str, last_block: int, page_size: int, *, at: int | None = None) -> None:
        """An indexer page. ``at``: the unix time of ``last_block``, when the page's changes were
        kept in the holdings history block by block; without it the history (held_for) starts
        again at the watcher's next step."""
        self.db.current().execute(
            """INSERT INTO asset_index_state (community_id, asset_key, last_block, page_size, updated_at)
               VALUES (%s, %s, %s, %s, now())
               ON CONFLICT (community_id, asset_key)
               DO UPDATE SET last_block = EXCLUDED.last_block, page_size = EXCLUDED.page_size, updated_at = now(),
                             history_from_block = CASE WHEN %s THEN asset_index_state.history_from_block END,
                             history_from_at = CASE WHEN %s THEN asset_index_state.history_from_at END,
                             last_block_at = %s""",
            (self.db.current_tenant(), asset_key, last_block, page_size, at is not None, at is not None,
             None if at is None else datetime.fromtimestamp(at, timezone.utc)))

    def history_state(self, asset_keys: Sequence[str]) -> dict[str, dict]:
        """asset key -> {history_from_at, last_block_at, ...} of indexes whose history is kept (a
        held_for rule names the asset, and the watcher has started it)."""
        rows = self.db.current().all(
            """SELECT s.asset_key, s.last_block, s.last_block_at, s.history_from_block, s.history_from_at
                 FROM asset_index_state s JOIN community_assets a USING (community_id, asset_key)
                WHERE s.asset_key = ANY(%s) AND a.history_days IS NOT NULL
                  AND s.history_from_at IS NOT NULL AND s.last_block_at IS NOT NULL""",
            (list(asset_keys),))
        return {r["asset_key"]: r for r in rows}

    def history(self, asset_key: str, addresses: Sequence[str], since) -> tuple[dict[str, int], list[tuple]]:
        """The balances of ``addresses`` at ``since`` (as the history and the index know them) and
        their changes after it: ({address: balance}, [(at, block, address, balance after)] oldest
        first). The history must be complete from ``since`` on (the caller checks)."""
        tx = self.db.current()
        addresses = list(addresses)
        before = tx.all(
            """SELECT DISTINCT ON (address) address, balance FROM asset_holding_changes
                WHERE asset_key = %s AND address = ANY(%s) AND at <= %s ORDER BY address, block DESC""",
            (asset_key, addresses, since))
        after = tx.all(
            """SELECT at, block, address, delta, balance FROM asset_holding_changes
                WHERE asset_key = %s AND address = ANY(%s) AND at > %s ORDER BY block, address""",
            (asset_key, addresses, since))
        start = {r["address"]: int(r["balance"]) for r in before}
        for r in after:  # the first change after `since` says what the balance was before it
            if r["address"] not in start:
                start[r["address"]] = int(r["balance"]) - int(r["delta"])
        missing = [a for a in addresses if a not in start]
        if missing:  # no change since: the balance is the index's now
            start.update(self.balances_of(asset_key, missing))
        return start, [(r["at"], int(r["block"]), r["address"], int(r["balance"])) for r in after]

    def apply(self, asset_key: str, deltas: dict[str, int], redeemed: Iterable[str], block: int, *,
              history: Sequence[tuple[int, int, str, int]] | None = None) -> None:
        """Add balance changes and mark wallets that sent the asset to the zero address.
        ``history``: the same changes block by block, ``(block, unix time, address, delta)``, to
        keep in the holdings history with the balance after each block."""
        redeemed = set(redeemed)
        tenant = self.db.current_tenant()
        rows = [(tenant, asset_key, a, d, a in redeemed, block) for a, d in deltas.items()]
        rows += [(tenant, asset_key, a, 0, True, block) for a in redeemed - deltas.keys()]
        if not rows:
            return
        done = self.db.current().execute_values(
            """INSERT INTO asset_holdings (community_id, asset_key, address, balance, ever_redeemed, updated_block)
               VALUES %s
               ON CONFLICT (community_id, asset_key, address) DO UPDATE
               SET balance = asset_holdings.balance + EXCLUDED.balance,
                   ever_redeemed = asset_holdings.ever_redeemed OR EXCLUDED.ever_redeemed,
                   updated_block = EXCLUDED.updated_block
               RETURNING address, balance""", rows)
        if not history:
            return
        balance = {a: int(b) for a, b in done}
        out = []
        for b, at, a, d in sorted(history, key=lambda h: -h[0]):  # newest first: the balance after each block
            out.append((tenant, asset_key, a, b, datetime.fromtimestamp(at, timezone.utc), d, balance[a]))
            balance[a] -= d
        self.db.current().execute_values(
            """INSERT INTO asset_holding_changes (community_id, asset_key, address, block, at, delta, balance)
               VALUES %s
               ON CONFLICT (community_id, asset_key, address, block) DO UPDATE
               SET at = EXCLUDED.at, delta = EXCLUDED.delta, balance = EXCLUDED.balance""", out, page_size=1000)

    def ranked(self, asset_key: str, *, exclude_redeemed: bool = False, limit: int | None = None) -> list[tuple]:
        """(rank, address, balance) of holders with a positive balance, richest first."""
        sql = ("SELECT address, balance FROM asset_holdings WHERE asset_key = %s AND balance > 0"
               + (" AND NOT ever_redeemed" if exclude_redeemed else "") + " ORDER BY balance DESC, address")
        params: list = [asset_key]
        if limit:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [(i + 1, r["address"], r["balance"]) for i, r in enumerate(self.db.current().all(sql, params))]

    def ranks_of(self, asset_key: str, addresses: Sequence[str], *, exclude_redeemed: bool = False) -> dict[str, int]:
        """Rank among all indexed holders for each of these addresses (absent: not a holder)."""
        rows = self.db.current().all(
            f"""SELECT address, rank FROM (
                    SELECT address, row_number() OVER (ORDER BY balance DESC, address) AS rank
                      FROM asset_holdings WHERE asset_key = %s AND balance > 0
                      {"AND NOT ever_redeemed" if exclude_redeemed else ""}) r
                 WHERE address = ANY(%s)""", (asset_key, list(addresses)))
        return {r["address"]: int(r["rank"]) for r in rows}

    def balances_of(self, asset_key: str, addresses: Sequence[str]) -> dict[str, int]:
        """Indexed balances of these addresses (0 for an address the index never saw move the
        asset: the index holds every transfer since the asset's first block)."""
        rows = self.db.current().all(
            "SELECT address, balance FROM asset_holdings WHERE asset_key = %s AND address = ANY(%s)",
            (asset_key, list(addresses)))
        found = {r["address"]: int(r["balance"]) for r in rows}
        return {a: found.get(a, 0) for a in addresses}

    def redeemed(self, asset_key: str, addresses: Sequence[str]) -> dict[str, bool]:
        rows = self.db.current().all(
            "SELECT address, ever_redeemed FROM asset_holdings WHERE asset_key = %s AND address = ANY(%s)",
            (asset_key, list(addresses)))
        return {r["address"]: r["ever_redeemed"] for r in rows}
