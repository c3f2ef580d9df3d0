# Arrakis policy pre-gate over a Terraform plan (`terraform show -json PLANFILE`).
#
# Evaluated in-process (regopy) by arrakis_engine.policy before any person reviews the change.
# `result` (= evaluate(input)) holds two lists (arrays: rego-cpp builds them faster than sets) of findings, each {id, address, type, actions,
# message}:
#   hard_blocks: what nobody may do, whoever approves (the plan is rejected);
#   warnings:    what a reviewer must look at (the plan goes to review).
#
# A change is a managed resource whose actions include create, update or delete ("no-op" and the
# "read" of a data source are not changes). A replacement (["delete", "create"], or
# ["create", "delete"] for create_before_destroy) deletes the old object, so it counts as a
# delete. resource_changes lists the resources of every module (module_address says which), so
# nested modules need nothing special.
#
# The engine hands the policy each distinct kind of change once, with "count" saying how many
# resources share it (see arrakis_engine/policy/rego.py); a plain plan has no count, which means 1.
# From before/after, rules read only row_security_enabled and metadata: a rule that needs another
# field must add it to POLICY_FIELDS there (a test checks). The engine may evaluate a large plan
# in parts: "changes_elsewhere" says how many resources the other parts change (0 when absent).
#
# "profile" chooses the type lists of two warnings (absent: "upstream"):
#   upstream: the design this gate comes from. A new critical resource is a database (RDS) or an
#             EKS cluster; a high-risk update touches EKS, a VPC, a security group or IAM.
#   strict:   every data store, secret store, IAM, namespace and bucket type below counts for both.
package terraform.arrakis

import rego.v1

# --- what counts as a change ----------------------------------------------------------------
#
# Every rule is a function of the plan (evaluate(plan)), so the tests beside this file call it
# with plans of their own.

changed_actions := {"create", "update", "delete"}

is_change(rc) if {
	object.get(rc, "mode", "managed") == "managed"
	some action in rc.change.actions
	action in changed_actions
}

changes_of(plan) := [rc |
	some rc in object.get(plan, "resource_changes", [])
	is_change(rc)
]

deletes(rc) if "delete" in rc.change.actions

replaces(rc) if {
	"delete" in rc.change.actions
	"create" in rc.change.actions
}

updates(rc) if "update" in rc.change.actions

creates_only(rc) if rc.change.actions == ["create"]

finding(id, rc, message) := {
	"id": id,
	"address": rc.address,
	"type": rc.type,
	"actions": rc.change.actions,
	"message": message,
}

# --- resource families ------------------------------------------------------------------------

persistent_volume_types := {
	"kubernetes_persistent_volume", "kubernetes_persistent_volume_claim",
	"kubernetes_persistent_volume_v1", "kubernetes_persistent_volume_claim_v1",
}

database_types := {"aws_db_instance", "aws_rds_cluster", "aws_rds_cluster_instance", "postgresql_database"}

vault_policy_types := {"vault_policy", "vault_auth_backend_role", "vault_token_auth_backend_role"}

namespace_types := {"kubernetes_namespace", "kubernetes_namespace_v1"}

production_namespaces := {"production", "prod", "arrakis-production"}

# The strict profile's types whose update deserves a second look, and whose creation is worth a warning.
critical_types := (((database_types | vault_policy_types) | persistent_volume_types) | namespace_types) | {
	"postgresql_table", "postgresql_role", "postgresql_grant", "postgresql_schema",
	"aws_iam_role", "aws_iam_policy", "aws_iam_role_policy", "aws_iam_user", "aws_kms_key",
	"vault_mount", "vault_jwt_auth_backend_role", "vault_approle_auth_backend_role",
	"aws_s3_bucket", "aws_s3_bucket_policy",
}

# The upstream design's lists.
upstream_new_critical_types := {"aws_db_instance", "aws_rds_cluster", "aws_eks_cluster"}

upstream_high_risk_update_types := {
	"aws_eks_cluster", "aws_vpc", "aws_security_group", "aws_iam_role", "aws_iam_policy",
}

# The strict profile is never laxer than the upstream one.
strict_new_critical_types := critical_types | upstream_new_critical_types

strict_high_risk_update_types := critical_types | upstream_high_risk_update_types

profiles := {
	"upstream": {"create": upstream_new_critical_types, "update": upstream_high_risk_update_types},
	"strict": {"create": strict_new_critical_types, "update": strict_high_risk_update_types},
}

