-- Objects waiting to be written to the S3 shadow (manifest versions, applied shadow states, the
-- community record). Rows are added in the same transaction as what they describe, and sent
-- later; an S3 outage delays them and loses nothing.
CREATE TABLE manifest_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    object_key   text NOT NULL,
    body         text NOT NULL,
    checksum     text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    delivered_at timestamptz
);
CREATE INDEX manifest_outbox_pending ON manifest_outbox (community_id, id) WHERE delivered_at IS NULL;
