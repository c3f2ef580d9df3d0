-- Append-only, hash-chained audit log. One chain per community, and one for platform events
-- (community_id NULL). Each row stores the previous row's hash; the chain head (last seq and
-- hash) is kept in audit_heads so that deleting the newest rows is detected too.
-- Rows are chained by a trigger, so no writer can skip it; UPDATE and DELETE are refused.

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community_id uuid REFERENCES communities(id) ON DELETE RESTRICT,
    seq          bigint NOT NULL,
    actor        text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    action       text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    payload      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL,
    prev_hash    text,
    hash         text NOT NULL
);
CREATE UNIQUE INDEX audit_log_chain ON audit_log (community_id, seq) WHERE community_id IS NOT NULL;
CREATE UNIQUE INDEX audit_log_platform_chain ON audit_log (seq) WHERE community_id IS NULL;

CREATE TABLE audit_heads (
    chain      text PRIMARY KEY,          -- community id as text, or 'platform'
    seq        bigint NOT NULL,
    hash       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION audit_row_hash(prev text, community uuid, seq bigint, actor text, action text,
                               payload jsonb, created_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(concat_ws(E'\x1f',
        coalesce(prev, ''),
        coalesce(community::text, 'platform'),
        seq::text, actor, action, payload::text,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')), 'UTF8')), 'hex')
$$;

-- SECURITY DEFINER so it can read the chain head and write audit_heads, which the app role
-- cannot touch. The row itself is still inserted by the caller, so the RLS WITH CHECK policy
-- decides whether the caller may write to that community's chain.
CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    chain_key text := coalesce(NEW.community_id::text, 'platform');
    head record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('arrakis.audit_log'), hashtext(chain_key));
    SELECT seq, hash INTO head FROM audit_heads WHERE chain = chain_key;
    NEW.seq := coalesce(head.seq, 0) + 1;
    NEW.prev_hash := head.hash;
    NEW.created_at := date_trunc('microseconds', clock_timestamp());
    NEW.hash := audit_row_hash(NEW.prev_hash, NEW.community_id, NEW.seq, NEW.actor, NEW.action,
                               NEW.payload, NEW.created_at);
    INSERT INTO audit_heads (chain, seq, hash, updated_at) VALUES (chain_key, NEW.seq, NEW.hash, NEW.created_at)
    ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
