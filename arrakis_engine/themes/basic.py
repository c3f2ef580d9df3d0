"""BasicTheme (free): three tiers by rank, five badges, four categories."""

from __future__ import annotations

from .model import BadgeSpec, CategorySpec, ChannelSpec, Naming, Theme, TierSpec

_MEMBER = ("VIEW_CHANNEL", "SEND_MESSAGES", "READ_MESSAGE_HISTORY", "ADD_REACTIONS")

BASIC = Theme(
    id="basic",
    name="Basic",
    requires="free",
    description="Three tiers by rank (Gold 1-10, Silver 11-50, Bronze 51-100); ranks beyond 100 get no tier.",
    strategy="absolute",
    demotion_grace_hours=0,
    tiers=(
        TierSpec("Gold", 1, 10, "#FFD700", _MEMBER + ("ATTACH_FILES", "EMBED_LINKS", "USE_EXTERNAL_EMOJIS")),
        TierSpec("Silver", 11, 50, "#C0C0C0", _MEMBER + ("ATTACH_FILES", "EMBED_LINKS")),
        TierSpec("Bronze", 51, 100, "#CD7F32", _MEMBER),
    ),
    badges=(
        BadgeSpec("early_adopter", "Early Adopter", "tenure", value=30, description="member for 30 days or more"),
        BadgeSpec("veteran", "Veteran", "tenure", value=90, description="member for 90 days or more"),
        BadgeSpec("top_tier", "Top Tier", "tier_reached", tier="Gold", description="reached Gold"),
        BadgeSpec("active", "Active", "activity", value=50, revocable=True, description="activity 50 or more"),
        BadgeSpec("contributor", "Contributor", "manual", description="awarded by an admin"),
    ),
    naming=Naming("{community} Community", member_title="Member", admin_title="Admin"),
    categories=(
        CategorySpec("INFO", (ChannelSpec("welcome", "Start here"), ChannelSpec("rules"),
                              ChannelSpec("announcements", kind="announcement"))),
        CategorySpec("GENERAL", (ChannelSpec("general"), ChannelSpec("introductions"))),
        CategorySpec("LEADERSHIP", (ChannelSpec("leadership"),), tiers=("Gold",)),
        CategorySpec("BOT-OPS", (ChannelSpec("bot-commands"), ChannelSpec("leaderboard"))),
    ),
)
