"""Themes: tiers, badges, naming and channel layout of a community.

This module holds the catalogue every part needs from the start -- which themes exist, which
subscription each needs, which badge types each awards. The tier and badge evaluators arrive
with the chain and themes issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ValidationError

SUBSCRIPTIONS = ("free", "premium", "enterprise")


@dataclass(frozen=True)
class ThemeInfo:
    id: str
    name: str
    requires: str  # the lowest subscription tier that may use it
    badges: tuple[str, ...]
    tiers: tuple[tuple[str, int, int | None], ...]  # (name, first rank, last rank or None)

    def tier_for_rank(self, rank: int) -> str | None:
        """The tier a rank falls in, or None if it is beyond every tier. Ranks below 1 are refused."""
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValidationError("rank must be a whole number from 1 up", field="rank")
        for name, first, last in self.tiers:
            if rank >= first and (last is None or rank <= last):
                return name
        return None


THEMES: dict[str, ThemeInfo] = {
    "basic": ThemeInfo(
        id="basic", name="Basic", requires="free",
        badges=("early_adopter", "veteran", "top_tier", "active", "contributor"),
        tiers=(("Gold", 1, 10), ("Silver", 11, 50), ("Bronze", 51, 100)),
    ),
    "sietch": ThemeInfo(
        id="sietch", name="Sietch", requires="premium",
        badges=("og", "sietch_veteran", "elder", "naib_ascended", "fedaykin_initiated", "usul_ascended",
                "first_maker", "desert_active", "sietch_engaged", "water_sharer", "former_naib",
                "founding_naib"),
        tiers=(("Naib", 1, 7), ("Fedaykin", 8, 69), ("Usul", 70, 100), ("Sayyadina", 101, 150),
               ("Mushtamal", 151, 200), ("Sihaya", 201, 300), ("Qanat", 301, 500), ("Ichwan", 501, 1000),
               ("Hajra", 1001, None)),
    ),
}


def theme_for(theme_id: str, subscription_tier: str) -> ThemeInfo:
    """The theme, if it exists and the subscription allows it; otherwise a clear ValidationError."""
    if subscription_tier not in SUBSCRIPTIONS:
        raise ValidationError(f"unknown subscription '{subscription_tier}'; choose one of {', '.join(SUBSCRIPTIONS)}",
                              field="subscription")
    theme = THEMES.get(theme_id)
    if theme is None:
        raise ValidationError(f"unknown theme '{theme_id}'; choose one of {', '.join(sorted(THEMES))}", field="theme")
    if SUBSCRIPTIONS.index(subscription_tier) < SUBSCRIPTIONS.index(theme.requires):
        raise ValidationError(f"the {theme.name} theme needs a {theme.requires} subscription or higher",
                              field="theme")
    return theme
