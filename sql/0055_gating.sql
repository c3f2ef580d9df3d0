-- Gating rules (issue 29): a community's membership rule and optional tier rules, named
-- allowlists of wallets, balances read at a snapshot block (read once, kept), and since when each
-- member has met a held_for requirement without a break.

CREATE TABLE IF NOT EXISTS gate_rules (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    tier         text NOT NULL DEFAULT '' CHECK (length(tier) <= 100),  -- '' is the membership rule
    rule         jsonb NOT NULL,
    checksum     text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, tier)
);

CREATE TABLE IF NOT EXISTS allowlists (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    size         integer NOT NULL DEFAULT 0 CHECK (size BETWEEN 0 AND 100000),
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, name)
);

CREATE TABLE IF NOT EXISTS allowlist_entries (
    community_id uuid NOT NULL,
    name         text NOT NULL,
    address      text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    PRIMARY KEY (community_id, name, address),
    FOREIGN KEY (community_id, name) REFERENCES allowlists (community_id, name) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS allowlist_entries_address ON allowlist_entries (community_id, address);

CREATE TABLE IF NOT EXISTS gate_snapshot_balances (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    asset_key    text NOT NULL,
    block        bigint NOT NULL CHECK (block >= 0),
    address      text NOT NULL CHECK (address ~ '^0x[0-9a-f]{40}$'),
    balance      numeric NOT NULL CHECK (balance >= 0),
    read_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, asset_key, block, address)
);

-- held_for: requirement = sha256 of the requirement's canonical JSON.
CREATE TABLE IF NOT EXISTS gate_held_coverage (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    requirement  text NOT NULL CHECK (requirement ~ '^[0-9a-f]{64}$'),
    since        timestamptz NOT NULL,
    PRIMARY KEY (community_id, requirement)
);

CREATE TABLE IF NOT EXISTS gate_held_since (
    community_id uuid NOT NULL,
    requirement  text NOT NULL CHECK (requirement ~ '^[0-9a-f]{64}$'),
    profile_id   uuid NOT NULL,
    since        timestamptz NOT NULL,
    PRIMARY KEY (community_id, requirement, profile_id),
    FOREIGN KEY (community_id, profile_id) REFERENCES profiles (community_id, id) ON DELETE CASCADE
);
