# Unit tests of arrakis_terraform.rego (run by the test suite through regopy: every test_* rule
# must be true). Plans here have the shape of `terraform show -json`.
package terraform.arrakis_test

import rego.v1

import data.terraform.arrakis

change(address, type, actions, before, after) := {
	"address": address,
	"mode": "managed",
	"type": type,
	"name": "x",
	"provider_name": "registry.terraform.io/hashicorp/test",
	"change": {"actions": actions, "before": before, "after": after},
}

plan(changes) := {"format_version": "1.2", "terraform_version": "1.9.0", "resource_changes": changes}

ids(findings) := {f.id | some f in findings}

blocks(changes) := ids(arrakis.evaluate(plan(changes)).hard_blocks)

warns(changes) := ids(arrakis.evaluate(plan(changes)).warnings)

strict_warns(changes) := ids(arrakis.evaluate(object.union(plan(changes), {"profile": "strict"})).warnings)

# --- hard blocks ------------------------------------------------------------------------------

test_deleting_a_persistent_volume_is_blocked if {
	"HARD_BLOCK_DELETE_PV" in blocks([change("kubernetes_persistent_volume.data", "kubernetes_persistent_volume", ["delete"], {}, null)])
}

test_deleting_a_volume_claim_v1_is_blocked if {
	"HARD_BLOCK_DELETE_PV" in blocks([change("kubernetes_persistent_volume_claim_v1.pg", "kubernetes_persistent_volume_claim_v1", ["delete"], {}, null)])
}

test_deleting_each_kind_of_database_is_blocked if {
	every type in ["aws_db_instance", "aws_rds_cluster", "aws_rds_cluster_instance", "postgresql_database"] {
		"HARD_BLOCK_DELETE_DATABASE" in blocks([change(sprintf("%s.main", [type]), type, ["delete"], {}, null)])
	}
}

test_a_replacement_is_a_delete if {
	"HARD_BLOCK_DELETE_DATABASE" in blocks([change("aws_db_instance.main", "aws_db_instance", ["delete", "create"], {}, {})])
}

test_create_before_destroy_is_a_delete_too if {
	"HARD_BLOCK_DELETE_DATABASE" in blocks([change("aws_db_instance.main", "aws_db_instance", ["create", "delete"], {}, {})])
}

test_resources_inside_nested_modules_count if {
	rc := object.union(
		change("module.data.module.pg.postgresql_database.arrakis", "postgresql_database", ["delete"], {}, null),
		{"module_address": "module.data.module.pg"},
	)
	"HARD_BLOCK_DELETE_DATABASE" in blocks([rc])
}

test_reading_a_database_data_source_is_not_a_change if {
	rc := object.union(change("data.aws_db_instance.main", "aws_db_instance", ["read"], null, {}), {"mode": "data"})
	r := arrakis.evaluate(plan([rc]))
	count(r.hard_blocks) == 0
	r.changes == 0
}

test_a_no_op_is_not_a_change if {
	r := arrakis.evaluate(plan([change("aws_db_instance.main", "aws_db_instance", ["no-op"], {}, {})]))
	count(r.hard_blocks) == 0
	count(r.warnings) == 0
	r.changes == 0
}

test_updating_a_database_is_not_blocked if {
	count(blocks([change("aws_db_instance.main", "aws_db_instance", ["update"], {}, {})])) == 0
}

test_turning_rls_off_is_blocked if {
	"HARD_BLOCK_DISABLE_RLS" in blocks([change("postgresql_table.profiles", "postgresql_table", ["update"], {"row_security_enabled": true}, {"row_security_enabled": false})])
}

test_turning_rls_on_or_keeping_it_is_fine if {
	count(blocks([change("postgresql_table.a", "postgresql_table", ["update"], {"row_security_enabled": false}, {"row_security_enabled": true})])) == 0
	count(blocks([change("postgresql_table.b", "postgresql_table", ["update"], {"row_security_enabled": true}, {"row_security_enabled": true})])) == 0
}

test_deleting_a_production_namespace_is_blocked if {
	every name in ["production", "prod", "arrakis-production"] {
		"HARD_BLOCK_DELETE_PROD_NAMESPACE" in blocks([change("kubernetes_namespace.ns", "kubernetes_namespace", ["delete"], {"metadata": [{"name": name}]}, null)])
	}
}

test_namespace_metadata_as_an_object_counts_too if {
	"HARD_BLOCK_DELETE_PROD_NAMESPACE" in blocks([change("kubernetes_namespace_v1.ns", "kubernetes_namespace_v1", ["delete"], {"metadata": {"name": "prod"}}, null)])
}

test_deleting_a_staging_namespace_is_not_blocked if {
	count(blocks([change("kubernetes_namespace.ns", "kubernetes_namespace", ["delete"], {"metadata": [{"name": "staging"}]}, null)])) == 0
}

test_deleting_vault_policies_and_roles_is_blocked if {
	every type in ["vault_policy", "vault_auth_backend_role", "vault_token_auth_backend_role"] {
		"HARD_BLOCK_DELETE_VAULT_POLICY" in blocks([change(sprintf("%s.x", [type]), type, ["delete"], {}, null)])
	}
}

