-- Approval requests are platform-only: the app role (tenant work) gets nothing; RLS is on with no
-- policy for it, so a mistaken grant still shows no row. Rows are never deleted.
ALTER TABLE approval_requests ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON approval_requests FROM PUBLIC, arrakis_app;
GRANT SELECT, INSERT, UPDATE ON approval_requests TO arrakis_admin;
