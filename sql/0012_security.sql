-- Platform operators and their second factor, signed manifests, and signed audit checkpoints.
-- These are platform tables: only the admin role reads or writes them (no tenant ever does).

CREATE TABLE operators (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{1,39}$'),
    roles            text[] NOT NULL DEFAULT '{}'
                     CHECK (roles <@ ARRAY['platform_admin', 'approver', 'auditor']::text[]),
    discord_user_id  text CHECK (discord_user_id ~ '^[0-9]{17,20}$'),
    slack_user_id    text CHECK (slack_user_id ~ '^[UW][A-Z0-9]{2,20}$'),
    -- The TOTP secret never leaves the engine: not in logs, --json, errors or audit rows.
    totp_secret      text,
    totp_enrolled_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL
);
CREATE UNIQUE INDEX operators_discord_user ON operators (discord_user_id) WHERE discord_user_id IS NOT NULL;

-- Single-use backup codes, stored as salted SHA-256 (the code itself is shown once).
CREATE TABLE operator_backup_codes (
    operator  text NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    code_hash text NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (operator, code_hash)
);

-- Every manifest version is signed when it is published (NULL only for versions written before
-- signing existed; restore and verify say so).
ALTER TABLE manifests ADD COLUMN signature text;

-- A signed statement "chain C ended at row S with hash H": rows up to S can no longer be
-- rewritten, even by someone who can also rewrite audit_heads, without the signing key.
CREATE TABLE audit_checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain      text NOT NULL,             -- community id as text, or 'platform'
    seq        bigint NOT NULL,
    hash       text NOT NULL,
    signature  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_checkpoints_chain ON audit_checkpoints (chain, seq DESC);
