"""Build a community's manifest (desired Discord state) from its theme and members.

Layout of a manifest::

    {"version_of": "arrakis.manifest/1",
     "community": {"id", "name", "guild_id", "theme"},
     "roles":      [{"id": "role:gold", "name", "color", "permissions", "hoist", "tier" | "badge"}],
     "categories": [{"id": "category:info", "name", "overwrites": [...]}],
     "channels":   [{"id": "channel:info/rules", "name", "type", "topic", "parent": "category:info",
                     "overwrites": [...]}],
     "members":    {"<discord id>": ["role:gold", ...]}}

An overwrite is ``{"target": "@everyone" | role id, "allow": int, "deny": int}`` with the
permission bits Discord uses. Ids are stable, so the same theme always yields the same ids and
a synthesis can match what it created before.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from ..themes.model import CategorySpec, Theme

PERMISSIONS = {
    "ADD_REACTIONS": 1 << 6, "VIEW_CHANNEL": 1 << 10, "SEND_MESSAGES": 1 << 11, "MANAGE_MESSAGES": 1 << 13,
    "EMBED_LINKS": 1 << 14, "ATTACH_FILES": 1 << 15, "READ_MESSAGE_HISTORY": 1 << 16, "MENTION_EVERYONE": 1 << 17,
    "USE_EXTERNAL_EMOJIS": 1 << 18, "MANAGE_THREADS": 1 << 34,
}
VIEW = PERMISSIONS["VIEW_CHANNEL"]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def colour(hex_colour: str) -> int:
    return int(hex_colour.lstrip("#"), 16)


def permission_bits(names: Iterable[str]) -> int:
    bits = 0
    for n in names:
        bits |= PERMISSIONS[n]
    return bits


def _allowed_roles(theme: Theme, cat: CategorySpec) -> list[str] | None:
    """Role ids that may see a category, or None for everyone."""
    if cat.min_tier:
        floor = theme.tier_index(cat.min_tier)
        return [f"role:{slug(t.name)}" for i, t in enumerate(theme.tiers) if i <= floor]
    if cat.tiers:
        return [f"role:{slug(t)}" for t in cat.tiers]
    if cat.badge:
        return [f"role:badge-{slug(cat.badge)}"]
    if cat.rank_range:
        lo, hi = cat.rank_range
        return [f"role:{slug(t.name)}" for t in theme.tiers
                if t.min_rank >= lo and t.max_rank is not None and t.max_rank <= hi]
    return None


def build_manifest(*, community_id: str, community_name: str, guild_id: str, theme: Theme,
                   members: Mapping[str, tuple[str | None, Iterable[str]]]) -> dict:
    """``members``: discord id -> (tier or None, active badge types)."""
    roles = [{"id": f"role:{slug(t.name)}", "name": t.name, "color": colour(t.colour),
              "permissions": str(permission_bits(t.permissions)), "hoist": True, "tier": t.name} for t in theme.tiers]
    badge_roles = sorted({c.badge for c in theme.categories if c.badge})
    names = {b.id: b.name for b in theme.badges}
    roles += [{"id": f"role:badge-{slug(b)}", "name": names.get(b, b), "color": 0, "permissions": "0",
               "hoist": False, "badge": b} for b in badge_roles]
    categories, channels = [], []
    for cat in theme.categories:
        allowed = _allowed_roles(theme, cat)
        overwrites = [] if allowed is None else (
            [{"target": "@everyone", "allow": 0, "deny": VIEW}]
            + [{"target": r, "allow": VIEW, "deny": 0} for r in allowed])
        cid = f"category:{slug(cat.name)}"
        categories.append({"id": cid, "name": cat.name, "overwrites": overwrites})
        for ch in cat.channels:
            channels.append({"id": f"channel:{slug(cat.name)}/{ch.name}", "name": ch.name, "type": ch.kind,
                             "topic": ch.topic or None, "parent": cid, "overwrites": overwrites})
    tier_role = {t.name: f"role:{slug(t.name)}" for t in theme.tiers}
    badge_role = {b: f"role:badge-{slug(b)}" for b in badge_roles}
    member_roles = {}
    for discord_id, (tier, badges) in sorted(members.items()):
        wanted = ([tier_role[tier]] if tier in tier_role else []) + sorted(badge_role[b] for b in badges
                                                                           if b in badge_role)
        member_roles[discord_id] = wanted
    return {
        "version_of": "arrakis.manifest/1",
        "community": {"id": community_id, "name": theme.naming.community_name(community_name),
                      "guild_id": guild_id, "theme": theme.id},
        "roles": roles,
        "categories": categories,
        "channels": channels,
        "members": member_roles,
    }


def categories_for(theme: Theme, channels: dict | None) -> tuple:
    """The categories a community gets: its theme's, or the channel template chosen in the
    wizard (``none``, ``basic``, ``sietch`` or ``custom``). Access rules that name tiers or badges
    the theme does not have are dropped (the category is then open), never guessed."""
    from dataclasses import replace

    from ..themes import THEMES
    from ..themes.model import ChannelSpec

    if not channels or "channel_template" not in channels:
        return theme.categories
    template = channels["channel_template"]
    if template == "none":
        return ()
    if template == "custom":
        return tuple(CategorySpec(c["name"], tuple(ChannelSpec(n) for n in c["channels"]))
                     for c in channels.get("categories", []))
    tiers, badges = set(theme.tier_names), set(theme.badge_ids)
    out = []
    for c in THEMES[template].categories:
        fits = ((not c.min_tier or c.min_tier in tiers) and all(t in tiers for t in c.tiers)
                and (not c.badge or c.badge in badges))
        out.append(c if fits else replace(c, min_tier=None, tiers=(), badge=None, rank_range=None))
    return tuple(out)
