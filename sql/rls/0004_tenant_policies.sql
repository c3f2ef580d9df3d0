-- Row-level security for every tenant table, plus the app and admin grants.
-- The tenant comes from app.current_tenant, set with SET LOCAL inside a transaction; outside one
-- it is '' or unset, which NULLIF turns into NULL, and NULL matches no row. The expression is
-- wrapped in a sub-select so PostgreSQL evaluates it once per statement (an InitPlan) and can
-- use the (community_id, ...) indexes.

DO $$
DECLARE
    t text;
    key text;
    tenant constant text := $t$(SELECT NULLIF(current_setting('app.current_tenant', true), '')::uuid)$t$;
BEGIN
    FOREACH t IN ARRAY ARRAY['communities', 'profiles', 'wallet_links', 'badges', 'manifests',
                             'shadow_states', 'tier_history', 'audit_log', 'legacy_imports'] LOOP
        key := CASE WHEN t = 'communities' THEN 'id' ELSE 'community_id' END;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_select ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_insert ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_update ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_delete ON %I', t);
        EXECUTE format('CREATE POLICY tenant_select ON %I FOR SELECT USING (%I = %s)', t, key, tenant);
        EXECUTE format('CREATE POLICY tenant_insert ON %I FOR INSERT WITH CHECK (%I = %s)', t, key, tenant);
        EXECUTE format('CREATE POLICY tenant_update ON %I FOR UPDATE USING (%I = %s) WITH CHECK (%I = %s)',
                       t, key, tenant, key, tenant);
        EXECUTE format('CREATE POLICY tenant_delete ON %I FOR DELETE USING (%I = %s)', t, key, tenant);
    END LOOP;
END
$$;

-- audit_heads is written only by the audit trigger (SECURITY DEFINER, so as the owner). RLS is on
-- with no policy, so no other role sees a row even if it were granted the table by mistake; it is
-- not FORCEd, so the owner-run trigger still can.
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, arrakis_app, arrakis_admin;

-- The app role: tenant work only. A community row can be read and updated by its own tenant;
-- creating and deleting communities is a platform operation.
GRANT SELECT, UPDATE ON communities TO arrakis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON profiles, wallet_links, badges, manifests, shadow_states,
      tier_history, legacy_imports TO arrakis_app;
GRANT SELECT, INSERT ON audit_log TO arrakis_app;

-- The admin role: every tenant, no schema changes, and the audit log stays append-only.
GRANT SELECT, INSERT, UPDATE, DELETE ON communities, profiles, wallet_links, badges, manifests,
      shadow_states, tier_history, legacy_imports TO arrakis_admin;
GRANT SELECT, INSERT ON audit_log TO arrakis_admin;
GRANT SELECT ON audit_heads, schema_migrations TO arrakis_admin;

REVOKE ALL ON FUNCTION audit_log_chain() FROM PUBLIC;
