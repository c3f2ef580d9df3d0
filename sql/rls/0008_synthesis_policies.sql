SELECT arrakis_fence_tenant_table('discord_member_roles');
SELECT arrakis_fence_tenant_table('pending_approvals');
