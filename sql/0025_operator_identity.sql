-- One identity per actor in approval requests, enforced by the database as well as the engine.
--
-- A requester is stored in one canonical form:
--   * an operator: their operator name ('bob'), whichever front end they used (the CLI, the bot
--     through their linked Discord id, Slack through their linked Slack id);
--   * a Discord user who is not an operator (a server admin running /arrakis sync): 'discord:<id>';
--   * a process or an anonymous command line: 'system:<what>' ('system:scheduler', 'system:cli').
-- Operator names cannot hold ':', so the last two can never equal an operator name. An answer
-- (approve, reject, cancel) is always by an operator, so decided_by is an operator name. The
-- trigger below refuses an approval or rejection by the requester, also when the requester was
-- stored as the Discord id that the approver is linked to.

-- Earlier rows: 'operator:bob' becomes 'bob'; a linked Discord id becomes its operator; a strip's
-- bare label ('cli', 'sync', 'watcher', ...) was never an operator and becomes 'system:<label>'.
UPDATE approval_requests SET requested_by = substr(requested_by, 10) WHERE requested_by LIKE 'operator:%';
UPDATE approval_requests SET decided_by = substr(decided_by, 10) WHERE decided_by LIKE 'operator:%';
UPDATE approval_requests r SET requested_by = o.name
  FROM operators o WHERE r.requested_by = 'discord:' || o.discord_user_id;
UPDATE approval_requests SET requested_by = 'system:' || left(regexp_replace(lower(requested_by), '[^a-z0-9._-]', '-', 'g'), 40)
 WHERE kind = 'member_role_strip' AND requested_by NOT LIKE '%:%'
   AND requested_by NOT IN (SELECT name FROM operators);
UPDATE approval_requests SET requested_by = 'system:' || left(regexp_replace(lower(requested_by), '[^a-z0-9._-]', '-', 'g'), 40)
 WHERE requested_by !~ '^([a-z0-9][a-z0-9._-]{1,39}|discord:[0-9]{17,20}|system:[a-z0-9._-]{1,40})$';

ALTER TABLE approval_requests DROP CONSTRAINT IF EXISTS approval_requests_requested_by_canonical;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_requested_by_canonical
    CHECK (requested_by ~ '^([a-z0-9][a-z0-9._-]{1,39}|discord:[0-9]{17,20}|system:[a-z0-9._-]{1,40})$');
-- Answers are by operators (NOT VALID: rows from before keep whatever they said).
ALTER TABLE approval_requests DROP CONSTRAINT IF EXISTS approval_requests_decided_by_operator;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_decided_by_operator
    FOREIGN KEY (decided_by) REFERENCES operators(name) NOT VALID;

CREATE OR REPLACE FUNCTION approval_requests_answerer_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.decided_by IS NOT NULL AND NEW.status IN ('approved', 'rejected') THEN
        IF NEW.decided_by = NEW.requested_by OR EXISTS (
               SELECT 1 FROM operators o
                WHERE o.name = NEW.decided_by AND o.discord_user_id IS NOT NULL
                  AND NEW.requested_by = 'discord:' || o.discord_user_id) THEN
            RAISE EXCEPTION 'the requester of approval request % may not answer it', NEW.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'approval_requests_not_by_requester';
        END IF;
    END IF;
    IF NEW.status = 'cancelled' AND NEW.decided_by IS DISTINCT FROM NEW.requested_by THEN
        RAISE EXCEPTION 'only the requester of approval request % may cancel it', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'approval_requests_cancel_by_requester';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS approval_requests_answerer ON approval_requests;
CREATE TRIGGER approval_requests_answerer BEFORE INSERT OR UPDATE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION approval_requests_answerer_check();

-- A Slack user is one operator at most (Slack's buttons map the user to the operator).
CREATE UNIQUE INDEX IF NOT EXISTS operators_slack_user ON operators (slack_user_id) WHERE slack_user_id IS NOT NULL;

-- "No code accepted twice" lives here, not in Redis: the last accepted TOTP step per operator.
ALTER TABLE operators ADD COLUMN IF NOT EXISTS totp_last_step bigint;

-- Wrong codes (the lockout: 5 within 5 minutes) are kept here too, so a Redis flush does not lift it.
CREATE TABLE IF NOT EXISTS operator_mfa_failures (
    operator text NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS operator_mfa_failures_at ON operator_mfa_failures (operator, at);

-- One-time enrolment tokens: an operator redeems theirs (mfa enroll NAME --token T) for a new
-- secret and backup codes. Only the SHA-256 of the token is kept; it is good for 24 hours, once.
CREATE TABLE IF NOT EXISTS operator_enrolment_tokens (
    operator      text PRIMARY KEY REFERENCES operators(name) ON DELETE CASCADE,
    token_hash    text NOT NULL,
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    delivered_to  text NOT NULL
);

-- Backup codes from before were 48 bits with a fast hash; they are retired (an operator gets new
-- ones, 64 bits under scrypt, at their next enrolment).
UPDATE operator_backup_codes SET used_at = now() WHERE used_at IS NULL AND code_hash NOT LIKE 'scrypt$%';
