"""Native holder ranking: index an asset's Transfer logs into per-community balances.

The index is built when an asset is added (``arrakis eligibility add-asset``), and by the live
watcher for any tracked asset that has none (however the community was set up: the wizard, the
bot); the watcher then keeps it. It never reads past the block it is told to stop at: the
confirmed block (the head less ``CONFIRMATIONS_<CHAIN>``), or the watcher's own position.

ERC-20 and ERC-721 ``Transfer`` logs, ERC-1155 ``TransferSingle`` and ``TransferBatch`` of the
asset's token id (decoded by :func:`arrakis_engine.chain.watcher.transfers`, as the live watcher
does). Paged ``eth_getLogs``: the page starts at ``page_size`` blocks, halves whenever the node refuses
a range as too large, and doubles again after each page that worked (up to ``max_page_size``).
Each page's balance changes and the new "last indexed block" are written in one tenant
transaction, so an interrupted run resumes from the last page that landed, never counting a
log twice. A transfer to the zero address marks the sender as having redeemed the asset (for
the per-asset "never redeemed" rule). An index that already keeps its holdings history (the
watcher started it; held_for reads it) and is caught up here keeps it block by block, with each
block's time; a first build keeps none (the watcher's next step starts it).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Callable

from ..errors import ValidationError
from ..ports import BlockSource
from ..storage.chain_holdings import HoldingsRepository
from ..storage.database import Database
from ..domain.chain import Asset, ChainReadError
from .watcher import TRANSFER as TRANSFER_TOPIC
from .watcher import TRANSFER_BATCH, TRANSFER_SINGLE, counts_for, transfers

log = logging.getLogger(__name__)

ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class IndexReport:
    from_block: int
    to_block: int
    pages: int
    logs: int
    refused_ranges: int
    page_size: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class HolderIndexer:
    def __init__(self, db: Database, reader: BlockSource, *, page_size: int = 10_000,
                 max_page_size: int = 500_000) -> None:
        self.db = db
        self.reader = reader
        self.holdings = HoldingsRepository(db)
        self.page_size = page_size
        self.max_page_size = max_page_size

    def index(self, community_id: uuid.UUID | str, asset: Asset, *, from_block: int = 0,
              to_block: int | None = None, progress: Callable[[int, int], None] | None = None) -> IndexReport:
        if asset.kind not in ("erc20", "erc721", "erc1155"):
            raise ValidationError("native ranking indexes ERC-20, ERC-721 and ERC-1155 transfer logs only",
                                  field="kind")
        topics = (TRANSFER_TOPIC,) if asset.kind != "erc1155" else (TRANSFER_SINGLE, TRANSFER_BATCH)
        head = self.reader.block_number() if to_block is None else to_block
        with self.db.tenant(community_id):
            state = self.holdings.state(asset.key)
        start = state[0] + 1 if state else from_block
        page = state[1] if state else self.page_size
        with self.db.tenant(community_id):
            keeps = bool(state) and asset.key in self.holdings.history_state([asset.key])
        first, pages, logs_seen, refused = start, 0, 0, 0
        while start <= head:
            end = min(start + page - 1, head)
            try:
                logs = self.reader.get_logs_many([asset.address], topics, start, end)
            except ChainReadError:
                raise
            except ValueError:  # the node refused the range as too large (RangeRefused)
                refused += 1
                if page == 1:
                    raise ChainReadError(f"the node refuses even a single block of {asset.key} logs")
                page = max(1, page // 2)
                log.info("node refused %d blocks of logs; trying %d", end - start + 1, page)
                continue
            deltas, redeemed = self._changes(asset, logs)
            next_page = min(page * 2, self.max_page_size)
            # An index that keeps its history (held_for reads it) keeps it over this page too:
            # each block's changes with the block's time (a catch-up, not a first build).
            history = self._history(asset, logs, end) if keeps else None
            with self.db.tenant(community_id):
                now = self.holdings.lock_index(asset.key)
                if (now[0] if now else from_block - 1) != start - 1:  # another indexer (or the watcher) moved it
                    start = (now[0] if now else from_block - 1) + 1
                    continue
                self.holdings.apply(asset.key, deltas, redeemed, end, history=history and history[0])
                self.holdings.save_state(asset.key, end, next_page, at=history[1] if history else None)
            keeps = history is not None
            pages += 1
            logs_seen += len(logs)
            start, page = end + 1, next_page
            if progress:
                progress(end - first + 1, head - first + 1)
        return IndexReport(first, head, pages, logs_seen, refused, page)

    def _history(self, asset: Asset, logs: list[dict], end: int) -> tuple[list[tuple], int] | None:
        """([(block, unix time, address, delta)], time of ``end``) of a page, or None when a block's
        time cannot be read (the history then starts again at the watcher's next step)."""
        from .watcher import _hex

        per_block: dict[tuple[int, str], int] = {}
        times: dict[int, int] = {}
        for entry in logs:
            block = int(_hex(entry["blockNumber"]), 16) if isinstance(entry["blockNumber"], str) \
                else int(entry["blockNumber"])
            stamp = entry.get("blockTimestamp")
            if stamp is not None:
                times[block] = int(stamp, 16) if isinstance(stamp, str) else int(stamp)
            for sender, receiver, token_id, amount in transfers(entry):
                if not counts_for(asset, entry, token_id):
                    continue
                if sender != ZERO:
                    per_block[(block, sender)] = per_block.get((block, sender), 0) - amount
                if receiver != ZERO:
                    per_block[(block, receiver)] = per_block.get((block, receiver), 0) + amount
        try:
            for number in sorted({b for b, _ in per_block} - times.keys()) + [end]:
                header = self.reader.block_header(number)
                if header is None:
                    return None
                times[number] = header["timestamp"]
        except ChainReadError:
            return None
        return [(b, times[b], a, d) for (b, a), d in per_block.items()], times[end]

    @staticmethod
    def _changes(asset: Asset, logs: list[dict]) -> tuple[dict[str, int], set[str]]:
        deltas: dict[str, int] = {}
        redeemed: set[str] = set()
        for entry in logs:
            for sender, receiver, token_id, amount in transfers(entry):
                if not counts_for(asset, entry, token_id):
                    continue
                if sender != ZERO:
                    deltas[sender] = deltas.get(sender, 0) - amount
                if receiver != ZERO:
                    deltas[receiver] = deltas.get(receiver, 0) + amount
                elif sender != ZERO:
                    redeemed.add(sender)
        return deltas, redeemed