queue_types := {
	"aws_elasticache_cluster", "aws_elasticache_replication_group", "aws_elasticache_serverless_cache",
	"aws_sqs_queue", "aws_mq_broker", "aws_msk_cluster", "google_redis_instance", "azurerm_redis_cache",
}

security_group_types := {
	"aws_security_group", "aws_security_group_rule", "aws_vpc_security_group_ingress_rule",
	"aws_vpc_security_group_egress_rule", "aws_network_acl", "aws_network_acl_rule",
	"google_compute_firewall", "azurerm_network_security_group", "azurerm_network_security_rule",
	"kubernetes_network_policy", "kubernetes_network_policy_v1",
}

# The namespace's names, whether the provider gives metadata as a list of one block or as an object.
namespace_names(values) := {name |
	some block in object.get(values, "metadata", [])
	is_object(block)
	name := block.name
} | {name |
	is_object(values.metadata)
	name := values.metadata.name
}

# --- hard blocks: nobody may do these ---------------------------------------------------------

delete_pv(cs) := [finding("HARD_BLOCK_DELETE_PV", rc, "deletes a persistent volume (its data goes with it)") |
	some rc in cs
	rc.type in persistent_volume_types
	deletes(rc)
]

delete_database(cs) := [finding("HARD_BLOCK_DELETE_DATABASE", rc, "deletes a database") |
	some rc in cs
	rc.type in database_types
	deletes(rc)
]

disable_rls(cs) := [finding("HARD_BLOCK_DISABLE_RLS", rc, "turns row-level security off on a table") |
	some rc in cs
	rc.type == "postgresql_table"
	rc.change.before.row_security_enabled == true
	rc.change.after.row_security_enabled == false
]

delete_prod_namespace(cs) := [finding("HARD_BLOCK_DELETE_PROD_NAMESPACE", rc, sprintf("deletes the production namespace '%s'", [name])) |
	some rc in cs
	rc.type in namespace_types
	deletes(rc)
	some name in namespace_names(rc.change.before)
	name in production_namespaces
]

delete_vault_policy(cs) := [finding("HARD_BLOCK_DELETE_VAULT_POLICY", rc, "deletes a Vault policy or auth role") |
	some rc in cs
	rc.type in vault_policy_types
	deletes(rc)
]

hard_blocks_of(cs) := [f |
	some found in [delete_pv(cs), delete_database(cs), disable_rls(cs), delete_prod_namespace(cs), delete_vault_policy(cs)]
	some f in found
]

# --- warnings: a reviewer must look ------------------------------------------------------------

high_risk_update(cs, types) := [finding("WARN_HIGH_RISK_UPDATE", rc, "changes a critical resource in place") |
	some rc in cs
	rc.type in types
	updates(rc)
]

replacement(cs) := [finding("WARN_RESOURCE_REPLACEMENT", rc, "replaces a resource (destroyed and created again)") |
	some rc in cs
	replaces(rc)
]

new_critical(cs, types) := [finding("WARN_NEW_CRITICAL_RESOURCE", rc, "creates a critical resource") |
	some rc in cs
	rc.type in types
	creates_only(rc)
]

queue_change(cs) := [finding("WARN_QUEUE_INFRASTRUCTURE_CHANGE", rc, "changes the queue or cache infrastructure") |
	some rc in cs
	rc.type in queue_types
]

security_group_change(cs) := [finding("WARN_SECURITY_GROUP_CHANGE", rc, "changes network access rules") |
	some rc in cs
	rc.type in security_group_types
]

# How many resources change: a plain plan counts each change once; the engine's compact input
# says how many resources each entry stands for.
changed_resources(cs) := sum([n |
	some rc in cs
	n := object.get(rc, "count", 1)
])

blast_radius(n) := [{
	"id": "WARN_LARGE_BLAST_RADIUS",
	"address": "",
	"type": "",
	"actions": [],
	"message": sprintf("%d resources change in one plan (10 or more)", [n]),
} | n >= 10]

warnings_of(cs, lists, n) := [f |
	some found in [
		high_risk_update(cs, lists.update), replacement(cs), new_critical(cs, lists.create), queue_change(cs),
		security_group_change(cs), blast_radius(n),
	]
	some f in found
]

# --- the answer -------------------------------------------------------------------------------

evaluate(plan) := {
	"hard_blocks": hard_blocks_of(cs),
	"warnings": warnings_of(cs, lists, n),
	"changes": n,
} if {
	cs := changes_of(plan)
	lists := profiles[object.get(plan, "profile", "upstream")]
	n := changed_resources(cs) + object.get(plan, "changes_elsewhere", 0)
}

result := evaluate(input)
