"""PostgreSQL storage: connections by role, tenant-scoped transactions, migrations, repositories."""
