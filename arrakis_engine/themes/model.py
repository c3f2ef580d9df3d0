"""What a theme is: tiers, badges, naming and a channel layout. Plain frozen data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ..errors import ValidationError

STRATEGIES = ("absolute", "percentage", "threshold")


@dataclass(frozen=True)
class TierSpec:
    """One tier. Tiers are listed highest first.

    Args:
        name: display name (also the Discord role name).
        min_rank / max_rank: rank range for the absolute strategy (max None = no upper end).
        colour: role colour as ``#RRGGBB``.
        permissions: Discord permission names the tier's role gets.
        threshold: balance needed under the threshold strategy; None means "rank only".
        top_percent: cumulative share of members (0-100] for the percentage strategy.
    """

    name: str
    min_rank: int
    max_rank: int | None
    colour: str
    permissions: tuple[str, ...] = ("VIEW_CHANNEL", "SEND_MESSAGES")
    threshold: Decimal | None = None
    top_percent: Decimal | None = None

    def holds_rank(self, rank: int) -> bool:
        return rank >= self.min_rank and (self.max_rank is None or rank <= self.max_rank)


@dataclass(frozen=True)
class BadgeSpec:
    """One badge and the rule that earns it.

    ``kind`` is one of:
      tenure       -- ``days`` since joining at least ``value``
      tier_reached -- current or highest-ever tier at or above ``tier``
      activity     -- normalised activity at least ``value``
      conviction   -- normalised conviction at least ``value``
      former_tier  -- held ``tier`` once and holds it no more
      custom       -- decided by a named custom evaluator (``evaluator``)
      manual       -- awarded by a person (an admin, or a holder sharing it)
    ``revocable`` badges are taken away when their rule stops holding; the others are kept.
    """

    id: str
    name: str
    kind: str
    value: Decimal | int | None = None
    tier: str | None = None
    evaluator: str | None = None
    revocable: bool = False
    description: str = ""


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    topic: str = ""
    kind: str = "text"  # text | voice | announcement


@dataclass(frozen=True)
class CategorySpec:
    """A channel category and who may see it.

    ``min_tier``: that tier or higher; ``tiers``: exactly these tiers; ``badge``: holders of that
    badge; ``rank_range``: members whose rank falls in it. None of them: everyone.
    """

    name: str
    channels: tuple[ChannelSpec, ...]
    min_tier: str | None = None
    tiers: tuple[str, ...] = ()
    badge: str | None = None
    rank_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class Naming:
    community_format: str  # "{community} Sietch"
    member_title: str = "Member"
    admin_title: str = "Admin"

    def community_name(self, community: str) -> str:
        return self.community_format.format(community=community)


@dataclass(frozen=True)
class Theme:
    id: str
    name: str
    requires: str  # lowest subscription tier allowed to use it
    tiers: tuple[TierSpec, ...]
    badges: tuple[BadgeSpec, ...]
    naming: Naming
    categories: tuple[CategorySpec, ...]
    strategy: str = "absolute"
    demotion_grace_hours: int = 0
    description: str = ""
    custom_evaluators: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    @property
    def badge_ids(self) -> tuple[str, ...]:
        return tuple(b.id for b in self.badges)

    def tier(self, name: str) -> TierSpec:
        for t in self.tiers:
            if t.name == name:
                return t
        raise ValidationError(f"the {self.name} theme has no tier '{name}'", field="tier")

    def tier_index(self, name: str | None) -> int | None:
        """0 for the highest tier; None for no tier."""
        if name is None:
            return None
        try:
            return self.tier_names.index(name)
        except ValueError:
            return None

    def tier_for_rank(self, rank: int) -> str | None:
        """The tier of a rank by the rank ranges, or None when the rank is beyond every tier.
        A rank below 1 (or not a whole number) is invalid input, never "top tier"."""
        check_rank(rank)
        for t in self.tiers:
            if t.holds_rank(rank):
                return t.name
        return None

    def as_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "requires": self.requires, "strategy": self.strategy,
            "demotion_grace_hours": self.demotion_grace_hours, "description": self.description,
            "naming": {"community": self.naming.community_format, "member": self.naming.member_title,
                       "admin": self.naming.admin_title},
            "tiers": [{"name": t.name, "ranks": [t.min_rank, t.max_rank], "colour": t.colour,
                       "permissions": list(t.permissions),
                       "threshold": None if t.threshold is None else str(t.threshold),
                       "top_percent": None if t.top_percent is None else str(t.top_percent)} for t in self.tiers],
            "badges": [{"id": b.id, "name": b.name, "kind": b.kind,
                        "value": None if b.value is None else str(b.value), "tier": b.tier,
                        "revocable": b.revocable, "description": b.description} for b in self.badges],
            "categories": [{"name": c.name, "channels": [ch.name for ch in c.channels], "min_tier": c.min_tier,
                            "tiers": list(c.tiers), "badge": c.badge,
                            "rank_range": list(c.rank_range) if c.rank_range else None} for c in self.categories],
        }


def check_rank(rank) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValidationError("rank must be a whole number from 1 up", field="rank")
    return rank
