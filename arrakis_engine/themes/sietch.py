"""SietchTheme (premium): nine tiers, twelve badges, seven categories, 24 h demotion grace."""

from __future__ import annotations

from decimal import Decimal

from .model import BadgeSpec, CategorySpec, ChannelSpec, Naming, Theme, TierSpec

_BASE = ("VIEW_CHANNEL", "SEND_MESSAGES", "READ_MESSAGE_HISTORY", "ADD_REACTIONS")
_TRUSTED = _BASE + ("ATTACH_FILES", "EMBED_LINKS", "USE_EXTERNAL_EMOJIS")
_LEAD = _TRUSTED + ("MANAGE_MESSAGES", "MANAGE_THREADS", "MENTION_EVERYONE")


def _t(name, lo, hi, colour, perms, threshold):
    return TierSpec(name, lo, hi, colour, perms, None if threshold is None else Decimal(threshold))


SIETCH = Theme(
    id="sietch",
    name="Sietch",
    requires="premium",
    description="Nine Dune tiers from Naib (ranks 1-7) to Hajra (1001+), with BGT thresholds below Fedaykin.",
    strategy="absolute",
    demotion_grace_hours=24,
    tiers=(
        _t("Naib", 1, 7, "#FFD700", _LEAD, None),
        _t("Fedaykin", 8, 69, "#4169E1", _TRUSTED + ("MANAGE_THREADS",), None),
        _t("Usul", 70, 100, "#9B59B6", _TRUSTED, "1111"),
        _t("Sayyadina", 101, 150, "#6610F2", _TRUSTED, "888"),
        _t("Mushtamal", 151, 200, "#20C997", _BASE + ("ATTACH_FILES", "EMBED_LINKS"), "690"),
        _t("Sihaya", 201, 300, "#28A745", _BASE + ("ATTACH_FILES", "EMBED_LINKS"), "420"),
        _t("Qanat", 301, 500, "#17A2B8", _BASE + ("EMBED_LINKS",), "222"),
        _t("Ichwan", 501, 1000, "#FD7E14", _BASE, "69"),
        _t("Hajra", 1001, None, "#C2B280", _BASE, "6.9"),
    ),
    badges=(
        BadgeSpec("og", "OG", "tenure", value=180, description="member for 180 days or more"),
        BadgeSpec("sietch_veteran", "Sietch Veteran", "tenure", value=90, description="member for 90 days or more"),
        BadgeSpec("elder", "Elder", "tenure", value=365, description="member for a year or more"),
        BadgeSpec("naib_ascended", "Naib Ascended", "tier_reached", tier="Naib",
                  description="reached Naib, now or before"),
        BadgeSpec("fedaykin_initiated", "Fedaykin Initiated", "tier_reached", tier="Fedaykin",
                  description="reached Fedaykin or higher, now or before"),
        BadgeSpec("usul_ascended", "Usul Ascended", "tier_reached", tier="Usul",
                  description="reached Usul or higher, now or before"),
        BadgeSpec("first_maker", "First Maker", "conviction", value=Decimal(10000),
                  description="conviction 10,000 or more on the normalised scale"),
        BadgeSpec("desert_active", "Desert Active", "activity", value=Decimal(50), revocable=True,
                  description="activity 50 or more"),
        BadgeSpec("sietch_engaged", "Sietch Engaged", "activity", value=Decimal(200), revocable=True,
                  description="activity 200 or more"),
        BadgeSpec("water_sharer", "Water Sharer", "manual", revocable=True,
                  description="shared by a holder; one active share each, cascades on revoke"),
        BadgeSpec("former_naib", "Former Naib", "former_tier", tier="Naib", description="held a Naib seat and lost it"),
        BadgeSpec("founding_naib", "Founding Naib", "custom", evaluator="founding_naib",
                  description="one of the first seven Naib"),
    ),
    naming=Naming("{community} Sietch", member_title="Fremen", admin_title="Naib"),
    categories=(
        CategorySpec("SIETCH SCROLLS", (ChannelSpec("the-door", "Start here"), ChannelSpec("desert-laws"),
                                        ChannelSpec("census"), ChannelSpec("announcements", kind="announcement"))),
        CategorySpec("NAIB COUNCIL", (ChannelSpec("council-rock"), ChannelSpec("naib-votes")), tiers=("Naib",)),
        CategorySpec("FEDAYKIN QUARTERS", (ChannelSpec("war-room"), ChannelSpec("spice-reports")),
                     min_tier="Fedaykin"),
        CategorySpec("THE OASIS", (ChannelSpec("the-oasis"),), badge="water_sharer"),
        CategorySpec("COMMON GROUNDS", (ChannelSpec("general"), ChannelSpec("introductions"),
                                        ChannelSpec("spice-market"))),
        CategorySpec("CAVE ENTRANCE", (ChannelSpec("cave-entrance"),), rank_range=(70, 100)),
        CategorySpec("THE STILLSUIT", (ChannelSpec("bot-commands"), ChannelSpec("leaderboard"))),
    ),
)
