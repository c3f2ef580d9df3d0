"""Themes: tiers, badges, naming and channel layout of a community, and the registry that
gates them by subscription (free < premium < enterprise)."""

from __future__ import annotations

from ..errors import PlanLimit, ValidationError
from ..domain.validation import shown
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
        raise ValidationError(f"unknown theme {shown(theme_id)}; choose one of {', '.join(sorted(THEMES))}",
                              field="theme")
    return theme


def theme_for(theme_id: str, subscription_tier: str) -> Theme:
    """The theme, if it exists and the subscription allows it; otherwise a clear ValidationError."""
    if subscription_tier not in SUBSCRIPTIONS:
        raise ValidationError(f"unknown subscription {shown(subscription_tier)}; choose one of {', '.join(SUBSCRIPTIONS)}",
                              field="subscription")
    theme = get_theme(theme_id)
    if not allowed(theme, subscription_tier):
        raise PlanLimit(f"the {theme.name} theme needs a {theme.requires} subscription or higher",
                              field="theme")
    return theme


def custom_theme(tiers: list[dict]) -> Theme:
    """A theme from custom tiers chosen in the wizard (contiguous rank ranges, already checked):
    the Basic theme's badges (Top Tier means the first custom tier) and no channel template of
    its own (the wizard's channel template supplies it)."""
    specs = tuple(TierSpec(t["name"], t["min_rank"], t["max_rank"], t.get("colour", "#99AAB5"))
                  for t in tiers)
    from dataclasses import replace

    badges = tuple(replace(b, tier=specs[0].name) if b.kind == "tier_reached" else b for b in BASIC.badges)
    return Theme(id="custom", name="Custom", requires="free", tiers=specs, badges=badges,
                 naming=BASIC.naming, categories=(), strategy="absolute", demotion_grace_hours=0,
                 description="Tiers chosen in the onboarding wizard.")


def theme_of(community) -> Theme:
    """The theme a community uses: a built-in one, or its custom tiers from the wizard."""
    if community.theme_id == "custom":
        tiers = ((community.settings or {}).get("wizard") or {}).get("rules", {}).get("tiers")
        if not tiers:
            raise ValidationError("this community's custom tiers are missing from its settings", field="theme")
        return custom_theme(tiers)
    return get_theme(community.theme_id)


def available(subscription_tier: str) -> list[Theme]:
    """Themes a subscription may use."""
    return [t for t in THEMES.values() if allowed(t, subscription_tier)]


__all__ = ["custom_theme", "theme_of", "THEMES", "SUBSCRIPTIONS", "Theme", "TierSpec", "BadgeSpec", "CategorySpec", "ChannelSpec", "Naming",
           "allowed", "available", "get_theme", "theme_for", "check_rank"]
