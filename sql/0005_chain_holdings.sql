-- Chain data per community: the assets that decide eligibility, the Transfer-log index state
-- (resumable from the last indexed block), and the holder balances it produced.

CREATE TABLE community_assets (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    asset_key    text NOT NULL,
    spec         jsonb NOT NULL,
    purpose      text NOT NULL DEFAULT 'gate' CHECK (purpose IN ('rank', 'gate')),
    min_amount   numeric NOT NULL DEFAULT 0 CHECK (min_amount >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, asset_key)
);

CREATE TABLE asset_index_state (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    asset_key    text NOT NULL,
    last_block   bigint NOT NULL CHECK (last_block >= -1),
    page_size    integer NOT NULL CHECK (page_size >= 1),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, asset_key)
);

CREATE TABLE asset_holdings (
    community_id  uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    asset_key     text NOT NULL,
    address       text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    balance       numeric NOT NULL,
    ever_redeemed boolean NOT NULL DEFAULT false,
    updated_block bigint NOT NULL,
    PRIMARY KEY (community_id, asset_key, address)
);
CREATE INDEX asset_holdings_rank ON asset_holdings (community_id, asset_key, balance DESC);

-- Eligibility bookkeeping on profiles: highest tier ever, a pending demotion, the last read.
ALTER TABLE profiles
    ADD COLUMN highest_tier text,
    ADD COLUMN demotion_pending_since timestamptz,
    ADD COLUMN last_synced_at timestamptz;
