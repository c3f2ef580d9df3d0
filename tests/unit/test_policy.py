"""The policy pre-gate: the Rego tests beside the policy, plans of the real `terraform show -json`
shape through the engine and the CLI, cost, risk and the decision order."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from click.testing import CliRunner

from arrakis_engine.cli import cli
from arrakis_engine.errors import InputTooLarge, ValidationError
from arrakis_engine.policy.gate import PolicyGate
from arrakis_engine.policy.plan import Change, PlanLimits
from arrakis_engine.adapters.rego import (PART, POLICY_FIELDS, PROFILES as REGO_PROFILES, RegoPolicyEngine, compact,
                                        default_policy_dir, run_rego_tests)
from arrakis_engine.policy.risk import PROFILES, STRICT, UPSTREAM, level_of, score
from arrakis_engine.settings import POLICY_PROFILES, Settings


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
    risky = gate.check(plan(rc("aws_iam_role.deploy", "aws_iam_role", ["update"], before={}, after={})),
                       {"diffTotalMonthlyCost": "0"})
    assert risky.decision == "review" and any("WARN_HIGH_RISK_UPDATE" in r for r in risky.reasons)


def test_risk_factors_weights_and_levels():
    r = score([Change("postgresql_database.a", "postgresql_database", ("delete",))], Decimal(6000))
    assert r.factors == {"resource_type": 100, "operation": 100, "cost": 100, "blast_radius": 10}
    assert r.score == 87 and r.level == "critical"  # 35 + 30 + 20 + 1.5, rounded half up as upstream does
    assert "postgresql_database.a" in r.explanation and r.drivers
    unknown = score([Change("foo_bar.x", "foo_bar", ("create",))], Decimal(0))
    assert unknown.factors["resource_type"] == 30 and unknown.factors["operation"] == 20
    replaced = score([Change("aws_instance.a", "aws_instance", ("create", "delete"))], None)
    assert replaced.factors["operation"] == 90 and replaced.factors["cost"] == 0  # upstream: no estimate is 0
    strict = score([Change("aws_instance.a", "aws_instance", ("create", "delete"))], None, STRICT)
    assert strict.factors["cost"] == 50  # strict: no estimate is not known to be cheap
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


# --- the upstream design's tables are the default; strict is a named profile (issue 28.14) ------

def _cli(tmp_path, document, *extra, env=None):
    path = tmp_path / "plan.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return CliRunner().invoke(cli, ["plan", "check", str(path), *extra],
                              env={"ARRAKIS_DATA_DIR": str(tmp_path / "data"), **(env or {})})


def test_a_vault_policy_delete_scores_the_upstream_63(gate, tmp_path):
    doomed = plan(rc("vault_policy.engine", "vault_policy", ["delete"], before={}))
    d = gate.check(doomed)
    # 0.35 x 90 + 0.30 x 100 + 0.20 x 0 (no estimate) + 0.15 x 10 (one change) = 63
    assert d.risk.score == 63 and d.risk.factors == {"resource_type": 90, "operation": 100, "cost": 0,
                                                     "blast_radius": 10}
    assert d.profile == "upstream" and d.decision == "reject"  # still a hard block
    strict = gate.check(doomed, profile="strict")
    assert strict.risk.score == 73 and strict.profile == "strict"
    out = json.loads(_cli(tmp_path, doomed, "--json").stdout)
    assert out["risk_score"] == 63 and out["profile"] == "upstream"
    assert json.loads(_cli(tmp_path, doomed, "--json", "--profile", "strict").stdout)["risk_score"] == 73
    assert json.loads(_cli(tmp_path, doomed, "--json", env={"ARRAKIS_POLICY_PROFILE": "strict"}).stdout)[
        "risk_score"] == 73


def test_a_new_bucket_and_an_rls_keeping_table_update_pass_upstream_but_not_strict(gate, tmp_path):
    bucket = plan(rc("aws_s3_bucket.assets", "aws_s3_bucket", ["create"], after={"bucket": "assets"}))
    table = plan(rc("postgresql_table.profiles", "postgresql_table", ["update"],
                    before={"row_security_enabled": True}, after={"row_security_enabled": True}))
    for document in (bucket, table):
        d = gate.check(document)
        assert d.decision == "approve" and d.warnings == [], d.reasons
        s = gate.check(document, profile="strict")
        assert s.decision == "review" and {w["id"] for w in s.warnings} & {"WARN_NEW_CRITICAL_RESOURCE",
                                                                          "WARN_HIGH_RISK_UPDATE"}
    assert _cli(tmp_path, bucket).exit_code == 0
    assert _cli(tmp_path, bucket, "--profile", "strict").exit_code == 10
    assert _cli(tmp_path, table, env={"ARRAKIS_POLICY_PROFILE": "strict"}).exit_code == 10


@pytest.mark.parametrize("diff, upstream, strict", [
    (None, 0, 50), (Decimal("0"), 0, 0), (Decimal("99.99"), 0, 10), (Decimal(100), 20, 25), (Decimal(500), 40, 40),
    (Decimal(1000), 60, 60), (Decimal(2000), 80, 60), (Decimal(2500), 80, 80), (Decimal(5000), 100, 100),
    (Decimal(-6000), 100, 0),  # upstream scores the size of the difference, a saving too
])
def test_cost_steps(diff, upstream, strict):
    assert (UPSTREAM.cost_factor(diff), STRICT.cost_factor(diff)) == (upstream, strict)


@pytest.mark.parametrize("count, upstream, strict", [
    (0, 0, 0), (1, 10, 10), (2, 20, 25), (4, 20, 25), (5, 40, 50), (9, 40, 50), (10, 60, 75), (19, 60, 75),
    (20, 80, 75), (25, 80, 100), (49, 80, 100), (50, 100, 100),
])
def test_blast_radius_steps(count, upstream, strict):
    assert (UPSTREAM.blast_factor(count), STRICT.blast_factor(count)) == (upstream, strict)


def test_the_profiles_agree_everywhere_and_strict_is_never_laxer():
    assert tuple(PROFILES) == REGO_PROFILES == POLICY_PROFILES
    assert UPSTREAM.resource_types["aws_s3_bucket"] == 40 and UPSTREAM.resource_types["aws_eks_cluster"] == 80
    assert all(STRICT.type_risk(t) >= UPSTREAM.type_risk(t) for t in {*UPSTREAM.resource_types,
                                                                      *STRICT.resource_types})
    with pytest.raises(Exception, match="not a policy profile"):
        Settings.from_env({"ARRAKIS_POLICY_PROFILE": "lenient"}, env_file=None)
    bad = CliRunner().invoke(cli, ["plan", "check", "x.json", "--profile", "lenient"])
    assert bad.exit_code == 2


# --- bounded input: refused with one line and exit status 2, never a crash (issue 24.10) ---------

def _arrakis(tmp_path, *args, env=None, preload="import sys"):
    """The CLI in its own process, as a user runs it; ``preload`` runs first in that process."""
    code = f"{preload}; from arrakis_engine.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ARRAKIS_DATA_DIR": str(tmp_path / "data"), **(env or {})})


@pytest.mark.parametrize("preload", ["import sys", "import py_ecc"])  # py_ecc raises the recursion limit
def test_a_plan_nested_200000_deep_is_refused_not_a_crash(tmp_path, preload):
    deep = tmp_path / "deep.json"
    deep.write_text('{"format_version": "1.2", "resource_changes": ' + "[" * 200_000 + "]" * 200_000 + "}")
    run = _arrakis(tmp_path, "plan", "check", str(deep), preload=preload)
    assert run.returncode == 2, (run.returncode, run.stderr[-500:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "200,001 levels deep" in lines[0] and "ARRAKIS_PLAN_MAX_DEPTH" in lines[0]
    assert "Traceback" not in run.stderr and run.stdout == ""
    cost = tmp_path / "cost.json"
    cost.write_text('{"diffTotalMonthlyCost": ' + "[" * 5000 + "]" * 5000 + "}")
    small = tmp_path / "small.json"
    small.write_text(json.dumps(plan()))
    bad_cost = _arrakis(tmp_path, "plan", "check", str(small), "--cost", str(cost), preload=preload)
    assert bad_cost.returncode == 2 and len(bad_cost.stderr.strip().splitlines()) == 1


def test_brackets_inside_strings_do_not_count_as_nesting(gate, tmp_path):
    tricky = plan(rc("aws_instance.web", "aws_instance", ["update"], before={"user_data": "[" * 5000},
                     after={"user_data": '\\"]' + "{" * 5000}))
    assert _cli(tmp_path, tricky).exit_code == 0


def test_a_wide_plan_is_refused_before_it_is_parsed(tmp_path):
    """32 MB of empty arrays took 22 s and 1 GB to parse before it was found not to be a plan."""
    wide = tmp_path / "wide.json"
    wide.write_text('{"format_version": "1.2", "resource_changes": [' + ",".join(["[]"] * 5_000_000) + "]}")
    run = _arrakis(tmp_path, "plan", "check", str(wide))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "about 10,000,003 JSON values" in run.stderr and "ARRAKIS_PLAN_MAX_VALUES" in run.stderr  # counted: commas, arrays, objects
    few = _cli(tmp_path, plan(rc("aws_instance.a", "aws_instance", ["update"], before={"a": list(range(200))},
                                after={})), env={"ARRAKIS_PLAN_MAX_VALUES": "100"})
    assert few.exit_code == 2 and "the limit is 100" in few.stderr


def test_size_resource_count_and_kind_limits(tmp_path):
    many = plan(*[rc(f"aws_instance.w{i}", "aws_instance", ["update"], before={}, after={}) for i in range(51)])
    big = _cli(tmp_path, many, env={"ARRAKIS_PLAN_MAX_BYTES": "2048"})
    assert big.exit_code == 2 and "the limit is" in big.stderr and "ARRAKIS_PLAN_MAX_BYTES" in big.stderr
    assert len(big.stderr.strip().splitlines()) == 1
    counted = _cli(tmp_path, many, env={"ARRAKIS_PLAN_MAX_RESOURCES": "50"})
    assert counted.exit_code == 2 and "51 resources" in counted.stderr and "ARRAKIS_PLAN_MAX_RESOURCES" in counted.stderr
    assert _cli(tmp_path, many, env={"ARRAKIS_PLAN_MAX_RESOURCES": "51"}).exit_code == 10
    kinds = plan(*[rc(f"kubernetes_namespace.n{i}", "kubernetes_namespace", ["update"],
                      before={"metadata": [{"name": f"team-{i}"}]}, after={}) for i in range(30)])
    distinct = _cli(tmp_path, kinds, env={"ARRAKIS_PLAN_MAX_KINDS": "29"})
    assert distinct.exit_code == 2 and "distinct kinds" in distinct.stderr
    assert len(distinct.stderr.strip().splitlines()) == 1


def test_ten_thousand_kinds_are_refused_at_once_by_default(gate):
    plan_ = plan(*[rc(f"kubernetes_namespace.n{i}", "kubernetes_namespace", ["delete"],
                      before={"metadata": [{"name": f"team-{i}"}]}) for i in range(10_000)])
    start = time.perf_counter()
    with pytest.raises(InputTooLarge, match="more than 2,000 distinct kinds") as refused:
        gate.check(plan_)
    assert time.perf_counter() - start < 5 and refused.value.exit_code == 2  # was 15 s and 700 MB


def test_the_evaluation_keeps_to_its_time_budget(tmp_path):
    engine = RegoPolicyEngine()
    kinds = plan(*[rc(f"kubernetes_namespace.n{i}", "kubernetes_namespace", ["delete"],
                      before={"metadata": [{"name": f"team-{i}"}]}) for i in range(1_000)])  # five parts

    def refused_after(budget: float) -> tuple[int, float]:
        """(kinds evaluated before the refusal, seconds it took)."""
        start = time.perf_counter()
        with pytest.raises(InputTooLarge, match=f"ran out of its {budget:g} s budget") as refused:
            PolicyGate(engine, limits=PlanLimits(time_budget=budget)).check(kinds)
        took = time.perf_counter() - start
        done = re.search(r"after ([\d,]+) of 1,000 kinds", str(refused.value))
        return int(done.group(1).replace(",", "")), took

    start = time.perf_counter()
    assert PolicyGate(engine, limits=PlanLimits(time_budget=300)).check(kinds).changes == 1_000  # the whole plan
    whole_took = time.perf_counter() - start
    # A budget shorter than one part (200 kinds take about 0.1 s here, more under load): the
    # deadline has passed by the end of the first part, so no second part is begun, however loaded
    # the machine, and the refusal comes after at most one part of the five the whole plan takes.
    done, hurried_took = refused_after(0.01)
    assert done <= PART
    assert hurried_took < whole_took / 2, (hurried_took, whole_took)
    # A deadline that passes between parts: the parts begun before it ran, the rest did not.
    done, _ = refused_after(0.2)
    assert 0 < done < 1_000 and done % PART == 0, done
    cli_run = _cli(tmp_path, kinds, env={"ARRAKIS_PLAN_TIME_BUDGET": "0.2"})
    assert cli_run.exit_code == 2 and "ARRAKIS_PLAN_TIME_BUDGET" in cli_run.stderr


def test_a_large_plan_split_in_parts_gives_the_same_answer_as_one_part(gate, monkeypatch):
    import arrakis_engine.adapters.rego as rego

    changes = [rc(f"kubernetes_namespace.n{i}", "kubernetes_namespace", ["delete"],
                  before={"metadata": [{"name": "prod" if i == 450 else f"team-{i}"}]}) for i in range(500)]
    whole = gate.check(plan(*changes))
    monkeypatch.setattr(rego, "PART", 7)
    parts = gate.check(plan(*changes))
    assert parts.as_dict() == whole.as_dict()
    assert [w["id"] for w in parts.warnings].count("WARN_LARGE_BLAST_RADIUS") == 1
    assert [b["address"] for b in parts.hard_blocks] == ["kubernetes_namespace.n450"]


def test_repeated_findings_are_one_line_per_rule(tmp_path):
    rules = [rc(f"aws_security_group_rule.r{i}", "aws_security_group_rule", ["create"], after={}) for i in range(500)]
    run = _cli(tmp_path, plan(*rules))
    assert run.exit_code == 10
    lines = run.stdout.splitlines()
    assert len(lines) < 12, lines
    grouped = [line for line in lines if "WARN_SECURITY_GROUP_CHANGE" in line]
    assert len(grouped) == 1 and "500 resources" in grouped[0] and "and 497 more" in grouped[0]
    assert "aws_security_group_rule.r0" in grouped[0]


def test_hard_blocks_are_grouped_too(gate):
    doomed = [rc(f"kubernetes_namespace.n{i}", "kubernetes_namespace", ["delete"],
                 before={"metadata": [{"name": name}]}) for i, name in enumerate(["prod", "production", "prod"])]
    doomed += [rc(f"aws_db_instance.db{i}", "aws_db_instance", ["delete"], before={}) for i in range(40)]
    d = gate.check(plan(*doomed))
    assert d.decision == "reject" and len(d.reasons) == 2 and len(d.hard_blocks) == 43
    db, ns = d.reasons
    assert db.startswith("HARD_BLOCK_DELETE_DATABASE: deletes a database; 40 resources: aws_db_instance.db0, ")
    assert db.endswith(" and 37 more")
    assert ns == ("HARD_BLOCK_DELETE_PROD_NAMESPACE: deletes the production namespace 'prod' / deletes the "
                  "production namespace 'production'; 3 resources: kubernetes_namespace.n0, kubernetes_namespace.n1, "
                  "kubernetes_namespace.n2")
