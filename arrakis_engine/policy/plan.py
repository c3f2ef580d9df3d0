"""Reading a Terraform plan (``terraform show -json PLANFILE``) and an Infracost breakdown.

A plan is a JSON object with ``format_version`` and a ``resource_changes`` list; each change has
an ``address``, a ``type`` and ``change.actions``. Anything else is refused with one sentence
saying what is wrong, before any policy runs.

Input is bounded before it is trusted (:class:`PlanLimits`): the file's size is checked before it
is read, its nesting depth before it is parsed (a JSON parser recurses once per level, so a file
nested 200,000 deep would otherwise overflow the C stack), the number of resources and of distinct
kinds of change before the policies see them, and the evaluation runs against a time budget. Over
a limit, :class:`~arrakis_engine.errors.InputTooLarge` says which, in one line (exit status 2).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import InputTooLarge, ValidationError

CHANGE_ACTIONS = frozenset({"create", "update", "delete"})
KNOWN_ACTIONS = CHANGE_ACTIONS | {"no-op", "read", "forget"}
MB = 1024 * 1024


@dataclass(frozen=True)
class PlanLimits:
    """What the gate accepts (settings ``ARRAKIS_PLAN_MAX_*``, ``ARRAKIS_PLAN_TIME_BUDGET``).

    Defaults: a 32 MB file holding at most 4,000,000 JSON values (objects, arrays, strings,
    numbers: what parsing it costs in memory), 100 levels of nesting (Terraform's own JSON needs
    far fewer), 20,000
    entries in ``resource_changes``, 2,000 distinct kinds of change (what the policy evaluates:
    resources alike in type, actions and the fields the policy reads count once; about 2 ms each
    on one core here), and 10 seconds for the evaluation."""

    max_bytes: int = 32 * MB
    max_depth: int = 100
    max_values: int = 4_000_000
    max_resources: int = 20_000
    max_kinds: int = 2_000
    time_budget: float = 10.0


DEFAULT_LIMITS = PlanLimits()
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_STRUCTURE = re.compile(r"[^\[\]{},]+")
_DELTA = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_shape(text: str, max_values: int | None = None) -> tuple[int, int]:
    """(how deep the arrays and objects of a JSON text nest, about how many values it holds),
    without parsing it (so without recursing or building anything). Values are counted as the
    commas plus the arrays and objects, plus one: at least the true number, at most about twice it
    (empty arrays count twice). Brackets and commas inside strings do not count. Over
    ``max_values``, the depth is not measured (reported as 0)."""
    skeleton = _NOT_STRUCTURE.sub("", _STRING.sub("", text))
    values = skeleton.count(",") + skeleton.count("[") + skeleton.count("{") + 1
    if max_values is not None and values > max_values:
        return 0, values
    brackets = skeleton.replace(",", "")
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0), values


@dataclass(frozen=True)
class Change:
    """One managed resource that a plan creates, updates or deletes."""

    address: str
    type: str
    actions: tuple[str, ...]

    @property
    def operation(self) -> str:
        """delete, replace, update or create: the strongest thing done to the resource."""
        acts = set(self.actions)
        if {"delete", "create"} <= acts:
            return "replace"
        for op in ("delete", "update", "create"):
            if op in acts:
                return op
        return "no-op"


def read_json(path: str | Path, what: str, limits: PlanLimits = DEFAULT_LIMITS) -> Any:
    """The JSON in ``path``, or ValidationError naming the file and the problem (InputTooLarge
    when it is over ``limits``: checked before it is read and before it is parsed)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > limits.max_bytes:
            raise _too_big(what, p, size, limits)
        with p.open("rb") as fh:
            raw = fh.read(limits.max_bytes + 1)  # a file that grows while read is cut short here
        if len(raw) > limits.max_bytes:
            raise _too_big(what, p, len(raw), limits)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{what} {p} does not exist", field="path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"could not read {what} {p}: {type(exc).__name__}", field="path") from exc
    depth, values = json_shape(text, limits.max_values)
    if values > limits.max_values:
        raise InputTooLarge(f"{what} {p.name} holds about {values:,} JSON values; the limit is {limits.max_values:,} "
                            "(ARRAKIS_PLAN_MAX_VALUES)", field="path")
    if depth > limits.max_depth:
        raise InputTooLarge(f"{what} {p.name} nests {depth:,} levels deep; the limit is {limits.max_depth} "
                            "(ARRAKIS_PLAN_MAX_DEPTH)", field="path")
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen under the depth limit; never a crash if it does
        raise InputTooLarge(f"{what} {p.name} nests too deeply to read", field="path") from None
    except ValueError as exc:
        raise ValidationError(f"{what} {p.name} is not JSON ({exc.msg} at line {exc.lineno})", field="path") from None


