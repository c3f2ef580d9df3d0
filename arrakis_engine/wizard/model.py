"""Wizard states, transitions and the validation of each step's data (no I/O).

States: INIT -> CHAIN_SELECT -> ASSET_CONFIG -> ELIGIBILITY_RULES -> ROLE_MAPPING ->
CHANNEL_STRUCTURE -> REVIEW -> DEPLOY -> COMPLETE, plus FAILED. A session moves forward one
step, back one step, or to FAILED; DEPLOY ends in COMPLETE or FAILED, and a failed deploy can
go back to REVIEW to be tried again. Every validation error names the field to fix.
"""

from __future__ import annotations

import json
import re
from typing import Any


from ..errors import ValidationError
from ..domain.chain import CHAINS
from ..themes import THEMES
from ..domain.validation import shown

STATES = ("INIT", "CHAIN_SELECT", "ASSET_CONFIG", "ELIGIBILITY_RULES", "ROLE_MAPPING", "CHANNEL_STRUCTURE",
          "REVIEW", "DEPLOY", "COMPLETE", "FAILED")
FLOW = STATES[:9]  # the forward path
TERMINAL = ("COMPLETE", "FAILED")
TEMPLATES = ("basic", "standard", "sietch", "custom")
CHANNEL_TEMPLATES = ("none", "basic", "sietch", "custom")
MAX_ASSETS = 5
_HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_SNOWFLAKE = re.compile(r"^[0-9]{15,20}$")


class TransitionError(ValidationError):
    """The session cannot move that way from where it is."""


def next_state(state: str) -> str:
    if state in TERMINAL or state == "DEPLOY":
        raise TransitionError(f"a session in {state} has no next step", field="state")
    return FLOW[FLOW.index(state) + 1]


def previous_state(state: str) -> str:
    if state == "FAILED":
        return "REVIEW"  # a failed deploy goes back to review to be tried again
    if state in ("INIT", "COMPLETE", "DEPLOY"):
        raise TransitionError(f"a session in {state} cannot go back", field="state")
    return FLOW[FLOW.index(state) - 1]


def _require(data: dict, field: str) -> Any:
    if field not in data or data[field] in (None, ""):
        raise ValidationError(f"{field} is required", field=field)
    return data[field]


def validate_chain(data: dict) -> dict:
    chain = str(_require(data, "chain")).strip().lower()
    if chain not in CHAINS:
        raise ValidationError(f"chain {shown(chain)} is not supported; choose one of {', '.join(CHAINS)}",
                              field="chain")
    return {"chain": chain}


def validate_assets(data: dict) -> dict:
    assets = _require(data, "assets")
    if not isinstance(assets, list) or not assets:
        raise ValidationError("assets must be a list with at least one asset", field="assets")
    if len(assets) > MAX_ASSETS:
        raise ValidationError(f"at most {MAX_ASSETS} assets; {len(assets)} were given", field="assets")
    out = []
    for i, a in enumerate(assets):
        where = f"assets[{i}]"
        if not isinstance(a, dict):
            raise ValidationError(f"{where} must be an object", field=where)
        kind = str(a.get("kind", "")).lower()
        if kind not in ("native", "erc20", "erc721", "erc1155"):
            raise ValidationError(f"{where}.kind must be native, erc20, erc721 or erc1155", field=f"{where}.kind")
        item: dict[str, Any] = {"kind": kind}
        if kind != "native":
            address = str(a.get("address", "")).strip()
            from eth_utils import is_checksum_address, to_checksum_address  # loaded where addresses are read

            if not re.match(r"^0x[0-9a-fA-F]{40}$", address):
                raise ValidationError(f"{where}.address must be 0x followed by 40 hex digits",
                                      field=f"{where}.address")
            if address != address.lower() and not is_checksum_address(address):
                raise ValidationError(f"{where}.address has a wrong checksum (mixed case that is not EIP-55)",
                                      field=f"{where}.address")
            item["address"] = to_checksum_address(address)
        if kind == "erc20":
            decimals = a.get("decimals")
            if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
                raise ValidationError(f"{where}.decimals must be a whole number from 0 to 36",
                                      field=f"{where}.decimals")
            item["decimals"] = decimals
        if kind == "erc1155":
            token_id = a.get("token_id")
            if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
                raise ValidationError(f"{where}.token_id must be a whole number", field=f"{where}.token_id")
            item["token_id"] = token_id
        if a.get("symbol"):
            item["symbol"] = str(a["symbol"])[:16]
        out.append(item)
    keys = [(x["kind"], x.get("address"), x.get("token_id")) for x in out]
    if len(set(keys)) != len(keys):
        raise ValidationError("the same asset is listed twice", field="assets")
    return {"assets": out}


