SELECT arrakis_fence_tenant_table('manifest_outbox');
