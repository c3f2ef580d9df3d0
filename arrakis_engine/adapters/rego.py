"""The policy-engine port on Rego, evaluated in-process with regopy (rego-cpp).

The policies are the ``*.rego`` files of the ``policies/`` folder (``*_test.rego`` beside them
are their unit tests, run by :func:`run_rego_tests`). Their entry point is
``data.terraform.arrakis.result``.

rego-cpp takes about 0.1 ms per resource to read its input and more per rule, so a plan of
thousands of resources would take seconds as it stands. The policies never need more of a
change than its mode, type, actions, and two fields of ``before``/``after``
(:data:`POLICY_FIELDS`). So the engine groups the changes that look the same in those respects,
hands the policy one entry per group with ``count`` saying how many resources it stands for, and
gives each finding back to every resource of its group. A plan of 1,000 instances of 20 kinds of
resource is then 20 entries. A test checks that the policies read no other field.

Bounded work: more than ``max_kinds`` distinct entries is refused before the policy runs, and the
entries are evaluated in parts of :data:`PART` against a deadline, so a plan that would take
longer than its time budget is refused (InputTooLarge) instead of holding the process. The
document of each part says how many resources the other parts change (``changes_elsewhere``), so
the plan-wide rules (blast radius) see the whole plan. ``profile`` names the policy's type lists
(``upstream`` or ``strict``, see :mod:`arrakis_engine.policy.risk`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputTooLarge, PolicyError
from ..policy.plan import CHANGE_ACTIONS, DEFAULT_LIMITS, PlanLimits, check_plan

ENTRY_POINT = "data.terraform.arrakis.result"
# The only fields of change.before / change.after the policies read.
POLICY_FIELDS = ("row_security_enabled", "metadata")
PART = 200  # entries per query: about half a second here, the most a deadline can be overrun
PROFILES = ("upstream", "strict")  # the policy's profiles (its `profiles` object)


def default_policy_dir() -> Path:
    """The project's ``policies/`` folder (beside the packages in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "policies"


