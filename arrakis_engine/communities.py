"""Use cases for communities: create and list (platform operations, audited)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ValidationError
from .storage.database import Database
from .storage.models import Community
from .storage.repositories import AuditLogRepository, CommunityRepository, ProfileRepository
from .themes import theme_for

_GUILD_RE = re.compile(r"^[0-9]{15,20}$|^[a-z0-9][a-z0-9_-]{1,31}$")


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
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise ValidationError("community name must be 1 to 100 characters", field="name")
        guild_id = str(guild_id).strip()
        if not _GUILD_RE.match(guild_id):
            raise ValidationError("guild id must be a Discord snowflake (15 to 20 digits) or a short sandbox name",
                                  field="guild_id")
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
