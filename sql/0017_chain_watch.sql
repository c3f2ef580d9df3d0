-- The live watcher (`arrakis watcher`): where it is on each chain, the recent blocks it processed
-- with their hashes (a stored hash that no longer matches the chain is a reorg), and the holdings
-- changes each block made, so a block that disappears can be undone exactly.

CREATE TABLE chain_watch (
    chain      text PRIMARY KEY,
    last_block bigint NOT NULL CHECK (last_block >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chain_watch_blocks (
    chain  text NOT NULL,
    number bigint NOT NULL,
    hash   text NOT NULL CHECK (hash ~ '^0x[0-9a-f]{64}$'),
    PRIMARY KEY (chain, number)
);

CREATE TABLE chain_watch_deltas (
    chain          text NOT NULL,
    number         bigint NOT NULL,
    community_id   uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    asset_key      text NOT NULL,
    address        text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    delta          numeric NOT NULL,
    newly_redeemed boolean NOT NULL DEFAULT false  -- this block first marked the wallet as having redeemed
);
CREATE INDEX chain_watch_deltas_block ON chain_watch_deltas (chain, number);
