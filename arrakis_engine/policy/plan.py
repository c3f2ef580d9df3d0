"""Reading a Terraform plan (``terraform show -json PLANFILE``) and an Infracost breakdown.

A plan is a JSON object with ``format_version`` and a ``resource_changes`` list; each change has
an ``address``, a ``type`` and ``change.actions``. Anything else is refused with one sentence
saying what is wrong, before any policy runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import ValidationError

CHANGE_ACTIONS = frozenset({"create", "update", "delete"})
KNOWN_ACTIONS = CHANGE_ACTIONS | {"no-op", "read", "forget"}


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


def read_json(path: str | Path, what: str) -> Any:
    """The JSON in ``path``, or ValidationError naming the file and the problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{what} {p} does not exist", field="path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"could not read {what} {p}: {type(exc).__name__}", field="path") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{what} {p.name} is not JSON ({exc.msg} at line {exc.lineno})", field="path") from None


def check_plan(plan: Any) -> list[dict]:
    """The plan's resource changes, after checking that ``plan`` has the shape of ``terraform
    show -json`` output."""
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise ValidationError("this is not a Terraform plan: expected the JSON of `terraform show -json PLANFILE` "
                              "(an object with format_version and resource_changes)", field="plan")
    changes = plan.get("resource_changes", [])
    if not isinstance(changes, list):
        raise ValidationError("this is not a Terraform plan: resource_changes must be a list", field="plan")
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
