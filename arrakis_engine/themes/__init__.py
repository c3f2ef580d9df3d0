"""Themes: tiers, badges, naming and channel layout of a community, and the registry that
gates them by subscription (free < premium < enterprise)."""

from __future__ import annotations

from ..errors import ValidationError
from .basic import BASIC
from .model import BadgeSpec, CategorySpec, ChannelSpec, Naming, Theme, TierSpec, check_rank
from .sietch import SIETCH

SUBSCRIPTIONS = ("free", "premium", "enterprise")

THEMES: dict[str, Theme] = {t.id: t for t in (BASIC, SIETCH)}


def allowed(theme: Theme, subscription_tier: str) -> bool:
    return SUBSCRIPTIONS.index(subscription_tier) >= SUBSCRIPTIONS.index(theme.requires)


def get_theme(theme_id: str) -> Theme:
    theme = THEMES.get(theme_id)
    if theme is None:
        raise ValidationError(f"unknown theme '{theme_id}'; choose one of {', '.join(sorted(THEMES))}", field="theme")
    return theme


def theme_for(theme_id: str, subscription_tier: str) -> Theme:
    """The theme, if it exists and the subscription allows it; otherwise a clear ValidationError."""
    if subscription_tier not in SUBSCRIPTIONS:
        raise ValidationError(f"unknown subscription '{subscription_tier}'; choose one of {', '.join(SUBSCRIPTIONS)}",
                              field="subscription")
    theme = get_theme(theme_id)
    if not allowed(theme, subscription_tier):
        raise ValidationError(f"the {theme.name} theme needs a {theme.requires} subscription or higher",
                              field="theme")
    return theme


def available(subscription_tier: str) -> list[Theme]:
    """Themes a subscription may use."""
    return [t for t in THEMES.values() if allowed(t, subscription_tier)]


__all__ = ["THEMES", "SUBSCRIPTIONS", "Theme", "TierSpec", "BadgeSpec", "CategorySpec", "ChannelSpec", "Naming",
           "allowed", "available", "get_theme", "theme_for", "check_rank"]
