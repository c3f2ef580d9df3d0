"""The policy pre-gate: the Rego tests beside the policy, plans of the real `terraform show -json`
shape through the engine and the CLI, cost, risk and the decision order."""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal

import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from arrakis_engine.errors import ValidationError
from arrakis_engine.policy.gate import PolicyGate
from arrakis_engine.policy.plan import Change
from arrakis_engine.policy.rego import POLICY_FIELDS, RegoPolicyEngine, compact, default_policy_dir, run_rego_tests
from arrakis_engine.policy.risk import level_of, score


def rc(address: str, type_: str, actions: list[str], *, before=None, after=None, mode="managed",
       module: str | None = None, reason: str | None = None) -> dict:
    """One resource change as Terraform 1.x writes it."""
    out = {"address": address, "mode": mode, "type": type_, "name": address.rsplit(".", 1)[-1],
           "provider_name": f"registry.terraform.io/hashicorp/{type_.split('_')[0]}",
           "change": {"actions": actions, "before": before, "after": after,
                      "after_unknown": {} if after is not None else None,
                      "before_sensitive": {} if before is not None else False,
                      "after_sensitive": {} if after is not None else False}}
    if module:
        out["module_address"] = module
    if reason:
        out["action_reason"] = reason
    return out


def plan(*changes: dict) -> dict:
    return {"format_version": "1.2", "terraform_version": "1.9.5",
            "planned_values": {"root_module": {}}, "resource_changes": list(changes),
            "configuration": {"provider_config": {}, "root_module": {}}, "timestamp": "2026-11-25T10:00:00Z",
            "applyable": True, "complete": True, "errored": False}


@pytest.fixture(scope="module")
def gate():
    return PolicyGate(RegoPolicyEngine())


def test_the_rego_tests_beside_the_policy_pass():
    results = run_rego_tests()
    assert len(results) >= 20
    assert [name for name, ok in results.items() if not ok] == []


def test_a_failing_rego_test_is_reported(tmp_path):
    folder = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), folder)
    extra = folder / "extra_test.rego"
    extra.write_text("package terraform.extra_test\nimport rego.v1\nimport data.terraform.arrakis\n"
                     "test_wrong if {\n\tcount(arrakis.evaluate({\"resource_changes\": []}).hard_blocks) == 1\n}\n"
                     "test_right if {\n\tcount(arrakis.evaluate({\"resource_changes\": []}).hard_blocks) == 0\n}\n")
    results = run_rego_tests(folder)
    assert results["extra_test.rego::test_wrong"] is False and results["extra_test.rego::test_right"] is True


def test_the_policy_reads_only_the_fields_the_engine_keeps():
    source = (default_policy_dir() / "arrakis_terraform.rego").read_text()
    read = set(re.findall(r"\.(?:before|after)\.(\w+)", source)) | set(re.findall(r"values\.(\w+)", source)) | \
        set(re.findall(r'object\.get\(values, "(\w+)"', source))
    assert read and read <= set(POLICY_FIELDS)


def test_nested_modules_replacements_and_data_sources(gate):
    d = gate.check(plan(
        rc("module.data.module.pg.postgresql_database.arrakis", "postgresql_database", ["delete", "create"],
           before={"name": "arrakis"}, after={"name": "arrakis"}, module="module.data.module.pg",
           reason="replace_because_cannot_update"),
        rc("module.k8s.kubernetes_persistent_volume_claim_v1.pg", "kubernetes_persistent_volume_claim_v1",
           ["create", "delete"], before={}, after={}, module="module.k8s"),  # create_before_destroy
        rc("data.aws_db_instance.main", "aws_db_instance", ["read"], after={}, mode="data"),
        rc("aws_instance.web", "aws_instance", ["no-op"], before={}, after={})))
    assert d.decision == "reject" and d.exit_status == 20
    assert [(b["id"], b["address"]) for b in d.hard_blocks] == [
        ("HARD_BLOCK_DELETE_DATABASE", "module.data.module.pg.postgresql_database.arrakis"),
        ("HARD_BLOCK_DELETE_PV", "module.k8s.kubernetes_persistent_volume_claim_v1.pg")]
    assert d.changes == 2  # the data source read and the no-op are not changes


def test_a_delete_hidden_among_a_thousand_no_ops(gate):
    noops = [rc(f"aws_instance.n{i}", "aws_instance", ["no-op"], before={}, after={}) for i in range(1000)]
    d = gate.check(plan(*noops[:600], rc("vault_policy.engine", "vault_policy", ["delete"], before={}), *noops[600:]))
    assert d.decision == "reject" and [b["address"] for b in d.hard_blocks] == ["vault_policy.engine"]


def test_findings_come_back_for_every_resource_of_a_kind(gate):
    web = [rc(f"aws_security_group_rule.r{i}", "aws_security_group_rule", ["create"], after={}) for i in range(12)]
    entries, addresses = compact(plan(*web)["resource_changes"])
    assert len(entries) == 1 and entries[0]["count"] == 12 and len(addresses[0]) == 12
    d = gate.check(plan(*web))
    groups = [w for w in d.warnings if w["id"] == "WARN_SECURITY_GROUP_CHANGE"]
    assert sorted(w["address"] for w in groups) == sorted(r["address"] for r in web)
    assert any(w["id"] == "WARN_LARGE_BLAST_RADIUS" and "12 resources" in w["message"] for w in d.warnings)
    assert d.decision == "review" and d.exit_status == 10


