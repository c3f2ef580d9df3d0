-- Roles for tenant isolation. Applied on every `arrakis db upgrade` (not versioned), so a re-run
-- repairs a role whose attributes drifted. Roles are cluster-wide; grants are per database.
--   arrakis_app   : LOGIN, owns nothing, NOBYPASSRLS. Every tenant query runs as this role.
--   arrakis_admin : LOGIN, BYPASSRLS. Platform operations across communities.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arrakis_app') THEN
    CREATE ROLE arrakis_app LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arrakis_admin') THEN
    CREATE ROLE arrakis_admin LOGIN;
  END IF;
END
$$;

ALTER ROLE arrakis_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;
ALTER ROLE arrakis_admin LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION BYPASSRLS INHERIT;

DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO arrakis_app, arrakis_admin', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO arrakis_app, arrakis_admin;

-- Arrakis runs short OLTP statements; PostgreSQL's JIT spends more time compiling them (up to
-- seconds for a 10,000-member sync) than it saves.
ALTER ROLE arrakis_app SET jit = off;
ALTER ROLE arrakis_admin SET jit = off;
