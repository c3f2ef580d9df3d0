"""What Discord relays is checked against the command's own schema before any handler runs.

Discord checks option types for its own clients, but an interaction is whatever reached the
gateway: a forged or buggy client, or a command changed since the client cached it, can send
``public: "yes"``, ``count: "abc"`` or a member that is not in ``resolved``. Such an interaction
gets one ephemeral line saying what is wrong, never a handler run on a wrong value (a string
``"yes"`` is true in Python: it posted a profile publicly) and never "Something went wrong".
A command or subcommand the bot does not have gets an ephemeral "unknown command" line.
"""

from __future__ import annotations

import math

from interactions import OptionType, SlashCommand

_RESOLVED = {OptionType.USER: ("users",), OptionType.CHANNEL: ("channels",), OptionType.ROLE: ("roles",),
             OptionType.MENTIONABLE: ("users", "roles"), OptionType.ATTACHMENT: ("attachments",)}
_WHAT = {OptionType.USER: "a member", OptionType.CHANNEL: "a channel", OptionType.ROLE: "a role",
         OptionType.MENTIONABLE: "a member or a role", OptionType.ATTACHMENT: "a file"}
_DISCORD_INT = 2**53  # Discord's integer options lie within ±2^53


def schema_of(bot) -> dict[str, SlashCommand]:
    """Every slash command the bot has, by its full name (``"arrakis status"``), admins' included
    (they are registered per server, but the schema is the same everywhere)."""
    out: dict[str, SlashCommand] = {}
    for ext in bot.ext.values():
        for c in getattr(ext, "_commands", []):
            if isinstance(c, SlashCommand):
                out[c.resolved_name] = c
    return out


def check_command(data: dict, schema: dict[str, SlashCommand]) -> str | None:
    """None when ``data`` (an APPLICATION_COMMAND's ``data``) fits a command of ``schema``;
    otherwise the one line to answer with."""
    name = str(data.get("name") or "")
    options = data.get("options") or []
    if not isinstance(options, list):
        return f"/{name}: its options could not be read."
    path = [name]
    while len(options) == 1 and isinstance(options[0], dict) and options[0].get("type") in (1, 2):
        path.append(str(options[0].get("name") or ""))
        options = options[0].get("options") or []
        if not isinstance(options, list):
            return f"/{' '.join(path)}: its options could not be read."
    full = " ".join(path)
    command = schema.get(full)
    if command is None:
        if any(key.split(" ")[0] == name for key in schema):
            shown = " ".join(part[:32] for part in path[:3])  # never echo more than Discord's names allow
            return f"Unknown command: /{shown} is not one of Arrakis's commands (see /{name} for those it has)."
        return f"Unknown command: /{name[:32]} is not one of Arrakis's commands."
    if any(isinstance(o, dict) and o.get("type") in (1, 2) for o in options):
        return f"/{full}: subcommands cannot be combined."
    declared = {str(o.name): o for o in command.options or []}
    resolved = data.get("resolved") or {}
    given: set[str] = set()
    for o in options:
        if not isinstance(o, dict) or str(o.get("name")) not in declared:
            what = o.get("name") if isinstance(o, dict) else "?"
            return f"/{full} has no option {str(what)[:32]!s}."
        oname = str(o["name"])
        if oname in given:
            return f"/{full}: {oname} was given twice."
        given.add(oname)
        problem = _option_problem(declared[oname], o, resolved)
        if problem:
            return f"/{full}: {oname} {problem}."
    missing = [n for n, o in declared.items() if o.required and n not in given]
    if missing:
        return f"/{full} needs {', '.join(missing)}."
    return None


def _option_problem(decl, given: dict, resolved: dict) -> str | None:
    kind = OptionType(decl.type)
    value = given.get("value")
    if given.get("type") != int(kind):
        return "is not the kind of value this command takes"
    if kind == OptionType.BOOLEAN:
        return None if isinstance(value, bool) else "must be true or false"
    if kind in (OptionType.INTEGER, OptionType.NUMBER):
        whole = kind == OptionType.INTEGER
        ok = isinstance(value, int) if whole else isinstance(value, (int, float)) and math.isfinite(value)
        low = decl.min_value if decl.min_value is not None else -_DISCORD_INT
        high = decl.max_value if decl.max_value is not None else _DISCORD_INT
        if isinstance(value, bool) or not ok or not low <= value <= high:
            return f"must be a {'whole ' if whole else ''}number from {low} to {high}"
    elif kind == OptionType.STRING:
        if not isinstance(value, str):
            return "must be text"
        low = decl.min_length or 0
        high = decl.max_length or 6000
        if not low <= len(value) <= high:
            return f"must be {low} to {high} characters long"
    elif kind in _RESOLVED:
        found = isinstance(value, str) and value.isdigit() and any(
            value in (resolved.get(part) or {}) for part in _RESOLVED[kind])
        if not found:
            return f"must name {_WHAT[kind]} Discord sent along; try picking it again"
    choices = [c.value for c in decl.choices or []]
    if choices and value not in choices:
        return "must be one of " + ", ".join(str(c) for c in choices)
    return None
