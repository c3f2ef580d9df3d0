-- One function that fences a tenant table (ENABLE + FORCE RLS, four policies on community_id),
-- so every later table is protected the same way as the first ones.
CREATE OR REPLACE FUNCTION arrakis_fence_tenant_table(t regclass) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    tenant constant text := $t$(SELECT NULLIF(current_setting('app.current_tenant', true), '')::uuid)$t$;
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('DROP POLICY IF EXISTS tenant_select ON %s', t);
    EXECUTE format('DROP POLICY IF EXISTS tenant_insert ON %s', t);
    EXECUTE format('DROP POLICY IF EXISTS tenant_update ON %s', t);
    EXECUTE format('DROP POLICY IF EXISTS tenant_delete ON %s', t);
    EXECUTE format('CREATE POLICY tenant_select ON %s FOR SELECT USING (community_id = %s)', t, tenant);
    EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT WITH CHECK (community_id = %s)', t, tenant);
    EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE USING (community_id = %s) WITH CHECK (community_id = %s)',
                   t, tenant, tenant);
    EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE USING (community_id = %s)', t, tenant);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO arrakis_app, arrakis_admin', t);
END
$fn$;
REVOKE ALL ON FUNCTION arrakis_fence_tenant_table(regclass) FROM PUBLIC;

SELECT arrakis_fence_tenant_table('community_assets');
SELECT arrakis_fence_tenant_table('asset_index_state');
SELECT arrakis_fence_tenant_table('asset_holdings');
