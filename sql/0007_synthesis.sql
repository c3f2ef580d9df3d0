-- Synthesis bookkeeping: one shadow state per manifest version (filled in as resources are
-- created, so an interrupted synthesis resumes), the roles we last saw on each member, and
-- changes waiting for an operator's approval.

CREATE UNIQUE INDEX shadow_states_one_per_version ON shadow_states (community_id, manifest_version);

CREATE TABLE discord_member_roles (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    discord_id   text NOT NULL CHECK (discord_id ~ '^[0-9]{1,20}$'),
    roles        text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, discord_id)
);

CREATE TABLE pending_approvals (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    kind         text NOT NULL,
    summary      text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    requested_by text NOT NULL,
    decided_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz
);
CREATE INDEX pending_approvals_community ON pending_approvals (community_id, status, created_at DESC);
