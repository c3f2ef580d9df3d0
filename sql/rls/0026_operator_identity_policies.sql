-- Enrolment tokens and wrong-code records are platform-only, like the operators they belong to: the app role gets
-- nothing, and RLS is on with no policy for it, so a mistaken grant still shows no row.
ALTER TABLE operator_enrolment_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE operator_mfa_failures ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON operator_enrolment_tokens, operator_mfa_failures FROM PUBLIC, arrakis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON operator_enrolment_tokens, operator_mfa_failures TO arrakis_admin;
