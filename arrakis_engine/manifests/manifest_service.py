"""Publishing manifests: build from the community's theme and members, store a new version only
when the desired state changed."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from ..storage.database import Database
from ..storage.standings import EligibilityRepository
from ..storage.gating import GatingRepository
from ..storage.models import Manifest
from ..domain.checksums import canonical_json, sha256_hex
from ..themes import theme_of
from .builder import build_manifest, categories_for

if TYPE_CHECKING:
    from ..signing.signing_service import SigningService
    from ..storage.repos import Repositories
    from .archive import ManifestArchive


class ManifestService:
    def __init__(self, db: Database, repos: Repositories, archive: ManifestArchive | None = None,
                 signing: SigningService | None = None) -> None:
        self.db = db
        self.repos = repos
        self.archive = archive
        self.signing = signing
        self.standings = EligibilityRepository(db)

    def build(self, community_id: uuid.UUID | str) -> dict:
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            members = self.standings.tiers_and_badges()
            rules = GatingRepository(self.db).rules()
        theme = theme_of(community)
        channels = (community.settings or {}).get("wizard", {}).get("channels")
        theme = replace(theme, categories=categories_for(theme, channels))
        content = build_manifest(community_id=str(community.id), community_name=community.name,
                                 guild_id=community.guild_id, theme=theme, members=members)
        if rules:
            # The gating rules are part of the desired state: a changed rule is a new version.
            content["gating"] = {"membership": rules[""]["rule"] if "" in rules else None,
                                 "tiers": {t: r["rule"] for t, r in sorted(rules.items()) if t}}
        return content

    def publish(self, community_id: uuid.UUID | str, *, actor: str) -> tuple[Manifest, bool]:
        """(latest manifest, whether a new version was written)."""
        content = self.build(community_id)
        with self.db.tenant(community_id):
            latest = self.repos.manifests.latest()
            if latest is not None and latest.checksum == sha256_hex(canonical_json(content)):
                return latest, False
            sign = None
            if self.signing is not None:
                def sign(version: int, checksum: str) -> str:
                    return self.signing.sign_manifest(community_id, version, checksum)
            manifest = self.repos.manifests.create_version(content, created_by=actor, sign=sign)
            self.repos.audit.append(actor, "manifest.published", {"version": manifest.version,
                                                                  "checksum": manifest.checksum,
                                                                  "signed": manifest.signature is not None})
        if self.archive is not None:
            self.archive.try_flush()  # an S3 outage never blocks a version: the outbox keeps it
        return manifest, True
