-- Roles for tenant isolation. Applied on every `arrakis db upgrade` (not versioned), so a re-run
-- repairs a role whose attributes drifted. Roles are cluster-wide; grants are per database.
--   arrakis_app   : LOGIN, owns nothing, NOBYPASSRLS. Every tenant query runs as this role.
--   arrakis_admin : LOGIN, BYPASSRLS. Platform operations across communities.
-- A role is only altered when it differs from this: roles belong to the whole server, and two
-- upgrades of different databases at once would otherwise both write the same catalog rows.
DO $$
DECLARE
  r record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arrakis_app') THEN
    CREATE ROLE arrakis_app LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'arrakis_admin') THEN
    CREATE ROLE arrakis_admin LOGIN;
  END IF;
  FOR r IN SELECT rolname, rolbypassrls AS bypass FROM pg_roles
            WHERE rolname IN ('arrakis_app', 'arrakis_admin')
              AND NOT (rolcanlogin AND NOT rolsuper AND NOT rolcreatedb AND NOT rolcreaterole
                       AND NOT rolreplication AND rolinherit
                       AND rolbypassrls = (rolname = 'arrakis_admin'))
  LOOP
    EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION %s INHERIT',
                   r.rolname, CASE WHEN r.rolname = 'arrakis_admin' THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END);
  END LOOP;
  -- Arrakis runs short OLTP statements; PostgreSQL's JIT spends more time compiling them (up to
  -- seconds for a 10,000-member sync) than it saves.
  FOR r IN SELECT rolname FROM pg_roles
            WHERE rolname IN ('arrakis_app', 'arrakis_admin')
              AND NOT EXISTS (SELECT 1 FROM pg_db_role_setting s
                               WHERE s.setrole = pg_roles.oid AND s.setdatabase = 0
                                 AND 'jit=off' = ANY (s.setconfig))
  LOOP
    EXECUTE format('ALTER ROLE %I SET jit = off', r.rolname);
  END LOOP;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO arrakis_app, arrakis_admin', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO arrakis_app, arrakis_admin;
