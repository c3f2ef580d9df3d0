-- held_for (issue 29) reads the holdings index's history: every balance change the live watcher
-- applies (or an indexer catching up an index that keeps its history) is kept with its block and
-- the block's time, and the balance after that block, so a dip between two evaluations is seen.
-- asset_index_state says since when the history is complete (history_from_block/_at: NULL while
-- none is kept, and again after a first build, whose pages are summed, not kept block by block)
-- and the time of the last indexed block (last_block_at). The earlier "since" records, written
-- at evaluation time, are dropped.

-- Only assets a held_for rule names keep a history: community_assets.history_days is the longest
-- period a held_for rule of the community asks of the asset (NULL: none); older changes are pruned.
ALTER TABLE community_assets
    ADD COLUMN IF NOT EXISTS history_days integer CHECK (history_days BETWEEN 1 AND 3650);

ALTER TABLE asset_index_state
    ADD COLUMN IF NOT EXISTS history_from_block bigint,
    ADD COLUMN IF NOT EXISTS history_from_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_block_at timestamptz;

CREATE TABLE IF NOT EXISTS asset_holding_changes (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    asset_key    text NOT NULL,
    address      text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    block        bigint NOT NULL CHECK (block >= 0),
    at           timestamptz NOT NULL,
    delta        numeric NOT NULL,
    balance      numeric NOT NULL,  -- after this block
    PRIMARY KEY (community_id, asset_key, address, block)
);
CREATE INDEX IF NOT EXISTS asset_holding_changes_at ON asset_holding_changes (community_id, asset_key, at);

DROP TABLE IF EXISTS gate_held_since;
DROP TABLE IF EXISTS gate_held_coverage;
