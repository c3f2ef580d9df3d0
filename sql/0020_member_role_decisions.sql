-- One decision, one delivery: every role list the engine decides for a member is a numbered
-- decision (seq, per member). A queued update carries its decision's number; a later decision
-- supersedes it (the older update is dropped, not sent), and an update older than what Discord
-- last got (applied_seq) is never sent. A member may go back and forth any number of times.
CREATE TABLE IF NOT EXISTS member_role_decisions (
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    discord_id   text NOT NULL CHECK (discord_id ~ '^[0-9]{1,20}$'),
    seq          bigint NOT NULL CHECK (seq > 0),
    roles        text[] NOT NULL DEFAULT '{}',
    decided_by   text NOT NULL DEFAULT '',
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, discord_id)
);
ALTER TABLE discord_member_roles ADD COLUMN IF NOT EXISTS applied_seq bigint NOT NULL DEFAULT 0;
