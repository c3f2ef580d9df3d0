"""The live watcher of one chain: follows new blocks, reads the tracked assets' transfers, keeps
the holdings index up to date, undoes blocks that a reorg took away, and says which communities'
members moved.

One :meth:`ChainWatcher.step`:

1. ``eth_blockNumber``; the target is the head less the chain's confirmation depth.
2. Reorg check: the hash remembered for the last processed block is compared with the chain's.
   If it differs, the newest remembered block that still matches is the common ancestor; every
   change of the blocks after it is taken back (balances, first redemptions, index states) and
   those blocks are read again.
3. ``eth_getLogs`` once for every tracked contract and the transfer events (ERC-20 and ERC-721
   ``Transfer``, ERC-1155 ``TransferSingle`` and ``TransferBatch``), up to ``max_range`` blocks.
4. The changes (each also kept in the holdings history with its block's time, which held_for
   reads), the remembered hashes (the last block of the step and each block with a
   transfer) and the new position are written in one platform transaction: a step lands whole or
   not at all, so a watcher killed at any point resumes from its last block without gaps or
   double counting.

Every tracked asset's holdings are kept in the index, however its community was set up: an
asset that has no index yet (added by the wizard or the bot, or by ``eligibility add-asset``
without an endpoint) is indexed from its Transfer logs first (``HolderIndexer``, resumable), up
to the watcher's own block; an index that stopped below the watcher's block (built while the
watcher ran ahead) is caught up by the step itself, so those blocks too can be undone by a
reorg. Nothing is ever read past the confirmed block. A failed read changes nothing and is
retried at the next step.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from eth_utils import keccak

from ..errors import ChainReadError
from ..ports import BlockSource
from ..storage.chain_watch import ChainWatchRepository
from ..storage.database import Database
from ..domain.chain import Asset

if TYPE_CHECKING:
    from .ranking import HolderIndexer

log = logging.getLogger(__name__)

TRANSFER = keccak(text="Transfer(address,address,uint256)")
TRANSFER_SINGLE = keccak(text="TransferSingle(address,address,address,uint256,uint256)")
TRANSFER_BATCH = keccak(text="TransferBatch(address,address,address,uint256[],uint256[])")
TOPICS = (TRANSFER, TRANSFER_SINGLE, TRANSFER_BATCH)
ZERO = "0x" + "0" * 40


@dataclass
class StepReport:
    chain: str
    head: int
    from_block: int | None = None
    to_block: int | None = None
    logs: int = 0
    rewound_to: int | None = None  # a reorg: the common ancestor the watcher went back to
    moved: dict[str, set[str]] = field(default_factory=dict)  # community id -> addresses that moved
    # community id -> when the first block of this step with a transfer that moved it was mined
    # (unix seconds; absent where unknown, e.g. a community moved only by a reorg's undo)
    mined_at: dict[str, float] = field(default_factory=dict)
    requests: int = 0

    @property
    def behind(self) -> int:
        return self.head - (self.to_block if self.to_block is not None else self.head)


def _hex(v) -> str:
    """A topic, hash or data field as 0x-prefixed hex, whether the node or web3 gave it."""
    if isinstance(v, str):
        return v if v.startswith(("0x", "0X")) else "0x" + v
    return "0x" + bytes(v).hex()


def _address(topic) -> str:
    return "0x" + _hex(topic)[-40:].lower()


def _words(data: str) -> list[int]:
    raw = data[2:] if data.startswith("0x") else data
    return [int(raw[i:i + 64], 16) for i in range(0, len(raw), 64)]


def transfers(entry: dict) -> list[tuple[str, str, int | None, int]]:
    """(from, to, token id or None, amount) of one log; [] for logs that are not transfers."""
    topics = [_hex(t).lower() for t in entry.get("topics") or []]
    if not topics:
        return []
    t0 = topics[0]
    data = _hex(entry.get("data") or "0x")
    if t0 == "0x" + TRANSFER.hex():
        if len(topics) == 3:  # ERC-20: the amount is the data
            return [(_address(topics[1]), _address(topics[2]), None, _words(data)[0] if len(data) > 2 else 0)]
        if len(topics) == 4:  # ERC-721: the token id is indexed
            return [(_address(topics[1]), _address(topics[2]), int(topics[3], 16), 1)]
        return []
    if t0 == "0x" + TRANSFER_SINGLE.hex() and len(topics) == 4:
        token_id, amount = _words(data)[:2]
        return [(_address(topics[2]), _address(topics[3]), token_id, amount)]
    if t0 == "0x" + TRANSFER_BATCH.hex() and len(topics) == 4:
        w = _words(data)
        ids_at, values_at = w[0] // 32, w[1] // 32
        n = w[ids_at]
        ids, values = w[ids_at + 1:ids_at + 1 + n], w[values_at + 1:values_at + 1 + w[values_at]]
        return [(_address(topics[2]), _address(topics[3]), i, v) for i, v in zip(ids, values)]
    return []


def counts_for(asset: Asset, entry: dict, token_id: int | None) -> bool:
    """Whether a decoded transfer of ``entry`` is a movement of ``asset`` (same contract assumed):
    an ERC-20 Transfer has no token id; an ERC-721 Transfer has one; an ERC-1155 transfer must be
    of the asset's token id."""
    first = _hex((entry.get("topics") or ["0x"])[0]).lower()
    if asset.kind == "erc20":
        return token_id is None
    if asset.kind == "erc721":
        return token_id is not None and first == "0x" + TRANSFER.hex()
    return first != "0x" + TRANSFER.hex() and token_id == asset.token_id


