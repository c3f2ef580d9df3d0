-- Grants of approving power are platform-only, like the operators they belong to: the app role gets
-- nothing, and RLS is on with no policy for it, so a mistaken grant still shows no row.
ALTER TABLE operator_grants ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON operator_grants FROM PUBLIC, arrakis_app;
GRANT SELECT, INSERT, UPDATE ON operator_grants TO arrakis_admin;
