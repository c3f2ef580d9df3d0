-- Core tenant tables. Every tenant row carries community_id; composite foreign keys
-- (community_id, id) keep references inside one community even where RLS does not look.

CREATE TABLE communities (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    guild_id          text NOT NULL UNIQUE CHECK (guild_id ~ '^[0-9A-Za-z_-]{1,32}$'),
    theme_id          text NOT NULL,
    subscription_tier text NOT NULL DEFAULT 'free'
                      CHECK (subscription_tier IN ('free', 'premium', 'enterprise')),
    settings          jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active         boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE profiles (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id     uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    discord_id       text NOT NULL CHECK (discord_id ~ '^[0-9]{1,20}$'),
    wallet_address   text CHECK (wallet_address ~ '^0x[0-9a-f]{40}$'),
    tier             text,
    rank             integer CHECK (rank >= 1),
    conviction       numeric NOT NULL DEFAULT 0,
    activity         numeric NOT NULL DEFAULT 0,
    joined_at        timestamptz NOT NULL DEFAULT now(),
    first_claim_at   timestamptz,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    legacy_import_id uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, id),
    UNIQUE (community_id, discord_id)
);
CREATE INDEX profiles_community_rank ON profiles (community_id, rank);
CREATE INDEX profiles_community_wallet ON profiles (community_id, wallet_address);
CREATE INDEX profiles_community_tier ON profiles (community_id, tier);
CREATE INDEX profiles_legacy_import ON profiles (legacy_import_id) WHERE legacy_import_id IS NOT NULL;

CREATE TABLE wallet_links (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id     uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    profile_id       uuid NOT NULL,
    wallet_address   text NOT NULL CHECK (wallet_address ~ '^0x[0-9a-f]{40}$'),
    source           text NOT NULL DEFAULT 'siwe' CHECK (source IN ('siwe', 'import', 'legacy')),
    verified_at      timestamptz,
    legacy_import_id uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (community_id, profile_id) REFERENCES profiles (community_id, id) ON DELETE CASCADE,
    UNIQUE (community_id, wallet_address)
);
CREATE INDEX wallet_links_community_profile ON wallet_links (community_id, profile_id);
CREATE INDEX wallet_links_legacy_import ON wallet_links (legacy_import_id) WHERE legacy_import_id IS NOT NULL;

CREATE TABLE badges (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id     uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    profile_id       uuid NOT NULL,
    badge_type       text NOT NULL CHECK (badge_type ~ '^[a-z][a-z0-9_]{0,63}$'),
    awarded_at       timestamptz NOT NULL DEFAULT now(),
    awarded_by       uuid,
    revoked_at       timestamptz,
    revoked_reason   text,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    legacy_import_id uuid,
    FOREIGN KEY (community_id, profile_id) REFERENCES profiles (community_id, id) ON DELETE CASCADE,
    FOREIGN KEY (community_id, awarded_by) REFERENCES profiles (community_id, id),
    CHECK (awarded_by IS NULL OR awarded_by <> profile_id)
);
-- One active badge of a type per member; revoked ones stay as history.
CREATE UNIQUE INDEX badges_one_active ON badges (community_id, profile_id, badge_type) WHERE revoked_at IS NULL;
CREATE INDEX badges_community_profile ON badges (community_id, profile_id);
CREATE INDEX badges_community_awarded_by ON badges (community_id, awarded_by, badge_type);
CREATE INDEX badges_legacy_import ON badges (legacy_import_id) WHERE legacy_import_id IS NOT NULL;

CREATE TABLE manifests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    content      jsonb NOT NULL,
    checksum     text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    UNIQUE (community_id, version)
);

CREATE TABLE shadow_states (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id     uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    manifest_version integer NOT NULL,
    resources        jsonb NOT NULL DEFAULT '{}'::jsonb,
    checksum         text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'applying', 'applied', 'partial', 'failed')),
    applied_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (community_id, manifest_version) REFERENCES manifests (community_id, version) ON DELETE CASCADE
);
CREATE INDEX shadow_states_community_applied ON shadow_states (community_id, applied_at DESC);

CREATE TABLE tier_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    profile_id   uuid NOT NULL,
    from_tier    text,
    to_tier      text,
    rank         integer,
    reason       text NOT NULL DEFAULT 'sync',
    changed_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (community_id, profile_id) REFERENCES profiles (community_id, id) ON DELETE CASCADE
);
CREATE INDEX tier_history_community_profile ON tier_history (community_id, profile_id, changed_at DESC);
CREATE INDEX tier_history_community_changed ON tier_history (community_id, changed_at DESC);
