"""Use cases for communities: create and list (platform operations, audited)."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.database import Database
from ..storage.models import Community
from ..storage.repositories import AuditLogRepository, CommunityRepository, ProfileRepository
from ..themes import theme_for
from ..domain.validation import check_community_name, check_guild_id


@dataclass(frozen=True)
class CommunitySummary:
    community: Community
    members: int

    def as_dict(self) -> dict:
        return {**self.community.as_dict(), "members": self.members}


class CommunityService:
    def __init__(self, db: Database, communities: CommunityRepository, profiles: ProfileRepository,
                 audit: AuditLogRepository) -> None:
        self.db = db
        self.communities = communities
        self.profiles = profiles
        self.audit = audit

    def create(self, *, name: str, guild_id: str, theme_id: str, subscription: str, actor: str = "cli") -> Community:
        """Create a community after checking name, guild id, theme and subscription."""
        name = check_community_name(name)
        guild_id = check_guild_id(guild_id)
        theme_for(theme_id, subscription)
        with self.db.platform():
            community = self.communities.create(name=name, guild_id=guild_id, theme_id=theme_id,
                                                subscription_tier=subscription)
        with self.db.tenant(community.id):
            self.audit.append(actor, "community.created",
                              {"name": name, "guild_id": guild_id, "theme": theme_id, "subscription": subscription})
        return community

    def list(self) -> list[CommunitySummary]:
        """Every community with its member count (platform view)."""
        with self.db.platform():
            communities = self.communities.list_all()
            counts = self.profiles.count_per_community()
        return [CommunitySummary(c, counts.get(c.id, 0)) for c in communities]
