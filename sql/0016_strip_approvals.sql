-- Mass-strip approvals (a member sync that would take tier roles from many holders) join the
-- approval model of infrastructure plans: the same table, states, rules and audit. They belong to
-- one community, have no plan, and are asked for by whoever ran the sync (an operator, the CLI or
-- the scheduler), so the requester is no longer always an operator. An approved strip is carried
-- out once (used_at). pending_approvals (0007) is no longer written; its rows stay as history.
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_kind_check;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_kind_check
    CHECK (kind IN ('terraform_plan', 'member_role_strip'));
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_requested_by_fkey;
-- (approvals and rejections are by operators, which the engine checks; a cancel is by the requester)
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_decided_by_fkey;
ALTER TABLE approval_requests ALTER COLUMN plan_checksum DROP NOT NULL;
ALTER TABLE approval_requests ADD COLUMN community_id uuid REFERENCES communities(id) ON DELETE CASCADE;
ALTER TABLE approval_requests ADD COLUMN used_at timestamptz;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_scope
    CHECK ((kind = 'member_role_strip') = (community_id IS NOT NULL)
           AND (kind = 'terraform_plan') = (plan_checksum IS NOT NULL));
CREATE INDEX approval_requests_community ON approval_requests (community_id, status) WHERE community_id IS NOT NULL;
