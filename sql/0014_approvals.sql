-- Human approval of infrastructure changes that the policy gate sent to review (a platform table:
-- only the admin role reads or writes it). Every step is also in the platform's audit chain.

CREATE TABLE approval_requests (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind           text NOT NULL CHECK (kind IN ('terraform_plan')),
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    title          text NOT NULL,
    requested_by   text NOT NULL REFERENCES operators(name),
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    decision       text NOT NULL CHECK (decision IN ('approve', 'review')),
    risk_score     integer NOT NULL CHECK (risk_score BETWEEN 0 AND 100),
    risk_level     text NOT NULL CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    plan_checksum  text NOT NULL,
    report         jsonb NOT NULL,          -- the gate's findings, risk and budget, as shown to reviewers
    decided_by     text REFERENCES operators(name),
    decided_at     timestamptz,
    reason         text,
    mfa            text,                    -- how the approver proved themself: totp, backup, or NULL
    notified       jsonb NOT NULL DEFAULT '{}',  -- where it was announced (Slack channel and ts)
    reminded_at    timestamptz,
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> requested_by OR status = 'cancelled')
);
CREATE INDEX approval_requests_pending ON approval_requests (expires_at) WHERE status = 'pending';