def test_disabling_rls_and_a_production_namespace(gate):
    d = gate.check(plan(
        rc("postgresql_table.profiles", "postgresql_table", ["update"],
           before={"name": "profiles", "row_security_enabled": True}, after={"name": "profiles",
                                                                           "row_security_enabled": False}),
        rc("kubernetes_namespace.main", "kubernetes_namespace", ["delete"],
           before={"metadata": [{"name": "arrakis-production", "labels": {}}]})))
    assert {b["id"] for b in d.hard_blocks} == {"HARD_BLOCK_DISABLE_RLS", "HARD_BLOCK_DELETE_PROD_NAMESPACE"}
    staging = gate.check(plan(rc("kubernetes_namespace.s", "kubernetes_namespace", ["delete"],
                                 before={"metadata": [{"name": "staging"}]})))
    assert staging.hard_blocks == [] and staging.decision == "review"  # a high-risk delete still gets a look


def test_decision_order_budget_review_approve(gate):
    small = plan(rc("aws_cloudwatch_log_group.app", "aws_cloudwatch_log_group", ["create"], after={}))
    ok = gate.check(small, {"currency": "USD", "totalMonthlyCost": "12.5", "diffTotalMonthlyCost": "2.50"})
    assert ok.decision == "approve" and ok.exit_status == 0 and ok.risk.score < 50
    over = gate.check(small, {"diffTotalMonthlyCost": "5000.01"})
    assert over.decision == "reject" and over.budget["exceeded"] and over.budget["excess_monthly"] == pytest.approx(0.01)
    assert any(r.startswith("BUDGET_EXCEEDED") and "$0.01 over" in r for r in over.reasons)
    at = gate.check(small, {"diffTotalMonthlyCost": "5000"})
    assert not at.budget["exceeded"]  # the limit itself is allowed
    cheap = PolicyGate(RegoPolicyEngine(), budget=Decimal(100))
    assert cheap.check(small, {"diffTotalMonthlyCost": "150"}).decision == "reject"
    risky = gate.check(plan(rc("aws_db_instance.main", "aws_db_instance", ["update"], before={}, after={})),
                       {"diffTotalMonthlyCost": "0"})
    assert risky.decision == "review" and any("WARN_HIGH_RISK_UPDATE" in r for r in risky.reasons)


def test_risk_factors_weights_and_levels():
    r = score([Change("postgresql_database.a", "postgresql_database", ("delete",))], Decimal(6000))
    assert r.factors == {"resource_type": 100, "operation": 100, "cost": 100, "blast_radius": 10}
    assert r.score == round(35 + 30 + 20 + 1.5) and r.level == "critical"
    assert "postgresql_database.a" in r.explanation and r.drivers
    unknown = score([Change("foo_bar.x", "foo_bar", ("create",))], Decimal(0))
    assert unknown.factors["resource_type"] == 30 and unknown.factors["operation"] == 20
    replaced = score([Change("aws_instance.a", "aws_instance", ("create", "delete"))], None)
    assert replaced.factors["operation"] == 90 and replaced.factors["cost"] == 50  # no estimate: not known cheap
    assert [level_of(s) for s in (80, 79, 60, 59, 40, 39)] == ["critical", "high", "high", "medium", "medium", "low"]
    assert score([], None).score == 0


@pytest.mark.parametrize("document, message", [
    ({"resource_changes": []}, "not a Terraform plan"),
    ([1, 2], "not a Terraform plan"),
    ({"format_version": "1.2", "resource_changes": {}}, "resource_changes must be a list"),
    ({"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a"}]}, "no valid change.actions"),
    ({"format_version": "1.2", "resource_changes": [{"type": "a", "change": {"actions": ["create"]}}]}, "no address"),
])
def test_malformed_plans_are_refused(gate, document, message):
    with pytest.raises(ValidationError, match=message):
        gate.check(document)


def test_plan_check_on_the_command_line(tmp_path):
    runner = CliRunner()
    env = {"ARRAKIS_DATA_DIR": str(tmp_path / "data")}  # no servers: plan check starts none

    def check(document, *extra):
        path = tmp_path / "plan.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return runner.invoke(cli, ["plan", "check", str(path), *extra], env=env)

    approve = check(plan(rc("aws_cloudwatch_log_group.a", "aws_cloudwatch_log_group", ["create"], after={})),
                    "--json")
    out = json.loads(approve.stdout)
    assert approve.exit_code == 0 and out["decision"] == "approve"
    assert {"decision", "risk_score", "risk_level", "hard_blocks", "warnings", "budget"} <= set(out)
    review = check(plan(rc("aws_sqs_queue.jobs", "aws_sqs_queue", ["update"], before={}, after={})))
    assert review.exit_code == 10 and review.stdout.startswith("decision: REVIEW")
    reject = check(plan(rc("aws_rds_cluster.main", "aws_rds_cluster", ["delete"], before={})))
    assert reject.exit_code == 20 and "HARD_BLOCK_DELETE_DATABASE" in reject.stdout
    cost = tmp_path / "cost.json"
    cost.write_text(json.dumps({"diffTotalMonthlyCost": "9000"}))
    budget = check(plan(rc("aws_instance.a", "aws_instance", ["create"], after={})), "--cost", str(cost))
    assert budget.exit_code == 20 and "BUDGET_EXCEEDED" in budget.stdout and "$4,000.00 over" in budget.stdout
    for document, words in (("not json", "is not JSON"), ({"a": 1}, "not a Terraform plan")):
        bad = check(document)
        assert bad.exit_code == 1 and words in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    missing = runner.invoke(cli, ["plan", "check", str(tmp_path / "none.json")], env=env)
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    cost.write_text(json.dumps({"totalMonthlyCost": "3"}))
    no_diff = check(plan(), "--cost", str(cost))
    assert no_diff.exit_code == 1 and "no diffTotalMonthlyCost" in no_diff.stderr
    assert not (tmp_path / "data" / "postgres").exists()  # nothing was started