def validate_membership_rule(data: dict, chain: str | None) -> dict | None:
    """The optional gating ``rule`` of ELIGIBILITY_RULES (the same JSON as ``arrakis gate set``),
    in its canonical form; errors name the path, e.g. ``rule.all[1].any[0].min: not a number``."""
    if data.get("rule") is None:
        return None
    from ..gating.rules import RuleError, parse_rule

    try:
        rule = parse_rule(data["rule"], default_chain=chain)
    except RuleError as exc:
        raise ValidationError(f"rule.{exc.path}: {exc.problem}" if exc.path != "rule" else f"rule: {exc.problem}",
                              field="rule") from None
    if rule.allowlists():
        raise ValidationError("rule: an allowlist requirement needs the list imported first; set such a rule "
                              "with `arrakis gate set` after `arrakis allowlist import`", field="rule")
    return rule.as_json()


def validate_rules(data: dict, chain: str | None = None) -> dict:
    template = str(_require(data, "template")).lower()
    if template not in TEMPLATES:
        raise ValidationError(f"template must be one of {', '.join(TEMPLATES)}", field="template")
    rule = validate_membership_rule(data, chain)
    if template != "custom":
        return {"template": template, **({"rule": rule} if rule else {})}
    tiers = _require(data, "tiers")
    if not isinstance(tiers, list) or not tiers:
        raise ValidationError("custom tiers must be a non-empty list", field="tiers")
    out, expected, names = [], 1, set()
    for i, t in enumerate(tiers):
        where = f"tiers[{i}]"
        name = str(t.get("name", "")).strip() if isinstance(t, dict) else ""
        if not name or len(name) > 32:
            raise ValidationError(f"{where}.name must be 1 to 32 characters", field=f"{where}.name")
        if name.lower() in names:
            raise ValidationError(f"{where}.name '{name}' is used twice", field=f"{where}.name")
        names.add(name.lower())
        lo, hi = t.get("min_rank"), t.get("max_rank")
        if isinstance(lo, bool) or not isinstance(lo, int) or lo < 1:
            raise ValidationError(f"{where}.min_rank must be a whole number from 1 up", field=f"{where}.min_rank")
        if lo != expected:
            problem = "overlaps the tier before" if lo < expected else "leaves a gap after the tier before"
            raise ValidationError(f"{where}.min_rank is {lo} and {problem} (expected {expected}); ranges must be "
                                  "contiguous and must not overlap", field=f"{where}.min_rank")
        last = i == len(tiers) - 1
        if hi is None and not last:
            raise ValidationError(f"{where}.max_rank is needed (only the last tier may be open-ended)",
                                  field=f"{where}.max_rank")
        if hi is not None and (isinstance(hi, bool) or not isinstance(hi, int) or hi < lo):
            raise ValidationError(f"{where}.max_rank must be a whole number at least min_rank",
                                  field=f"{where}.max_rank")
        colour = t.get("colour", "#99AAB5")
        if not isinstance(colour, str) or not _HEX_COLOUR.match(colour):
            raise ValidationError(f"{where}.colour must look like #RRGGBB", field=f"{where}.colour")
        out.append({"name": name, "min_rank": lo, "max_rank": hi, "colour": colour.upper()})
        expected = (hi or lo) + 1
    return {"template": "custom", "tiers": out, **({"rule": rule} if rule else {})}


def tier_names(rules: dict) -> list[str]:
    template = rules["template"]
    if template == "custom":
        return [t["name"] for t in rules["tiers"]]
    theme = THEMES["sietch" if template == "sietch" else "basic"]
    return list(theme.tier_names)


def validate_roles(data: dict, rules: dict) -> dict:
    mapping = _require(data, "roles")
    if not isinstance(mapping, dict):
        raise ValidationError("roles must map each tier to a role id or \"create\"", field="roles")
    out = {}
    unmapped = [name for name in tier_names(rules) if mapping.get(name) is None]
    if unmapped:  # every tier still to map at once, not one error at a time
        raise ValidationError(f"{'tier' if len(unmapped) == 1 else 'tiers'} {', '.join(unmapped)} "
                              f"{'is' if len(unmapped) == 1 else 'are'} not mapped; give each a role id or "
                              "\"create\"", field=f"roles.{unmapped[0]}")
    for name in tier_names(rules):
        value = mapping.get(name)
        value = str(value).strip()
        if value != "create" and not _SNOWFLAKE.match(value):
            raise ValidationError(f"roles.{name} must be an existing role id or \"create\"", field=f"roles.{name}")
        out[name] = value
    extra = set(mapping) - set(out)
    if extra:
        raise ValidationError(f"roles names tiers that do not exist: {', '.join(sorted(extra))}", field="roles")
    ids = [v for v in out.values() if v != "create"]
    if len(ids) != len(set(ids)):
        raise ValidationError("two tiers are mapped to the same role", field="roles")
    return {"roles": out}


