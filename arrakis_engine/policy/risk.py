"""The risk score a reviewer reads first: 0 to 100, where to look, and why.

score = 0.35 x resource type + 0.30 x operation + 0.20 x cost + 0.15 x blast radius

Each factor is the highest over the plan's changes, from the tables of a :class:`RiskProfile`
(one place; change them here), rounded half up. Level: 80 and up critical, 60 high, 40 medium,
else low.

Two profiles (setting ``ARRAKIS_POLICY_PROFILE``, or ``arrakis plan check --profile``):

- ``upstream`` (the default): the tables of the design this gate comes from. Resource types as
  below (unknown 30); delete 100, replace 90, update 50, create 20; cost by the size of the monthly
  difference either way (none given: 0) at $100 / 500 / 1,000 / 2,000 / 5,000 scoring 20 / 40 / 60
  / 80 / 100; blast radius 1 change 10, 2 to 4: 20, 5: 40, 10: 60, 20: 80, 50 or more 100.
- ``strict``: more resource types, each scored at least as high as upstream; a missing cost
  estimate scores 50 (not known to be cheap) and any increase counts (a saving scores 0); the cost
  steps $0.01 / 100 / 500 / 1,000 / 2,500 / 5,000 score 10 / 25 / 40 / 60 / 80 / 100; blast radius
  1 change 10, 2: 25, 5: 50, 10: 75, 25 or more 100. Its policy also warns about updates to and
  creations of every data store, secret store, IAM, namespace and bucket type (see the Rego file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Mapping

from ..errors import ValidationError
from .plan import Change

WEIGHTS = {"resource_type": 35, "operation": 30, "cost": 20, "blast_radius": 15}  # hundredths

OPERATION_RISK = {"delete": 100, "replace": 90, "update": 50, "create": 20, "no-op": 0}

# The upstream design's resource table. A type not listed scores UNKNOWN_TYPE.
UPSTREAM_TYPE_RISK: dict[str, int] = {
    # critical infrastructure
    "postgresql_database": 100, "aws_db_instance": 95, "aws_rds_cluster": 95, "aws_rds_cluster_instance": 95,
    "kubernetes_persistent_volume": 100, "kubernetes_persistent_volume_claim": 90,
    # security-sensitive
    "vault_policy": 90, "aws_iam_role": 85, "aws_iam_policy": 85, "kubernetes_role": 80,
    "kubernetes_role_binding": 80,
    # production services
    "aws_eks_cluster": 80, "kubernetes_namespace": 75, "aws_instance": 70, "kubernetes_deployment": 65,
    "kubernetes_service": 60,
    # networking
    "aws_vpc": 70, "aws_subnet": 65, "aws_security_group": 60, "aws_lb": 60, "aws_nat_gateway": 55,
    # lower risk
    "kubernetes_secret": 50, "aws_s3_bucket": 40, "kubernetes_config_map": 30, "aws_cloudwatch_log_group": 20,
}

# The strict profile's own table; where the upstream one scores a type higher, that wins.
_STRICT_OWN: dict[str, int] = {
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
STRICT_TYPE_RISK: dict[str, int] = {t: max(_STRICT_OWN.get(t, 0), UPSTREAM_TYPE_RISK.get(t, 0))
                                    for t in {**UPSTREAM_TYPE_RISK, **_STRICT_OWN}}
UNKNOWN_TYPE = 30


@dataclass(frozen=True)
class RiskProfile:
    """One set of factor tables. Steps are ``(at least, score)``, highest first."""

    name: str
    resource_types: Mapping[str, int]
    cost_steps: tuple[tuple[Decimal, int], ...]
    blast_steps: tuple[tuple[int, int], ...]
    cost_unknown: int  # no cost estimate given
    cost_both_ways: bool  # a saving scores by its size too (upstream) or as nothing (strict)
    unknown_type: int = UNKNOWN_TYPE
    operations: Mapping[str, int] = field(default_factory=lambda: dict(OPERATION_RISK))

    def type_risk(self, type_: str) -> int:
        return self.resource_types.get(type_, self.unknown_type)

    def cost_factor(self, difference: Decimal | None) -> int:
        if difference is None:
            return self.cost_unknown
        amount = abs(difference) if self.cost_both_ways else difference
        return next((score for least, score in self.cost_steps if amount >= least), 0)

    def blast_factor(self, count: int) -> int:
        return next((score for least, score in self.blast_steps if count >= least), 0)


UPSTREAM = RiskProfile(
    "upstream", UPSTREAM_TYPE_RISK,
    cost_steps=((Decimal(5000), 100), (Decimal(2000), 80), (Decimal(1000), 60), (Decimal(500), 40),
                (Decimal(100), 20)),
    blast_steps=((50, 100), (20, 80), (10, 60), (5, 40), (2, 20), (1, 10)),
    cost_unknown=0, cost_both_ways=True)
STRICT = RiskProfile(
    "strict", STRICT_TYPE_RISK,
    cost_steps=((Decimal(5000), 100), (Decimal(2500), 80), (Decimal(1000), 60), (Decimal(500), 40),
                (Decimal(100), 25), (Decimal("0.01"), 10)),
    blast_steps=((25, 100), (10, 75), (5, 50), (2, 25), (1, 10)),
    cost_unknown=50, cost_both_ways=False)
PROFILES: dict[str, RiskProfile] = {p.name: p for p in (UPSTREAM, STRICT)}
DEFAULT_PROFILE = "upstream"

# The default profile's tables under their old names.
RESOURCE_TYPE_RISK = UPSTREAM.resource_types

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


def profile_named(name: str) -> RiskProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValidationError(f"unknown policy profile '{name}' (known: {', '.join(PROFILES)})",
                              field="profile") from None


def score(changes: list[Change], cost_difference: Decimal | None, profile: RiskProfile = UPSTREAM) -> Risk:
    """The plan's risk from its changes and its monthly cost difference (None: not estimated)."""
    p = profile
    if changes:
        worst_type = max(changes, key=lambda c: p.type_risk(c.type))
        worst_op = max(changes, key=lambda c: p.operations[c.operation])
        type_score = p.type_risk(worst_type.type)
        op_score = p.operations[worst_op.operation]
    else:
        worst_type = worst_op = None
        type_score = op_score = 0
    factors = {"resource_type": type_score, "operation": op_score,
               "cost": p.cost_factor(cost_difference) if changes or cost_difference is not None else 0,
               "blast_radius": p.blast_factor(len(changes))}
    total = (sum(WEIGHTS[k] * v for k, v in factors.items()) + 50) // 100  # half up, in whole numbers
    why: dict[str, list[str]] = {}
    if worst_type is not None:
        why.setdefault(worst_type.address, []).append(f"{worst_type.type}, type risk {type_score}")
        why.setdefault(worst_op.address, []).append(f"{worst_op.operation}, operation risk {op_score}")
    drivers = [f"{address} ({'; '.join(parts)})" for address, parts in why.items()]
    cost_words = ("no cost estimate given" if cost_difference is None
                  else f"${abs(cost_difference):,.2f} a month {'more' if cost_difference >= 0 else 'less'}")
    explanation = (f"risk {total} ({level_of(total)}): type {type_score} x 0.35 + operation {op_score} x 0.30 + "
                   f"cost {factors['cost']} x 0.20 ({cost_words}) + blast radius {factors['blast_radius']} x 0.15 "
                   f"({len(changes)} resource(s) change)")
    if drivers:
        explanation += "; driven by " + " and ".join(drivers)
    return Risk(total, level_of(total), factors, drivers, explanation)
