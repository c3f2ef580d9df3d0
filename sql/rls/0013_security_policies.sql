-- Operators, backup codes and audit checkpoints are platform-only: the app role (tenant work)
-- gets nothing; RLS is on with no policy for it, so a mistaken grant still shows no row.
ALTER TABLE operators ENABLE ROW LEVEL SECURITY;
ALTER TABLE operator_backup_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON operators, operator_backup_codes, audit_checkpoints FROM PUBLIC, arrakis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON operators, operator_backup_codes TO arrakis_admin;
-- Checkpoints are append-only, like the log they vouch for.
GRANT SELECT, INSERT ON audit_checkpoints TO arrakis_admin;
