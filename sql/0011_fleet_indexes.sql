-- The operator fleet view asks, for every community, when its last eligibility sync ran.
-- A partial index keeps that a lookup per community however long the audit log grows.
CREATE INDEX audit_log_eligibility_synced ON audit_log (community_id, created_at DESC)
    WHERE action = 'eligibility.synced';