def _too_big(what: str, p: Path, size: int, limits: PlanLimits) -> InputTooLarge:
    return InputTooLarge(f"{what} {p.name} is {size / MB:,.1f} MB; the limit is {limits.max_bytes / MB:,.0f} MB "
                         "(ARRAKIS_PLAN_MAX_BYTES)", field="path")


def check_plan(plan: Any, limits: PlanLimits = DEFAULT_LIMITS) -> list[dict]:
    """The plan's resource changes, after checking that ``plan`` has the shape of ``terraform
    show -json`` output and holds no more than ``limits.max_resources`` of them."""
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise ValidationError("this is not a Terraform plan: expected the JSON of `terraform show -json PLANFILE` "
                              "(an object with format_version and resource_changes)", field="plan")
    changes = plan.get("resource_changes", [])
    if not isinstance(changes, list):
        raise ValidationError("this is not a Terraform plan: resource_changes must be a list", field="plan")
    if len(changes) > limits.max_resources:
        raise InputTooLarge(f"the plan lists {len(changes):,} resources; the limit is {limits.max_resources:,} "
                            "(ARRAKIS_PLAN_MAX_RESOURCES): split the change into smaller plans", field="plan")
    for i, rc in enumerate(changes):
        where = f"resource_changes[{i}]"
        if not isinstance(rc, dict):
            raise ValidationError(f"this is not a Terraform plan: {where} is not an object", field="plan")
        for key in ("address", "type"):
            if not isinstance(rc.get(key), str) or not rc[key]:
                raise ValidationError(f"this is not a Terraform plan: {where} has no {key}", field="plan")
        actions = (rc.get("change") or {}).get("actions") if isinstance(rc.get("change"), dict) else None
        if not isinstance(actions, list) or not actions or not all(a in KNOWN_ACTIONS for a in actions):
            raise ValidationError(f"this is not a Terraform plan: {where} ({rc['address']}) has no valid "
                                  "change.actions", field="plan")
    return changes


def changes_of(resource_changes: list[dict]) -> list[Change]:
    """The managed resources that are created, updated or deleted (no-ops and data reads are not
    changes)."""
    out = []
    for rc in resource_changes:
        actions = tuple(rc["change"]["actions"])
        if rc.get("mode", "managed") == "managed" and CHANGE_ACTIONS & set(actions):
            out.append(Change(rc["address"], rc["type"], actions))
    return out


def monthly_cost_increase(breakdown: Any) -> Decimal:
    """``diffTotalMonthlyCost`` of an Infracost breakdown (``infracost breakdown --format json``
    or ``infracost diff``): the monthly cost the change adds (negative when it saves)."""
    if not isinstance(breakdown, dict) or "diffTotalMonthlyCost" not in breakdown:
        raise ValidationError("this is not an Infracost breakdown: it has no diffTotalMonthlyCost", field="cost")
    raw = breakdown["diffTotalMonthlyCost"]
    if raw is None:
        raise ValidationError("the Infracost breakdown has no cost difference (diffTotalMonthlyCost is null)",
                              field="cost")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValidationError(f"diffTotalMonthlyCost {raw!r} is not a number", field="cost") from None
    if not value.is_finite():
        raise ValidationError(f"diffTotalMonthlyCost {raw!r} is not a number", field="cost")
    return value
