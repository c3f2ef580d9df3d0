"""Plain records returned by the repositories (no database handles inside)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any


class _Record:
    @classmethod
    def from_row(cls, row: dict[str, Any]):
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (uuid.UUID, Decimal)):
                v = str(v)
            elif isinstance(v, datetime):
                v = v.isoformat()
            out[f.name] = v
        return out


@dataclass(frozen=True)
class Community(_Record):
    id: uuid.UUID
    name: str
    guild_id: str
    theme_id: str
    subscription_tier: str
    settings: dict = field(default_factory=dict)
    is_active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Profile(_Record):
    id: uuid.UUID
    community_id: uuid.UUID
    discord_id: str
    wallet_address: str | None
    tier: str | None
    rank: int | None
    conviction: Decimal
    activity: Decimal
    joined_at: datetime
    first_claim_at: datetime | None = None
    metadata: dict = field(default_factory=dict)
    legacy_import_id: uuid.UUID | None = None


@dataclass(frozen=True)
class WalletLink(_Record):
    id: uuid.UUID
    community_id: uuid.UUID
    profile_id: uuid.UUID
    wallet_address: str
    source: str
    verified_at: datetime | None = None
    legacy_import_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Badge(_Record):
    id: uuid.UUID
    community_id: uuid.UUID
    profile_id: uuid.UUID
    badge_type: str
    awarded_at: datetime
    awarded_by: uuid.UUID | None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    metadata: dict = field(default_factory=dict)
    legacy_import_id: uuid.UUID | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Manifest(_Record):
    community_id: uuid.UUID
    version: int
    content: dict
    checksum: str
    created_at: datetime
    created_by: str
    signature: str | None = None


@dataclass(frozen=True)
class ShadowState(_Record):
    community_id: uuid.UUID
    manifest_version: int
    resources: dict
    checksum: str
    status: str
    applied_at: datetime


@dataclass(frozen=True)
class TierChange(_Record):
    community_id: uuid.UUID
    profile_id: uuid.UUID
    from_tier: str | None
    to_tier: str | None
    rank: int | None
    reason: str
    changed_at: datetime


@dataclass(frozen=True)
class AuditEntry(_Record):
    community_id: uuid.UUID | None
    seq: int
    actor: str
    action: str
    payload: dict
    created_at: datetime
    prev_hash: str | None
    hash: str
