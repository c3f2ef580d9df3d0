"""The one composition root: builds adapters, repositories and use cases from settings.

The CLI, the bot and the console all call :func:`build_engine`; nothing else constructs clients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import redis
from psycopg2.extensions import parse_dsn

from .communities import CommunityService
from .embedded import EmbeddedPostgres, EmbeddedRedis
from .errors import StorageError
from .settings import Settings
from .storage.database import ADMIN_ROLE, APP_ROLE, Database, role_dsn
from .storage.migrations import Migrator
from .storage.repositories import (
    AuditLogRepository,
    BadgeRepository,
    CommunityRepository,
    ManifestRepository,
    ProfileRepository,
    ShadowStateRepository,
    TierHistoryRepository,
    WalletLinkRepository,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repositories:
    communities: CommunityRepository
    profiles: ProfileRepository
    wallets: WalletLinkRepository
    badges: BadgeRepository
    manifests: ManifestRepository
    shadow_states: ShadowStateRepository
    tier_history: TierHistoryRepository
    audit: AuditLogRepository

    @classmethod
    def build(cls, db: Database) -> "Repositories":
        return cls(CommunityRepository(db), ProfileRepository(db), WalletLinkRepository(db), BadgeRepository(db),
                   ManifestRepository(db), ShadowStateRepository(db), TierHistoryRepository(db),
                   AuditLogRepository(db))


@dataclass
class Engine:
    """Everything a front end needs, built once per process. Close it when done."""

    settings: Settings
    db: Database
    redis: redis.Redis
    migrator: Migrator
    repos: Repositories
    communities: CommunityService
    _embedded: list = field(default_factory=list)
    _orchestrator: object = None
    _discord: object = None

    @property
    def embedded(self) -> bool:
        return bool(self._embedded)

    def health(self) -> dict[str, str]:
        """Reachability of PostgreSQL and Redis, in plain words (no URLs, no secrets)."""
        out: dict[str, str] = {}
        try:
            with self.db.platform() as tx:
                tx.scalar("SELECT 1")
            out["postgresql"] = "ok"
        except Exception as exc:  # reported, not raised: this is a status probe
            out["postgresql"] = f"down ({type(exc).__name__})"
        try:
            self.redis.ping()
            out["redis"] = "ok"
        except Exception as exc:
            out["redis"] = f"down ({type(exc).__name__})"
        return out

    @property
    def orchestrator(self):
        """Two-tier eligibility (built on first use: chain readers and the Score Service client)."""
        if self._orchestrator is None:
            from .chain.orchestrator import EligibilityOrchestrator, ScoreCache
            from .chain.score_http import ScoreClient
            from .chain.web3_reader import Web3ChainReader

            readers = {chain: Web3ChainReader(chain, urls, timeout=self.settings.rpc_timeout)
                       for chain, urls in self.settings.rpc_urls.items()}
            score = (ScoreClient(self.settings.score_api_url, self.settings.score_api_key)
                     if self.settings.score_api_url else None)
            self._orchestrator = EligibilityOrchestrator(readers, score=score, cache=ScoreCache(self.redis),
                                                         db=self.db)
        return self._orchestrator

    @property
    def eligibility(self):
        from .eligibility import EligibilitySync

        return EligibilitySync(self.db, self.repos, self.orchestrator, redis=self.redis)

    @property
    def wallets(self):
        from .wallets import WalletLinking

        return WalletLinking(self.db, self.repos, self.redis)

    @property
    def water_sharer(self):
        from .water_sharer import WaterSharerService

        return WaterSharerService(self.db, self.repos)

    @property
    def bucket(self):
        from .synthesis.redis_bucket import RedisTokenBucket

        return RedisTokenBucket(self.redis, rate=self.settings.discord_rate, capacity=self.settings.discord_burst)

    @property
    def freeze(self):
        from .synthesis.freeze import FreezeFlags

        return FreezeFlags(self.redis)

    @property
    def discord(self):
        """The Discord REST client (one per engine), behind the global bucket and freeze flags."""
        if self._discord is None:
            from .errors import ConfigError
            from .synthesis.discord_http import DiscordREST

            if not (self.settings.discord_api_base and self.settings.discord_bot_token):
                raise ConfigError("Discord is not configured: set DISCORD_API_BASE and DISCORD_BOT_TOKEN")
            self._discord = DiscordREST(self.settings.discord_api_base, self.settings.discord_bot_token,
                                        self.redis, self.bucket, self.freeze)
        return self._discord

    @property
    def queue(self):
        from .synthesis.rq_queue import SynthesisQueue

        return SynthesisQueue(self.redis, backoff=self.settings.retry_backoff)

    @property
    def manifests(self):
        from .manifests.service import ManifestService

        return ManifestService(self.db, self.repos, archive=self.archive)

    @property
    def synthesizer(self):
        from .synthesis.community import CommunitySynthesizer

        return CommunitySynthesizer(self.db, self.repos, self.discord)

    @property
    def member_sync(self):
        from .synthesis.members import MemberRoleSync

        return MemberRoleSync(self.db, self.repos, self.discord, max_strip_share=self.settings.max_strip_share)

    @property
    def reconciler(self):
        from .synthesis.reconcile import Reconciler

        return Reconciler(self.db, self.repos, self.discord)

    @property
    def shadow_store(self):
        """S3 when S3_ENDPOINT is set, else a folder in the data directory."""
        from .storage.s3_shadow import LocalObjectStore, S3ObjectStore

        st = self.settings
        if st.s3_endpoint:
            return S3ObjectStore(st.s3_endpoint, st.s3_access_key or "", st.s3_secret_key or "",
                                 st.s3_bucket or "arrakis")
        return LocalObjectStore(st.data_dir / "shadow")

    @property
    def archive(self):
        from .manifests.archive import ManifestArchive

        return ManifestArchive(self.db, self.shadow_store)

    @property
    def operations(self):
        """Operator read models: fleet, health, community detail, drift (console and CLI)."""
        from .operations import Operations

        return Operations(self)

    @property
    def wizard(self):
        from .wizard.service import WizardService

        return WizardService(self)

    def legacy_importer(self, *, progress=None):
        from .migration.sqlite_import import LegacyImporter

        return LegacyImporter(self.db, self.repos, progress=progress)

    def close(self) -> None:
        if self._orchestrator is not None and self._orchestrator.score is not None:
            self._orchestrator.score.close()
        if self._discord is not None:
            self._discord.close()
        self.db.close()
        try:
            self.redis.close()
            self.redis.connection_pool.disconnect()
        except Exception:
            log.debug("redis client already closed")
        for server in reversed(self._embedded):
            server.stop()
        self._embedded.clear()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_engine(settings: Settings, *, sql_dir: Path | None = None, max_connections: int = 16) -> Engine:
    """Build the engine. With no ``DATABASE_URL`` / ``REDIS_URL`` it starts the embedded servers
    in ``settings.data_dir`` (and stops them again in :meth:`Engine.close`)."""
    embedded: list = []
    try:
        database_url = settings.database_url
        if database_url is None:
            pg = EmbeddedPostgres(settings.data_dir)
            database_url = pg.start()
            embedded.append(pg)
        redis_url = settings.redis_url
        if redis_url is None:
            rd = EmbeddedRedis(settings.data_dir)
            redis_url = rd.start()
            embedded.append(rd)
    except Exception:
        for server in reversed(embedded):
            server.stop()
        raise

    # Explicit role URLs (with passwords, for servers that need them) win over the derived ones.
    app = parse_dsn(settings.app_database_url) if settings.app_database_url else role_dsn(database_url, APP_ROLE)
    admin = (parse_dsn(settings.admin_database_url) if settings.admin_database_url
             else role_dsn(database_url, ADMIN_ROLE))
    db = Database(database_url, app, admin, max_connections=max_connections)
    try:
        redis_client = redis.Redis.from_url(redis_url, socket_timeout=10, health_check_interval=30)
    except ValueError as exc:
        db.close()
        for server in reversed(embedded):
            server.stop()
        raise StorageError("REDIS_URL could not be understood") from exc
    repos = Repositories.build(db)
    return Engine(
        settings=settings,
        db=db,
        redis=redis_client,
        migrator=Migrator(db.owner_connection, sql_dir),
        repos=repos,
        communities=CommunityService(db, repos.communities, repos.profiles, repos.audit),
        _embedded=embedded,
    )
