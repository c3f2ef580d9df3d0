-- The holdings history is tenant data like asset_holdings: ENABLE + FORCE row-level security, the
-- four tenant policies and the app role's grants (arrakis_fence_tenant_table, from 0006). The
-- watcher writes it as the platform role, in the same transaction as the balances.
SELECT arrakis_fence_tenant_table('asset_holding_changes');