test_a_delete_hidden_among_many_no_ops_is_found if {
	noops := [change(sprintf("aws_instance.n%d", [i]), "aws_instance", ["no-op"], {}, {}) | some i in numbers.range(1, 200)]
	r := arrakis.evaluate(plan(array.concat(noops, [change("aws_rds_cluster.main", "aws_rds_cluster", ["delete"], {}, null)])))
	r.changes == 1
	some f in r.hard_blocks
	f.address == "aws_rds_cluster.main"
}

# --- warnings ---------------------------------------------------------------------------------

test_updating_a_critical_resource_warns if {
	every type in ["aws_eks_cluster", "aws_vpc", "aws_security_group", "aws_iam_role", "aws_iam_policy"] {
		"WARN_HIGH_RISK_UPDATE" in warns([change(sprintf("%s.x", [type]), type, ["update"], {}, {})])
	}
}

test_upstream_does_not_flag_updates_to_other_types if {
	not "WARN_HIGH_RISK_UPDATE" in warns([change("vault_policy.engine", "vault_policy", ["update"], {}, {})])
	not "WARN_HIGH_RISK_UPDATE" in warns([change("postgresql_table.t", "postgresql_table", ["update"], {"row_security_enabled": true}, {"row_security_enabled": true})])
}

test_strict_flags_updates_to_secret_and_data_types_too if {
	"WARN_HIGH_RISK_UPDATE" in strict_warns([change("vault_policy.engine", "vault_policy", ["update"], {}, {})])
	"WARN_HIGH_RISK_UPDATE" in strict_warns([change("postgresql_table.t", "postgresql_table", ["update"], {"row_security_enabled": true}, {"row_security_enabled": true})])
	"WARN_HIGH_RISK_UPDATE" in strict_warns([change("aws_vpc.main", "aws_vpc", ["update"], {}, {})])
}

test_a_replacement_warns if {
	"WARN_RESOURCE_REPLACEMENT" in warns([change("aws_instance.web", "aws_instance", ["delete", "create"], {}, {})])
}

test_creating_a_critical_resource_warns if {
	every type in ["aws_db_instance", "aws_rds_cluster", "aws_eks_cluster"] {
		"WARN_NEW_CRITICAL_RESOURCE" in warns([change(sprintf("%s.x", [type]), type, ["create"], null, {})])
	}
}

test_upstream_does_not_flag_new_buckets_or_roles if {
	not "WARN_NEW_CRITICAL_RESOURCE" in warns([change("aws_s3_bucket.assets", "aws_s3_bucket", ["create"], null, {})])
	not "WARN_NEW_CRITICAL_RESOURCE" in warns([change("aws_iam_role.ci", "aws_iam_role", ["create"], null, {})])
}

test_strict_flags_new_buckets_and_roles if {
	"WARN_NEW_CRITICAL_RESOURCE" in strict_warns([change("aws_s3_bucket.assets", "aws_s3_bucket", ["create"], null, {})])
	"WARN_NEW_CRITICAL_RESOURCE" in strict_warns([change("aws_iam_role.ci", "aws_iam_role", ["create"], null, {})])
	"WARN_NEW_CRITICAL_RESOURCE" in strict_warns([change("aws_eks_cluster.main", "aws_eks_cluster", ["create"], null, {})])
}

test_queue_infrastructure_changes_warn if {
	"WARN_QUEUE_INFRASTRUCTURE_CHANGE" in warns([change("aws_elasticache_replication_group.redis", "aws_elasticache_replication_group", ["update"], {}, {})])
}

test_security_group_changes_warn if {
	"WARN_SECURITY_GROUP_CHANGE" in warns([change("aws_security_group_rule.ssh", "aws_security_group_rule", ["create"], null, {})])
}

test_ten_changes_have_a_large_blast_radius_nine_do_not if {
	ten := [change(sprintf("aws_instance.w%d", [i]), "aws_instance", ["update"], {}, {}) | some i in numbers.range(1, 10)]
	"WARN_LARGE_BLAST_RADIUS" in warns(ten)
	nine := [change(sprintf("aws_instance.w%d", [i]), "aws_instance", ["update"], {}, {}) | some i in numbers.range(1, 9)]
	not "WARN_LARGE_BLAST_RADIUS" in warns(nine)
}

test_a_plain_web_update_passes_clean if {
	r := arrakis.evaluate(plan([change("aws_instance.web", "aws_instance", ["update"], {}, {})]))
	count(r.hard_blocks) == 0
	count(r.warnings) == 0
	r.changes == 1
}

test_changes_in_other_parts_count_for_the_blast_radius if {
	p := object.union(plan([change("aws_instance.web", "aws_instance", ["update"], {}, {})]), {"changes_elsewhere": 9})
	r := arrakis.evaluate(p)
	r.changes == 10
	"WARN_LARGE_BLAST_RADIUS" in ids(r.warnings)
}

test_a_compact_entry_counts_for_its_resources if {
	entry := object.union(change("#0", "aws_instance", ["update"], {}, {}), {"count": 12})
	r := arrakis.evaluate(plan([entry]))
	r.changes == 12
	"WARN_LARGE_BLAST_RADIUS" in ids(r.warnings)
}
