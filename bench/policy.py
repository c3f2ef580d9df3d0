"""Policy pre-gate evaluation time, in-process.

    python bench/policy.py [--runs 7]

For plans of 10, 100, 1,000 and 10,000 resource changes (a mix like a real infrastructure
repository: 40 resource types, creates, updates, replacements, deletes and no-ops, a few
namespaces), prints the median and slowest time of the whole gate (read checks, Rego over the
plan, risk, decision), the Rego entries the plan became, and the target (< 100 ms at 1,000).
Then the worst case at 1,000: every change of a different kind (no two alike), which the
engine cannot group; and the large cases: 10,000 changes of 2,000 kinds (the default limit of
distinct kinds, evaluated in full), and 10,000 and 30,000 changes of as many kinds (refused at
once, exit status 2), each with the process's peak memory so far.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arrakis_engine.errors import InputTooLarge  # noqa: E402
from arrakis_engine.policy.gate import PolicyGate  # noqa: E402
from arrakis_engine.policy.plan import json_shape  # noqa: E402
from arrakis_engine.adapters.rego import RegoPolicyEngine, compact  # noqa: E402
from arrakis_engine.policy.risk import STRICT_TYPE_RISK  # noqa: E402  (the widest list of types)
from bench.harness import parse_args  # noqa: E402

TYPES = sorted(STRICT_TYPE_RISK)[:36] + ["aws_lambda_permission", "helm_release", "random_id", "null_resource"]
ACTIONS = [["no-op"]] * 4 + [["update"]] * 3 + [["create"]] * 2 + [["delete", "create"], ["delete"]]


def make_plan(n: int, rng: random.Random, *, all_distinct: bool = False, kinds: int | None = None) -> dict:
    changes = []
    for i in range(n):
        if all_distinct or kinds:  # each a namespace of its own name: nothing can be grouped
            name = f"team-{i % kinds if kinds else i}"
            type_, actions, before = "kubernetes_namespace", ["delete"], {"metadata": [{"name": name}]}
        else:
            type_, actions = rng.choice(TYPES), rng.choice(ACTIONS)
            before = {"metadata": [{"name": rng.choice(["staging", "preview", "tools"])}]} \
                if type_.startswith("kubernetes_namespace") else {"id": f"id-{i}", "tags": {"team": "core"}}
        changes.append({"address": f"module.m{i % 7}.{type_}.r{i}", "module_address": f"module.m{i % 7}",
                        "mode": "managed", "type": type_, "name": f"r{i}",
                        "provider_name": "registry.terraform.io/hashicorp/x",
                        "change": {"actions": actions, "before": before, "after": {"id": f"id-{i}"},
                                   "after_unknown": {}, "before_sensitive": {}, "after_sensitive": {}}})
    return {"format_version": "1.2", "terraform_version": "1.9.5", "resource_changes": changes}


def timed(gate: PolicyGate, plan: dict, runs: int) -> tuple[float, float, str]:
    times, decision = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        decision = gate.check(plan, {"diffTotalMonthlyCost": "120.00"}).decision
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times), decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parse_args(parser, runs=1)
    rng = random.Random(48)
    gate = PolicyGate(RegoPolicyEngine())
    print(f"{'changes':>8} {'entries':>8} {'median ms':>10} {'max ms':>8}  decision")
    for n in (10, 100) if args.quick else (10, 100, 1_000, 10_000):
        plan = make_plan(n, rng)
        entries = len(compact(plan["resource_changes"])[0])
        median, worst, decision = timed(gate, plan, args.runs if n < 10_000 else max(3, args.runs // 2))
        print(f"{n:>8,} {entries:>8,} {median:>10.1f} {worst:>8.1f}  {decision}"
              + ("   (target < 100 ms)" if n == 1_000 else ""))
    plan = make_plan(100 if args.quick else 1_000, rng, all_distinct=True)
    median, worst, decision = timed(gate, plan, 3)
    print(f"worst case, {len(plan['resource_changes']):,} changes, each of a different kind: "
          f"median {median:.1f} ms, max {worst:.1f} ms, {decision}")
    large = 200 if args.quick else 10_000  # a quick run takes the same steps on small plans
    plan = make_plan(large, rng, kinds=min(gate.limits.max_kinds, large))
    median, worst, decision = timed(gate, plan, 1)
    print(f"large, {large:,} changes of {min(gate.limits.max_kinds, large):,} kinds: {median:.0f} ms, {decision}; "
          f"peak memory {_peak_mb():.0f} MB")
    with tempfile.TemporaryDirectory() as folder:  # what the limits cost when a plan is read from a file
        path = Path(folder) / "plan.json"
        path.write_text(json.dumps(make_plan(large, rng)))
        start = time.perf_counter()
        json_shape(path.read_text())
        scan = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        gate.read(path, "plan")
        print(f"reading a {large:,}-change plan file ({path.stat().st_size / 1e6:.1f} MB) within the limits: "
              f"{(time.perf_counter() - start) * 1000:.0f} ms, of which the size, values and depth scan {scan:.0f} ms")
    for n in (() if args.quick else (10_000, 30_000)):
        plan = make_plan(n, rng, all_distinct=True)
        start = time.perf_counter()
        try:
            gate.check(plan)
            outcome = "evaluated (not refused!)"
        except InputTooLarge as exc:
            outcome = f"refused, exit {exc.exit_code}: {exc}"
        print(f"large, {n:,} changes of {n:,} kinds: {(time.perf_counter() - start) * 1000:.0f} ms, {outcome}; "
              f"peak memory {_peak_mb():.0f} MB")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