def _slim(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    out = {k: values[k] for k in POLICY_FIELDS if k in values}
    if isinstance(out.get("metadata"), list):  # only the names of metadata blocks matter
        out["metadata"] = [{"name": b.get("name")} for b in out["metadata"] if isinstance(b, dict)]
    elif isinstance(out.get("metadata"), dict):
        out["metadata"] = {"name": out["metadata"].get("name")}
    return out


def compact(resource_changes: list[dict], max_kinds: int | None = None) -> tuple[list[dict], list[list[str]]]:
    """(one entry per kind of change, the addresses each entry stands for). Only changes are
    kept (what :func:`~arrakis_engine.policy.plan.changes_of` counts; the policy applies the same
    rule to a plain plan), and only what the policies read. More than ``max_kinds`` entries is
    refused (InputTooLarge)."""
    groups: dict[str, int] = {}
    entries: list[dict] = []
    addresses: list[list[str]] = []
    for rc in resource_changes:
        change = rc["change"]
        if rc.get("mode", "managed") != "managed" or not CHANGE_ACTIONS & set(change["actions"]):
            continue
        slim = {"actions": list(change["actions"])}
        for side in ("before", "after"):
            values = _slim(change.get(side))
            if values:
                slim[side] = values
        entry = {"type": rc["type"], "change": slim}
        key = json.dumps(entry, sort_keys=True)
        if key not in groups:
            if max_kinds is not None and len(entries) >= max_kinds:
                raise InputTooLarge(f"the plan has more than {max_kinds:,} distinct kinds of change (resources "
                                    "that differ in type, actions or what the policy reads); the limit is "
                                    f"{max_kinds:,} (ARRAKIS_PLAN_MAX_KINDS)", field="plan")
            groups[key] = len(entries)
            entries.append({**entry, "address": f"#{len(entries)}", "count": 0})
            addresses.append([])
        i = groups[key]
        entries[i]["count"] += 1
        addresses[i].append(rc["address"])
    return entries, addresses


class RegoPolicyEngine:
    """:class:`~arrakis_engine.ports.PolicyEngine` on the Rego files of ``policy_dir``."""

    def __init__(self, policy_dir: Path | None = None) -> None:
        self.policy_dir = Path(policy_dir or default_policy_dir())
        self.modules = {p.name: p.read_text() for p in sorted(self.policy_dir.glob("*.rego"))
                        if not p.name.endswith("_test.rego")}
        if not self.modules:
            raise PolicyError(f"no policies (*.rego) in {self.policy_dir}")
        self._lock = threading.Lock()  # one query at a time on the shared interpreter
        self._loaded = None

    def _interpreter(self, extra: Mapping[str, str] = ()):
        from regopy import Interpreter

        interpreter = Interpreter()
        try:
            for name, source in {**self.modules, **dict(extra)}.items():
                interpreter.add_module(name, source)
        except Exception as exc:  # regopy raises its own error with the parser's report
            raise PolicyError(f"the policies could not be loaded: {_first_line(exc)}") from exc
        return interpreter

    def evaluate(self, plan: Mapping[str, Any], *, profile: str = "upstream", limits: PlanLimits | None = None,
                 deadline: float | None = None) -> dict:
        """``{"hard_blocks", "warnings", "changes"}``; each finding has ``id``, ``address``,
        ``type``, ``actions`` and ``message``, once per resource it concerns. ``deadline`` (a
        ``time.monotonic()`` value; default: ``limits.time_budget`` from now) bounds the work."""
        if profile not in PROFILES:
            raise PolicyError(f"unknown policy profile '{profile}' (known: {', '.join(PROFILES)})")
        limits = limits or DEFAULT_LIMITS
        if deadline is None:
            deadline = time.monotonic() + limits.time_budget
        entries, addresses = compact(check_plan(plan, limits), limits.max_kinds)
        total = sum(e["count"] for e in entries)
        hard_blocks: list[dict] = []
        warnings: list[dict] = []
        seen_plan_wide: set[tuple[str, str]] = set()
        changes = 0
        for start in range(0, max(len(entries), 1), PART):
            if time.monotonic() > deadline:
                raise InputTooLarge(f"the policy evaluation ran out of its {limits.time_budget:g} s budget after "
                                    f"{start:,} of {len(entries):,} kinds of change (ARRAKIS_PLAN_TIME_BUDGET)",
                                    field="plan")
            part = entries[start:start + PART]
            answer = self._query({"format_version": plan.get("format_version"), "profile": profile,
                                  "changes_elsewhere": total - sum(e["count"] for e in part),
                                  "resource_changes": part})
            changes = answer["changes"]
            for found, out in ((answer["hard_blocks"], hard_blocks), (answer["warnings"], warnings)):
                for f in found:
                    address = f.get("address", "")
                    if address.startswith("#"):
                        out += [{**f, "address": a} for a in addresses[int(address[1:])]]
                    elif (f["id"], f.get("message", "")) not in seen_plan_wide:  # said by every part
                        seen_plan_wide.add((f["id"], f.get("message", "")))
                        out.append(f)

        def order(findings: list[dict]) -> list[dict]:
            return sorted(findings, key=lambda f: (f["id"], f["address"]))

        return {"hard_blocks": order(hard_blocks), "warnings": order(warnings), "changes": changes}

    def _query(self, document: dict) -> dict:
        with self._lock:
            if self._loaded is None:  # parsed once, reused with each new input
                self._loaded = self._interpreter()
            interpreter = self._loaded
            try:
                interpreter.set_input_term(json.dumps(document))
                output = interpreter.query(ENTRY_POINT)
            except Exception as exc:
                raise PolicyError(f"the policies failed to evaluate: {_first_line(exc)}") from exc
        values = json.loads(str(output)).get("expressions") or []
        if not values or not isinstance(values[0], dict):
            raise PolicyError(f"the policies gave no answer at {ENTRY_POINT}")
        return values[0]


_TEST_RULE = re.compile(r"^(test_\w+)\s+if\b", re.M)
_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.M)


def run_rego_tests(policy_dir: Path | None = None) -> dict[str, bool]:
    """Every ``test_*`` rule of every ``*_test.rego`` beside the policies: ``{"file::rule": passed}``.
    A rule that is not true (undefined, false, or an error inside it) has failed."""
    engine = RegoPolicyEngine(policy_dir)
    results: dict[str, bool] = {}
    for path in sorted(engine.policy_dir.glob("*_test.rego")):
        source = path.read_text()
        package = _PACKAGE.search(source)
        if package is None:
            raise PolicyError(f"{path.name} has no package line")
        interpreter = engine._interpreter({path.name: source})
        interpreter.set_input_term("{}")  # regopy needs an input document, even an empty one
        values = json.loads(str(interpreter.query(f"data.{package.group(1)}"))).get("expressions") or [{}]
        for rule in _TEST_RULE.findall(source):
            results[f"{path.name}::{rule}"] = values[0].get(rule) is True
    return results


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
