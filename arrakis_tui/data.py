"""What the console shows, fetched through the engine's use cases (no Textual here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FleetRow:
    name: str
    guild_id: str
    theme: str
    subscription: str
    members: int
    active: bool


@dataclass(frozen=True)
class Fleet:
    rows: list[FleetRow]
    health: dict[str, str]


def load_fleet(engine) -> Fleet:
    rows = [FleetRow(s.community.name, s.community.guild_id, s.community.theme_id, s.community.subscription_tier,
                     s.members, s.community.is_active) for s in engine.communities.list()]
    return Fleet(sorted(rows, key=lambda r: r.name.lower()), engine.health())


def matches(row: FleetRow, text: str) -> bool:
    text = text.strip().lower()
    return not text or any(text in str(v).lower() for v in (row.name, row.guild_id, row.theme, row.subscription))
