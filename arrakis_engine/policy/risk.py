"""The risk score a reviewer reads first: 0 to 100, where to look, and why.

score = 0.35 x resource type + 0.30 x operation + 0.20 x cost + 0.15 x blast radius

Each factor is the highest over the plan's changes, from the tables below (one place; change
them here). Level: 80 and up critical, 60 high, 40 medium, else low.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

from .plan import Change

WEIGHTS = {"resource_type": 0.35, "operation": 0.30, "cost": 0.20, "blast_radius": 0.15}

# How bad it is when this kind of resource goes wrong. A type not listed scores UNKNOWN_TYPE.
RESOURCE_TYPE_RISK: dict[str, int] = {
    # data stores: losing them loses members' standing and history
    "postgresql_database": 100, "aws_db_instance": 100, "aws_rds_cluster": 100, "aws_rds_cluster_instance": 95,
    "kubernetes_persistent_volume": 95, "kubernetes_persistent_volume_v1": 95,
    "kubernetes_persistent_volume_claim": 90, "kubernetes_persistent_volume_claim_v1": 90,
    "postgresql_table": 90, "postgresql_schema": 85, "postgresql_role": 80, "postgresql_grant": 80,
    # secrets and who may do what
    "vault_policy": 90, "vault_auth_backend_role": 90, "vault_token_auth_backend_role": 90, "vault_mount": 85,
    "vault_approle_auth_backend_role": 85, "vault_jwt_auth_backend_role": 85,
    "aws_kms_key": 90, "aws_iam_role": 80, "aws_iam_policy": 80, "aws_iam_role_policy": 80, "aws_iam_user": 75,
    # where everything runs
    "kubernetes_namespace": 85, "kubernetes_namespace_v1": 85,
    "aws_security_group": 70, "aws_security_group_rule": 70, "aws_vpc_security_group_ingress_rule": 70,
    "aws_vpc_security_group_egress_rule": 70, "aws_network_acl": 70, "aws_network_acl_rule": 70,
    "google_compute_firewall": 70, "azurerm_network_security_group": 70, "azurerm_network_security_rule": 70,
    "kubernetes_network_policy": 65, "kubernetes_network_policy_v1": 65,
    # the queue, caches and storage
    "aws_elasticache_cluster": 65, "aws_elasticache_replication_group": 70, "aws_elasticache_serverless_cache": 65,
    "aws_sqs_queue": 60, "aws_mq_broker": 65, "aws_msk_cluster": 65, "google_redis_instance": 65,
    "azurerm_redis_cache": 65, "aws_s3_bucket": 60, "aws_s3_bucket_policy": 70,
    # workloads: replaced often, rebuilt easily
    "kubernetes_deployment": 40, "kubernetes_deployment_v1": 40, "kubernetes_service": 35,
    "kubernetes_service_v1": 35, "kubernetes_config_map": 30, "kubernetes_config_map_v1": 30,
    "kubernetes_secret": 60, "kubernetes_secret_v1": 60, "aws_instance": 40, "aws_lambda_function": 40,
    "aws_cloudwatch_log_group": 15, "aws_route53_record": 45,
}
UNKNOWN_TYPE = 30

OPERATION_RISK = {"delete": 100, "replace": 90, "update": 50, "create": 20, "no-op": 0}

# (the monthly increase in dollars below which, score): a saving or nothing scores 0.
COST_STEPS: tuple[tuple[Decimal, int], ...] = (
    (Decimal("0.01"), 0), (Decimal(100), 10), (Decimal(500), 25), (Decimal(1000), 40), (Decimal(2500), 60),
    (Decimal(5000), 80))
COST_OVER = 100
COST_UNKNOWN = 50  # no cost estimate given: not known to be cheap

# (fewer changed resources than, score)
BLAST_STEPS: tuple[tuple[int, int], ...] = ((1, 0), (2, 10), (5, 25), (10, 50), (25, 75))
BLAST_OVER = 100

LEVELS = ((80, "critical"), (60, "high"), (40, "medium"))


@dataclass(frozen=True)
class Risk:
    score: int
    level: str
    factors: dict[str, int]
    drivers: list[str]  # the resources (or facts) that set each factor
    explanation: str

    def as_dict(self) -> dict:
        return asdict(self)


def level_of(score: float) -> str:
    return next((name for floor, name in LEVELS if score >= floor), "low")


def cost_factor(increase: Decimal | None) -> int:
    if increase is None:
        return COST_UNKNOWN
    return next((score for below, score in COST_STEPS if increase < below), COST_OVER)


def blast_factor(count: int) -> int:
    return next((score for below, score in BLAST_STEPS if count < below), BLAST_OVER)


def score(changes: list[Change], cost_increase: Decimal | None) -> Risk:
    """The plan's risk from its changes and its monthly cost increase (None: not estimated)."""
    if changes:
        worst_type = max(changes, key=lambda c: RESOURCE_TYPE_RISK.get(c.type, UNKNOWN_TYPE))
        worst_op = max(changes, key=lambda c: OPERATION_RISK[c.operation])
        type_score = RESOURCE_TYPE_RISK.get(worst_type.type, UNKNOWN_TYPE)
        op_score = OPERATION_RISK[worst_op.operation]
    else:
        worst_type = worst_op = None
        type_score = op_score = 0
    factors = {"resource_type": type_score, "operation": op_score, "cost": cost_factor(cost_increase) if changes or
               cost_increase is not None else 0, "blast_radius": blast_factor(len(changes))}
    total = round(sum(WEIGHTS[k] * v for k, v in factors.items()))
    why: dict[str, list[str]] = {}
    if worst_type is not None:
        why.setdefault(worst_type.address, []).append(f"{worst_type.type}, type risk {type_score}")
        why.setdefault(worst_op.address, []).append(f"{worst_op.operation}, operation risk {op_score}")
    drivers = [f"{address} ({'; '.join(parts)})" for address, parts in why.items()]
    cost_words = ("no cost estimate given" if cost_increase is None
                  else f"${cost_increase:,.2f} a month {'more' if cost_increase >= 0 else 'less'}")
    explanation = (f"risk {total} ({level_of(total)}): type {type_score} x 0.35 + operation {op_score} x 0.30 + "
                   f"cost {factors['cost']} x 0.20 ({cost_words}) + blast radius {factors['blast_radius']} x 0.15 "
                   f"({len(changes)} resource(s) change)")
    if drivers:
        explanation += "; driven by " + " and ".join(drivers)
    return Risk(total, level_of(total), factors, drivers, explanation)
