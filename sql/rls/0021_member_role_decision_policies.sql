SELECT arrakis_fence_tenant_table('member_role_decisions');