def validate_channels(data: dict) -> dict:
    template = str(_require(data, "channel_template")).lower()
    if template not in CHANNEL_TEMPLATES:
        raise ValidationError(f"channel_template must be one of {', '.join(CHANNEL_TEMPLATES)}",
                              field="channel_template")
    if template != "custom":
        return {"channel_template": template}
    cats = _require(data, "categories")
    if not isinstance(cats, list) or not cats:
        raise ValidationError("custom channels need a non-empty categories list", field="categories")
    out = []
    for i, c in enumerate(cats):
        name = str(c.get("name", "")).strip() if isinstance(c, dict) else ""
        if not name or len(name) > 100:
            raise ValidationError(f"categories[{i}].name must be 1 to 100 characters", field=f"categories[{i}].name")
        channels = c.get("channels") or []
        if not isinstance(channels, list):
            raise ValidationError(f"categories[{i}].channels must be a list of channel names",
                                  field=f"categories[{i}].channels")
        for x in channels:
            if not (isinstance(x, str) and re.match(r"^[a-z0-9-]{1,100}$", x)):
                raise ValidationError(
                    f"channel {shown(x)} in category {shown(name)} is not a channel name: use 1 to 100 lower-case "
                    "letters, digits and dashes", field=f"categories[{i}].channels")
        out.append({"name": name, "channels": channels})
    return {"channel_template": "custom", "categories": out}


def review_warnings(data: dict, subscription: str) -> list[str]:
    """Plain-language warnings shown at REVIEW (they do not block a deploy)."""
    warnings = []
    rules = data.get("rules", {})
    if rules.get("template") == "sietch" and subscription == "free":
        warnings.append("the Sietch template needs a premium subscription; deploy will fail until it is upgraded")
    roles = data.get("roles", {}).get("roles", {})
    creates = sum(1 for v in roles.values() if v == "create")
    if creates > 20:
        warnings.append(f"{creates} roles will be created; Discord creates roles slowly, so this takes a while")
    if data.get("channels", {}).get("channel_template") == "none":
        warnings.append("no channels will be created; gated channels need a channel template")
    if len(data.get("assets", {}).get("assets", [])) > 1:
        warnings.append("members are ranked by the first asset; the others gate membership")
    return warnings


def review_summary(data: dict, existing: dict | None = None) -> list[str]:
    """What a deploy would set up, one plain line per part (shown at REVIEW, and by ``show``)."""
    lines = []
    if existing:
        lines.append(f"community: this server already has {existing['name']!r} ({existing['id']}); deploying "
                     "updates it and keeps its name")
    if "chain" in data:
        lines.append(f"chain: {data['chain']['chain']}")
    for i, a in enumerate(data.get("assets", {}).get("assets", [])):
        what = a["kind"] + (f" {a['address']}" if a.get("address") else "") + \
            (f" token {a['token_id']}" if a.get("token_id") is not None else "")
        lines.append(f"asset {i + 1}: {what} ({'ranks members' if i == 0 else 'gates membership'})")
    rules = data.get("rules")
    if rules:
        if rules["template"] == "custom":
            lines.append("tiers: " + ", ".join(
                f"{t['name']} (ranks {t['min_rank']}-{t['max_rank'] if t['max_rank'] is not None else 'up'})"
                for t in rules["tiers"]))
        else:
            lines.append(f"tiers: the {rules['template']} template ({', '.join(tier_names(rules))})")
        if rules.get("rule"):
            lines.append("membership rule: " + json.dumps(rules["rule"], sort_keys=True))
    roles = data.get("roles", {}).get("roles", {})
    if roles:
        lines.append("roles: " + ", ".join(f"{name} {'new' if rid == 'create' else 'uses ' + rid}"
                                           for name, rid in roles.items()))
    channels = data.get("channels")
    if channels:
        if channels["channel_template"] == "custom":
            lines.append("channels: " + "; ".join(f"{c['name']}: {', '.join(c['channels']) or 'none'}"
                                                  for c in channels["categories"]))
        else:
            lines.append(f"channels: the {channels['channel_template']} template")
    return lines


STEP_FIELDS = {"CHAIN_SELECT": "chain", "ASSET_CONFIG": "assets", "ELIGIBILITY_RULES": "rules",
               "ROLE_MAPPING": "roles", "CHANNEL_STRUCTURE": "channels"}


def validate_step(state: str, data: dict, collected: dict) -> dict:
    """Validate the data for the step the session is on."""
    if not isinstance(data, dict):
        raise ValidationError("step data must be an object", field="data")
    if state == "CHAIN_SELECT":
        return validate_chain(data)
    if state == "ASSET_CONFIG":
        return validate_assets(data)
    if state == "ELIGIBILITY_RULES":
        return validate_rules(data, collected.get("chain", {}).get("chain"))
    if state == "ROLE_MAPPING":
        return validate_roles(data, collected["rules"])
    if state == "CHANNEL_STRUCTURE":
        return validate_channels(data)
    raise TransitionError(f"{state} takes no data", field="state")
