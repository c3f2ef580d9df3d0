-- Gating tables are tenant tables: ENABLE + FORCE row-level security, the four tenant policies,
-- and the app role's grants (arrakis_fence_tenant_table, from 0006).
SELECT arrakis_fence_tenant_table('gate_rules');
SELECT arrakis_fence_tenant_table('allowlists');
SELECT arrakis_fence_tenant_table('allowlist_entries');
SELECT arrakis_fence_tenant_table('gate_snapshot_balances');
SELECT arrakis_fence_tenant_table('gate_held_coverage');
SELECT arrakis_fence_tenant_table('gate_held_since');