class ChainWatcher:
    def __init__(self, chain: str, source: BlockSource, db: Database, *, confirmations: int = 0,
                 max_range: int = 2000, keep_blocks: int = 256, clock: Callable[[], float] = time.time,
                 indexer: HolderIndexer | None = None) -> None:
        """``indexer``: builds the index of a tracked asset that has none, or catches up one far
        behind (bootstrap's, on the same reader; left out, one on ``source``)."""
        if indexer is None:
            from .ranking import HolderIndexer  # (ranking imports this module)

            indexer = HolderIndexer(db, source)
        self.chain, self.source, self.db, self.indexer = chain, source, db, indexer
        self.confirmations = max(0, int(confirmations))
        self.max_range, self.keep_blocks = max(1, int(max_range)), max(2, int(keep_blocks))
        self.watch = ChainWatchRepository(db)
        self.clock = clock
        self._history_pruned = float("-inf")

    def communities(self) -> list[str]:
        """The communities with an asset on this chain (for the safety-net sync)."""
        with self.db.platform():
            return sorted({str(r["community_id"]) for r in self.watch.tracked_assets(self.chain)})

    def position(self) -> int | None:
        with self.db.platform():
            return self.watch.last_block(self.chain)

    def step(self) -> StepReport:
        requests = self.source.requests
        head = self.source.block_number()
        # A young chain (a fresh local anvil) may be shorter than the confirmations: genesis is final.
        target = max(0, head - self.confirmations)
        report = StepReport(self.chain, head)
        last = self.position()
        if last is None:  # first start: from the confirmed head on (the full sync covers the past)
            start_hash = self.source.block_hash(target)
            with self.db.platform():
                self.watch.set_last_block(self.chain, target)
                self.watch.remember_blocks(self.chain, {target: start_hash} if start_hash else {})
            report.to_block = target
            report.requests = self.source.requests - requests
            log.info("%s: watching from block %d on", self.chain, target)
            return report
        last = self._check_reorg(last, report)
        with self.db.platform():
            tracked = self.watch.tracked_assets(self.chain)
        tracked = self._index_missing(tracked, last)
        lagging = [r["indexed_to"] for r in tracked if r["indexed_to"] is not None and r["indexed_to"] < last]
        start = min(lagging) + 1 if lagging else last + 1
        to = max(last, min(target, last + self.max_range))
        if to < start:
            self._start_histories(tracked, last)
            report.to_block = last
            report.requests = self.source.requests - requests
            return report
        by_address: dict[str, list[tuple[str, Asset, int | None]]] = defaultdict(list)
        for row in tracked:
            asset = Asset.from_dict(row["spec"])
            by_address[asset.address].append((str(row["community_id"]), asset, row["indexed_to"]))
        try:
            logs = self.source.get_logs_many(sorted(by_address), TOPICS, start, to) if by_address else []
        except ValueError as exc:  # the node refused the range as too large: fewer blocks next time
            self.max_range = max(1, (to - start + 1) // 2)
            raise ChainReadError(f"{self.chain}: the node refused {to - start + 1} blocks of logs ({exc}); "
                                 f"reading {self.max_range} at a time") from None
        changes, hashes, moved, counted, times, first_blocks = self._changes(logs, by_address)
        header = self.source.block_header(to)
        if header is None:
            raise ChainReadError(f"{self.chain}: block {to} vanished while it was read; trying again")
        hashes[to], times[to] = header["hash"], header["timestamp"]
        for number in sorted({c[0] for c in changes} - times.keys()):  # a node whose logs carry no time
            other = self.source.block_header(number)
            if other is None or other["hash"] != hashes.get(number, other["hash"]):
                raise ChainReadError(f"{self.chain}: block {number} changed while it was read; trying again")
            times[number] = other["timestamp"]
        mined_at = self._mined_at(first_blocks, times)
        indexed = {(str(r["community_id"]), r["asset_key"]): r["indexed_to"] for r in tracked
                   if r["indexed_to"] is not None}
        history = {(str(r["community_id"]), r["asset_key"]) for r in tracked if r.get("history_days")}
        with self.db.platform():
            now = self.watch.lock_indexes(indexed)
            if any(now[k] != v for k, v in indexed.items()):  # an indexer moved one meanwhile: read again
                raise ChainReadError(f"{self.chain}: an asset index moved while block {to} was read; trying again")
            self.watch.apply(self.chain, changes, times, history)
            self.watch.advance_indexes(indexed, to, at=times[to], history=history)
            self.watch.remember_blocks(self.chain, hashes)
            self.watch.set_last_block(self.chain, to)
            self.watch.prune(self.chain, to - self.keep_blocks)
            moved = self.watch.members_among(moved)  # a community re-ranks only when a member moved
            if history and self.clock() - self._history_pruned > 3600:  # at most once an hour
                self.watch.prune_history(self.chain)
                self._history_pruned = self.clock()
        report.from_block, report.to_block, report.logs = start, to, counted
        for c, addresses in moved.items():
            report.moved.setdefault(c, set()).update(addresses)
        report.mined_at.update(mined_at)
        report.requests = self.source.requests - requests
        return report

    def _index_missing(self, tracked: list[dict], last: int) -> list[dict]:
        """Index (from their Transfer logs, up to ``last``) the tracked assets that have no index,
        and those whose index stopped more than ``max_range`` blocks below ``last``; smaller gaps
        are read by the step itself. Returns ``tracked`` with their new index positions."""
        out = []
        for row in tracked:
            indexed_to = row["indexed_to"]
            if indexed_to is None or last - indexed_to > self.max_range:
                asset = Asset.from_dict(row["spec"])
                log.info("%s: indexing %s for community %s up to block %d", self.chain, asset.key,
                         row["community_id"], last)
                self.indexer.index(row["community_id"], asset, to_block=last)
                row = {**row, "indexed_to": last, "history_from_at": None}  # an indexer run keeps no history
            out.append(row)
        return out

    def _start_histories(self, tracked: list[dict], last: int) -> None:
        """With no new block to read, indexes at the watcher's block that keep no history yet (just
        indexed) start it there: the watcher records every change after it (one block read)."""
        waiting = [(str(r["community_id"]), r["asset_key"]) for r in tracked
                   if r.get("history_days") and r["indexed_to"] == last and r.get("history_from_at") is None]
        if not waiting:
            return
        header = self.source.block_header(last)
        if header is None:
            return  # a reorg took it: the next step sees it
        with self.db.platform():
            self.watch.start_histories(waiting, last, header["timestamp"])

    def _check_reorg(self, last: int, report: StepReport) -> int:
        """``last`` if the chain still has the block we processed last; else the common ancestor,
        after undoing everything above it."""
        with self.db.platform():
            remembered = self.watch.blocks_from(self.chain, last)
        if not remembered or remembered[0][0] != last:
            return last  # nothing to compare with (pruned, or a first step): carry on
        if self.source.block_hash(last) == remembered[0][1]:
            return last
        ancestor = None
        for number, known in remembered[1:]:
            if self.source.block_hash(number) == known:
                ancestor = number
                break
        if ancestor is None:
            ancestor = remembered[-1][0] - 1
            log.error("%s: a reorg deeper than the %d blocks remembered; going back to %d (the periodic full "
                      "sync corrects anything older)", self.chain, len(remembered), ancestor)
        with self.db.platform():
            touched = self.watch.undo_after(self.chain, ancestor)
            self.watch.set_last_block(self.chain, ancestor)
        log.warning("%s: reorg, blocks %d..%d no longer on the chain; their transfers were undone", self.chain,
                    ancestor + 1, last)
        report.rewound_to = ancestor
        for c, addresses in touched.items():
            report.moved.setdefault(c, set()).update(addresses)
        return ancestor

    def _mined_at(self, first_blocks: dict[str, int], times: dict[int, int]) -> dict[str, float]:
        """community -> when its first moving block of the step was mined: the logs' own
        ``blockTimestamp`` or the header already read for the holdings, else the block's header
        (one request per such block: a community followed without an index). A header that
        cannot be read leaves the time unknown (no latency is measured for that step; the step
        itself goes on)."""
        out: dict[str, float] = {}
        for community, block in first_blocks.items():
            if block not in times:
                try:
                    header = self.source.block_header(block)
                except ChainReadError:
                    header = None
                if header is None:
                    continue
                times[block] = header["timestamp"]
            out[community] = float(times[block])
        return out

    @staticmethod
    def _changes(logs: list[dict], by_address: dict) -> tuple[list[tuple], dict[int, str], dict[str, set[str]], int,
                                                              dict[int, int], dict[str, int]]:
        """(holdings changes, block hashes, community -> addresses that moved, how many logs were
        new to some index: a catch-up read also returns logs other indexes counted already, block
        times the logs carry: ``blockTimestamp``, where the node gives it, community -> the first
        block that moved it)."""
        changes: list[tuple] = []
        counted = 0
        hashes: dict[int, str] = {}
        times: dict[int, int] = {}
        moved: dict[str, set[str]] = defaultdict(set)
        first_blocks: dict[str, int] = {}
        for entry in logs:
            if entry.get("removed"):
                continue
            contract = str(entry.get("address", "")).lower()
            block = int(_hex(entry["blockNumber"]), 16) if isinstance(entry["blockNumber"], str) \
                else int(entry["blockNumber"])
            hashes[block] = _hex(entry["blockHash"]).lower()
            stamp = entry.get("blockTimestamp")
            if stamp is not None:
                times[block] = int(stamp, 16) if isinstance(stamp, str) else int(stamp)
            new = False
            for sender, receiver, token_id, amount in transfers(entry):
                for community, asset, indexed_to in by_address.get(contract, []):
                    if not counts_for(asset, entry, token_id):
                        continue
                    if indexed_to is not None and block <= indexed_to:
                        continue  # already counted by the index (a catch-up read covers older blocks)
                    new = True
                    first_blocks[community] = min(block, first_blocks.get(community, block))
                    for who in (sender, receiver):
                        if who != ZERO:
                            moved[community].add(who)
                    if indexed_to is None:
                        continue  # not indexed: its movements only say who moved
                    if sender != ZERO:
                        changes.append((block, community, asset.key, sender, -amount, receiver == ZERO))
                    if receiver != ZERO:
                        changes.append((block, community, asset.key, receiver, amount, False))
            counted += new
        return changes, hashes, dict(moved), counted, times, first_blocks
