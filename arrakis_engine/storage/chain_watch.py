"""SQL for the live watcher (platform): its place on each chain, recent block hashes, and the
holdings changes of each block (to undo one that disappears). Holdings are written for every
community in one platform transaction, so a step lands whole or not at all."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import Iterable

from .database import Database


class ChainWatchRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def last_block(self, chain: str) -> int | None:
        return self.db.current().scalar("SELECT last_block FROM chain_watch WHERE chain = %s", (chain,))

    def set_last_block(self, chain: str, number: int) -> None:
        self.db.current().execute(
            """INSERT INTO chain_watch (chain, last_block, updated_at) VALUES (%s, %s, now())
               ON CONFLICT (chain) DO UPDATE SET last_block = EXCLUDED.last_block, updated_at = now()""",
            (chain, number))

    def remember_blocks(self, chain: str, hashes: dict[int, str]) -> None:
        if hashes:
            self.db.current().execute_values(
                """INSERT INTO chain_watch_blocks (chain, number, hash) VALUES %s
                   ON CONFLICT (chain, number) DO UPDATE SET hash = EXCLUDED.hash""",
                [(chain, n, h) for n, h in hashes.items()])

    def blocks_from(self, chain: str, newest: int) -> list[tuple[int, str]]:
        """Remembered (number, hash) at or below ``newest``, newest first."""
        rows = self.db.current().all(
            "SELECT number, hash FROM chain_watch_blocks WHERE chain = %s AND number <= %s ORDER BY number DESC",
            (chain, newest))
        return [(r["number"], r["hash"]) for r in rows]

    def members_among(self, moved: dict[str, set[str]]) -> dict[str, set[str]]:
        """Of the addresses that moved in each community's assets, those that are its members'
        wallets (linked, or a profile's own); communities where no member moved are left out:
        ranks are among members, so a transfer between outsiders changes nobody's standing."""
        addresses = sorted({a for moved_here in moved.values() for a in moved_here})
        if not addresses:
            return {}
        rows = self.db.current().all(
            """SELECT community_id::text AS community, wallet_address FROM wallet_links WHERE wallet_address = ANY(%s)
               UNION
               SELECT community_id::text, wallet_address FROM profiles WHERE wallet_address = ANY(%s)""",
            (addresses, addresses))
        members: dict[str, set[str]] = {}
        for r in rows:
            if r["wallet_address"] in moved.get(r["community"], ()):
                members.setdefault(r["community"], set()).add(r["wallet_address"])
        return members

    def tracked_assets(self, chain: str) -> list[dict]:
        """Every community asset on this chain that has a contract, with its index state (None:
        never indexed, so its holdings are not kept here)."""
        return self.db.current().all(
            """SELECT a.community_id, a.asset_key, a.spec, s.last_block AS indexed_to, s.history_from_at,
                      a.history_days
                 FROM community_assets a
                 LEFT JOIN asset_index_state s USING (community_id, asset_key)
                WHERE a.spec->>'chain' = %s AND a.spec->>'kind' IN ('erc20', 'erc721', 'erc1155')""", (chain,))

    def apply(self, chain: str, changes: list[tuple[int, str, str, str, int, bool]],
              times: dict[int, int] | None = None, history: set[tuple[str, str]] | None = None) -> None:
        """Record and apply (block, community, asset, address, delta, redeemed) changes; with
        ``times`` (block -> unix time), keep each block's change and the balance after it in the
        holdings history (asset_holding_changes) of the (community, asset) pairs in ``history``."""
        if not changes:
            return
        tx = self.db.current()
        redeemers = {(c, a, addr) for _, c, a, addr, _, r in changes if r}
        already: set[tuple] = set()
        if redeemers:
            rows = tx.all(
                """SELECT community_id::text AS c, asset_key, address FROM asset_holdings
                    WHERE ever_redeemed AND (community_id::text, asset_key, address) IN
                          (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))""",
                ([c for c, _, _ in redeemers], [a for _, a, _ in redeemers], [x for _, _, x in redeemers]))
            already = {(r["c"], r["asset_key"], r["address"]) for r in rows}
        first_redeem: set[tuple] = set()
        delta_rows = []
        for block, c, a, addr, delta, redeemed in changes:
            new = redeemed and (c, a, addr) not in already and (c, a, addr) not in first_redeem
            if new:
                first_redeem.add((c, a, addr))
            delta_rows.append((chain, block, c, a, addr, delta, new))
        tx.execute_values(
            """INSERT INTO chain_watch_deltas (chain, number, community_id, asset_key, address, delta, newly_redeemed)
               VALUES %s""", delta_rows)
        totals: dict[tuple, list] = defaultdict(lambda: [0, False, 0])
        for block, c, a, addr, delta, redeemed in changes:
            t = totals[(c, a, addr)]
            t[0] += delta
            t[1] = t[1] or redeemed
            t[2] = max(t[2], block)
        rows = tx.execute_values(
            """INSERT INTO asset_holdings (community_id, asset_key, address, balance, ever_redeemed, updated_block)
               VALUES %s
               ON CONFLICT (community_id, asset_key, address) DO UPDATE
               SET balance = asset_holdings.balance + EXCLUDED.balance,
                   ever_redeemed = asset_holdings.ever_redeemed OR EXCLUDED.ever_redeemed,
                   updated_block = EXCLUDED.updated_block
               RETURNING community_id::text AS c, asset_key, address, balance""",
            [(c, a, addr, t[0], t[1], t[2]) for (c, a, addr), t in totals.items()])
        if times is None or not history:
            return
        final = {(c, a, addr): int(balance) for c, a, addr, balance in rows}
        per_block: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for block, c, a, addr, delta, _ in changes:
            if (c, a) in history:
                per_block[(c, a, addr)][block] += delta
        rows_out = []
        for k, blocks in per_block.items():
            balance = final[k]
            for block in sorted(blocks, reverse=True):  # the balance after each block, newest first
                rows_out.append((k[0], k[1], k[2], block, datetime.fromtimestamp(times[block], timezone.utc),
                                blocks[block], balance))
                balance -= blocks[block]
        if rows_out:
            tx.execute_values(
                """INSERT INTO asset_holding_changes (community_id, asset_key, address, block, at, delta, balance)
                   VALUES %s
                   ON CONFLICT (community_id, asset_key, address, block) DO UPDATE
                   SET at = EXCLUDED.at, delta = EXCLUDED.delta, balance = EXCLUDED.balance""", rows_out, page_size=1000)

    def lock_indexes(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
        """Hold these (community, asset) indexes for this transaction (the lock an indexer page
        takes), in one order so two holders never wait on each other; returns each one's last
        indexed block now (None: no index)."""
        keys = sorted(set(keys))
        tx = self.db.current()
        for c, a in keys:
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"asset-index:{c}:{a}",))
        if not keys:
            return {}
        rows = tx.all("""SELECT community_id::text AS c, asset_key, last_block FROM asset_index_state
                          WHERE (community_id::text, asset_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))""",
                      ([c for c, _ in keys], [a for _, a in keys]))
        found = {(r["c"], r["asset_key"]): int(r["last_block"]) for r in rows}
        return {k: found.get(k) for k in keys}

    def advance_indexes(self, keys: Iterable[tuple[str, str]], to_block: int, *, at: int | None = None,
                        history: Iterable[tuple[str, str]] = ()) -> None:
        """The assets' own index state follows the watcher (so a later full index resumes after it).
        ``at``: the unix time of ``to_block``; the indexes in ``history`` (their holdings history is
        kept) note it, and one whose history has not started yet starts it there (the watcher keeps
        every change from then on)."""
        keys = sorted(set(keys))
        if not keys:
            return
        tx = self.db.current()
        tx.execute(
            """UPDATE asset_index_state SET last_block = %s, updated_at = now()
                WHERE (community_id::text, asset_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
                  AND last_block < %s""", (to_block, [c for c, _ in keys], [a for _, a in keys], to_block))
        keep = sorted(set(history) & set(keys))
        if keep and at is not None:
            when = datetime.fromtimestamp(at, timezone.utc)
            tx.execute(
                """UPDATE asset_index_state SET last_block_at = %s,
                          history_from_block = COALESCE(history_from_block, %s),
                          history_from_at = COALESCE(history_from_at, %s)
                    WHERE (community_id::text, asset_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
                      AND last_block = %s""",
                (when, to_block, when, [c for c, _ in keep], [a for _, a in keep], to_block))

    def start_histories(self, keys: Iterable[tuple[str, str]], block: int, at: int) -> None:
        """Indexes that stand at ``block`` (unix time ``at``) with no history yet start it there."""
        keys = sorted(set(keys))
        if keys:
            when = datetime.fromtimestamp(at, timezone.utc)
            self.db.current().execute(
                """UPDATE asset_index_state SET history_from_block = %s, history_from_at = %s, last_block_at = %s
                    WHERE (community_id::text, asset_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
                      AND last_block = %s AND history_from_at IS NULL""",
                (block, when, when, [c for c, _ in keys], [a for _, a in keys], block))

    def prune_history(self, chain: str) -> int:
        """Forget holdings history older than what the held_for rules naming each asset can ask
        (its longest period and a day), and say the history starts there now. Returns rows removed."""
        tx = self.db.current()
        cut = """SELECT a.community_id, a.asset_key,
                        s.last_block_at - make_interval(days => a.history_days + 1) AS before
                   FROM community_assets a JOIN asset_index_state s USING (community_id, asset_key)
                  WHERE a.history_days IS NOT NULL AND s.last_block_at IS NOT NULL
                    AND split_part(a.asset_key, ':', 1) = %s"""
        gone = tx.execute(f"""DELETE FROM asset_holding_changes h USING ({cut}) p
                               WHERE h.community_id = p.community_id AND h.asset_key = p.asset_key
                                 AND h.at < p.before""", (chain,)).rowcount
        tx.execute(f"""UPDATE asset_index_state s SET history_from_at = p.before FROM ({cut}) p
                        WHERE s.community_id = p.community_id AND s.asset_key = p.asset_key
                          AND s.history_from_at < p.before""", (chain,))
        return gone

    def undo_after(self, chain: str, ancestor: int) -> dict[str, set[str]]:
        """Take back every change of blocks after ``ancestor`` (a reorg): balances, first
        redemptions, remembered blocks, index states. Returns community -> addresses touched."""
        tx = self.db.current()
        rows = tx.all(
            """SELECT community_id::text AS c, asset_key, address, sum(delta) AS delta, bool_or(newly_redeemed) AS r
                 FROM chain_watch_deltas WHERE chain = %s AND number > %s
                GROUP BY 1, 2, 3""", (chain, ancestor))
        touched: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            tx.execute(
                """UPDATE asset_holdings SET balance = balance - %s,
                          ever_redeemed = CASE WHEN %s THEN false ELSE ever_redeemed END
                    WHERE community_id = %s AND asset_key = %s AND address = %s""",
                (r["delta"], r["r"], r["c"], r["asset_key"], r["address"]))
            touched[r["c"]].add(r["address"])
        # every index of this chain goes back to the ancestor (the watcher reads the new branch
        # for all of them), not only those the removed blocks changed
        tx.execute("""UPDATE asset_index_state s SET last_block = %s, updated_at = now()
                        FROM community_assets a
                       WHERE a.community_id = s.community_id AND a.asset_key = s.asset_key
                         AND a.spec->>'chain' = %s AND s.last_block > %s""", (ancestor, chain, ancestor))
        tx.execute("DELETE FROM asset_holding_changes WHERE split_part(asset_key, ':', 1) = %s AND block > %s",
                   (chain, ancestor))
        tx.execute("DELETE FROM chain_watch_deltas WHERE chain = %s AND number > %s", (chain, ancestor))
        tx.execute("DELETE FROM chain_watch_blocks WHERE chain = %s AND number > %s", (chain, ancestor))
        return dict(touched)

    def prune(self, chain: str, below: int) -> None:
        """Forget blocks and changes too old to be reorganised (kept: the newest ``keep`` blocks)."""
        tx = self.db.current()
        tx.execute("DELETE FROM chain_watch_deltas WHERE chain = %s AND number < %s", (chain, below))
        tx.execute("DELETE FROM chain_watch_blocks WHERE chain = %s AND number < %s", (chain, below))
