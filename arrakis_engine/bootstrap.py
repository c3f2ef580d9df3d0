"""The one composition root: builds adapters, repositories and use cases from settings.

The CLI, the bot, the console and the worker all call :func:`build_engine`; nothing else
constructs clients. Each use case gets the ports and stores it uses as constructor arguments,
never the engine. The keyword overrides (``discord=``, ``clock=``, ``store=``, ...) are the seam
tests use to put a fake behind a port.
"""

from __future__ import annotations

import functools
import logging
import threading
from datetime import datetime, timezone
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

import redis
from psycopg2.extensions import parse_dsn

from .chain.orchestrator import EligibilityOrchestrator
from .chain.ranking import HolderIndexer
from .chain.watcher import ChainWatcher
from .use_cases.communities import CommunityService
from .use_cases.demo import Demo
from .use_cases.eligibility_sync import EligibilitySync
from .gating.gating_service import Gating
from .embedded import EmbeddedDiscord, EmbeddedPostgres, EmbeddedRedis
from .errors import StorageError, probe_failure
from .manifests.archive import ManifestArchive
from .manifests.manifest_service import ManifestService
from .migration.sqlite_import import LegacyImporter
from .use_cases.operations import Operations, PlatformProbes
from .use_cases.platform_ops import AuditCheck, DiscordPause
from .policy.approvals import ApprovalService
from .policy.gate import PolicyGate
from .policy.plan import PlanLimits
from .adapters.notify.approvals import DiscordWebhookApprovals, SlackApprovals, SlackClient
from .adapters.rego import RegoPolicyEngine
from .ports import (
    ChainReader,
    Clock,
    DiscordGuild,
    ObjectStore,
    ScoreSource,
    system_clock,
)
from .use_cases.live import HeadWaker, LiveRoleSync, LiveWatch
from .metrics import NULL_METRICS, Metrics, NullMetrics, success_metrics
from .storage.metrics_store import MetricsFlusher, MetricsStore, approval_figures
from .use_cases.member_desk import MemberDesk
from .use_cases.verification import WalletVerification
from .sandbox.client import SandboxDiscord
from .security.anchor import AuditAnchor
from .security.drill import KillSwitchDrill
from .security.killswitch import KillSwitch
from .security.rotation import KeyRotation
from .security.enrolment import EnrolmentService
from .security.mfa import MfaService
from .adapters.notify.webhook import WebhookNotifier
from .security.operators import OperatorService
from .adapters.signing.local import LocalKeySigner
from .signing.signing_service import SigningService
from .settings import Settings
from .storage.database import ADMIN_ROLE, APP_ROLE, Database, role_dsn
from .storage.migrations import Migrator
from .storage.redis_state import (
    DrillReports,
    DriftChecks,
    MemberSyncGuards,
    MfaStepCopies,
    RedisCommunityLocks,
    ScoreCache,
    SigningCutoffs,
    SignInNonces,
    UnknownMembers,
    VerifyLinks,
    WatcherStatus,
)
from .storage.repos import Repositories
from .adapters.s3.shadow import LocalObjectStore, S3ObjectStore
from .synthesis.community import CommunitySynthesizer
from .adapters.discord.rest import DiscordNotConfigured, DiscordREST
from .synthesis.freeze import FreezeFlags
from .storage.freezes import FreezeStateRepository
from .synthesis.member_roles import MemberRoleSync
from .synthesis.reconcile import Reconciler
from .adapters.discord.redis_bucket import RedisTokenBucket
from .adapters.rq.queue import SynthesisQueue, work_until_done
from .synthesis.scheduler import ReconcileRound, Scheduler
from .synthesis.synthesis_service import SynthesisService
from .use_cases.wallets import WalletLinking
from .use_cases.water_sharer import WaterSharerService
from .wizard.wizard_service import WizardService
from .storage.wizard_sessions import SessionStore

log = logging.getLogger(__name__)


@dataclass
class Engine:
    """Everything a front end needs, built once per process by :func:`build_engine`. It holds
    what was built; it builds nothing itself. Close it when done."""

    settings: Settings
    db: Database
    redis: redis.Redis
    migrator: Migrator
    repos: Repositories
    clock: Clock
    # adapters
    discord: DiscordGuild
    chain_readers: dict
    score: ScoreSource | None
    shadow_store: ObjectStore
    bucket: RedisTokenBucket
    freeze: FreezeFlags
    queue: SynthesisQueue
    unknown_members: UnknownMembers
    # use cases
    communities: CommunityService
    orchestrator: EligibilityOrchestrator
    eligibility: EligibilitySync
    gating: Gating  # gating rules: set, show, check one member; the sync evaluates them
    wallets: WalletLinking
    water_sharer: WaterSharerService
    archive: ManifestArchive
    manifests: ManifestService
    synthesizer: CommunitySynthesizer
    member_sync: MemberRoleSync
    reconciler: Reconciler
    synthesis: SynthesisService
    reconcile_round: ReconcileRound
    scheduler: Scheduler  # `arrakis scheduler`'s loop: outbox, approvals, audit digests, reconcile rounds
    operations: Operations
    members: MemberDesk  # what members and admins ask from Discord (the bot)
    live: LiveRoleSync  # the watcher's steps become role updates; its status per chain
    live_watch: LiveWatch  # `arrakis watcher`'s loop: steps, safety net, head wake-ups
    verification: WalletVerification  # /verify's one-time links and the wallet page behind them
    wizard: WizardService
    operators: OperatorService
    mfa: MfaService
    enrolment: EnrolmentService
    signing: SigningService
    killswitch: KillSwitch
    key_rotation: KeyRotation
    drill: KillSwitchDrill
    policy_gate: PolicyGate
    approvals: ApprovalService
    slack: SlackApprovals | None  # the Slack side of approvals (buttons, code dialogs), when configured
    discord_pause: DiscordPause
    audit_check: AuditCheck
    audit_anchor: AuditAnchor
    demo: Demo  # `arrakis demo`: a sample community, synthesized and synced, start to finish
    legacy_importer: object  # (progress=None) -> LegacyImporter
    metrics: Metrics  # this process's recorder (see metrics.py)
    metrics_store: MetricsStore  # the shared figures in Redis
    platform_gauges: Callable[[], dict]  # the gauges read from the platform's state (for /metrics)
    # sends what the recorder counted to Redis every ARRAKIS_METRICS_FLUSH seconds (never once per call)
    _flusher: MetricsFlusher | None  # None with ARRAKIS_METRICS=off
    _embedded: list = field(default_factory=list)

    @property
    def embedded(self) -> bool:
        return bool(self._embedded)

    def health(self) -> dict[str, str]:
        return services_health(self.db, self.redis)

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.stop()  # what this process recorded reaches Redis before Redis is let go
        self.killswitch.close()
        if self.score is not None:
            self.score.close()
        self.discord.close()
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


def services_health(db: Database, redis_client) -> dict[str, str]:
    """Reachability of PostgreSQL and Redis, in plain words (no URLs, no secrets)."""
    out: dict[str, str] = {}
    try:
        with db.platform() as tx:
            tx.scalar("SELECT 1")
        out["postgresql"] = "ok"
    except Exception as exc:  # reported, not raised: this is a status probe
        out["postgresql"] = probe_failure(exc)
    try:
        redis_client.ping()
        out["redis"] = "ok"
    except Exception as exc:
        out["redis"] = probe_failure(exc)
    return out


class Deferred:
    """An adapter built on first use (any attribute read builds it, once). web3.py with
    eth_account and py_ecc take about two seconds to import, hvac a few tenths: a command that
    never reads a chain or signs with Vault (``community list``) never loads them. ``known``
    are attributes answered without building (a chain reader's ``chain``)."""

    def __init__(self, factory: Callable[[], Any], **known: Any) -> None:
        self.__dict__.update(known)
        self._factory = factory
        self._built = None
        self._lock = threading.Lock()

    def built(self):
        with self._lock:
            if self._built is None:
                self._built = self._factory()
            return self._built

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_factory", "_built", "_lock"):
            raise AttributeError(name)
        return getattr(self.built(), name)


def _web3_reader(chain: str, urls, timeout: float) -> ChainReader:
    from .adapters.chain.web3_reader import Web3ChainReader

    return Web3ChainReader(chain, list(urls), timeout=timeout)


def _chain_watcher(chain: str, reader: ChainReader, db: Database, confirmations: int, clock: Clock,
                   indexer: HolderIndexer) -> ChainWatcher:
    return ChainWatcher(chain, reader, db, confirmations=confirmations, clock=clock, indexer=indexer)


def _head_subscriber(chain: str, urls: Sequence[str]) -> HeadWaker:
    from .adapters.chain.heads import HeadSubscriber

    return HeadSubscriber(chain, urls).start()


def _rpc_block(chain: str, url: str, timeout: float) -> int:
    return _web3_reader(chain, [url], timeout).block_number()


def _shadow_store(settings: Settings) -> ObjectStore:
    """S3 when S3_ENDPOINT is set, else a folder in the data directory."""
    if settings.s3_endpoint:
        return S3ObjectStore(settings.s3_endpoint, settings.s3_access_key or "", settings.s3_secret_key or "",
                             settings.s3_bucket or "arrakis")
    return LocalObjectStore(settings.data_dir / "shadow")


def _discord(settings: Settings, redis_client: redis.Redis, bucket: RedisTokenBucket, freeze: FreezeFlags,
             metrics: Metrics) -> DiscordGuild:
    """Discord itself when DISCORD_API_BASE and DISCORD_BOT_TOKEN are set; the local sandbox when
    neither is (started on first use); a clear refusal when only one of them is."""
    if settings.discord_api_base and settings.discord_bot_token:
        return DiscordREST(settings.discord_api_base, settings.discord_bot_token, redis_client, bucket, freeze,
                           metrics=metrics)
    if not settings.discord_api_base and not settings.discord_bot_token:
        return SandboxDiscord(EmbeddedDiscord(settings.data_dir, grace=settings.embedded_grace), redis_client,
                              bucket, freeze, metrics=metrics)
    return DiscordNotConfigured()


def _signer(settings: Settings, redis_client):
    """Vault Transit when VAULT_ADDR is set; else the local key file in the data folder."""
    if settings.vault_addr:
        def vault():
            from .adapters.signing.vault import VaultTransitSigner  # hvac: only once something is signed

            return VaultTransitSigner(settings.vault_addr, redis_client, token=settings.vault_token,
                                      role_id=settings.vault_role_id, secret_id=settings.vault_secret_id,
                                      mount=settings.vault_transit_mount)

        return Deferred(vault)
    return LocalKeySigner(settings.data_dir / "signing" / "keys.json")


def _discord_where(discord: DiscordGuild) -> str:
    if getattr(discord, "is_sandbox", False):
        return "sandbox: a local stand-in for Discord (no DISCORD_API_BASE set)"
    if isinstance(discord, DiscordNotConfigured):
        return "not configured: set both DISCORD_API_BASE and DISCORD_BOT_TOKEN"
    return "Discord API"


def build_policy_gate(settings: Settings, *, metrics: Metrics = NULL_METRICS) -> PolicyGate:
    """The policy pre-gate alone: it needs no database, Redis or Discord, so checking a plan in a
    CI pipeline starts nothing else."""
    limits = PlanLimits(max_bytes=settings.plan_max_bytes, max_values=settings.plan_max_values,
                        max_depth=settings.plan_max_depth,
                        max_resources=settings.plan_max_resources, max_kinds=settings.plan_max_kinds,
                        time_budget=settings.plan_time_budget)
    return PolicyGate(RegoPolicyEngine(), budget=Decimal(str(settings.policy_budget)),
                      profile=settings.policy_profile, limits=limits, metrics=metrics)


def _platform_gauges(**parts) -> dict:
    from .adapters.prometheus import platform_gauges  # prometheus-client: loaded by the processes that export

    return platform_gauges(**parts)


def build_engine(settings: Settings, *, sql_dir: Path | None = None, max_connections: int = 16,
                 discord: DiscordGuild | None = None, clock: Clock | None = None, store: ObjectStore | None = None,
                 chain_readers: dict[str, ChainReader] | None = None, score: ScoreSource | None = None,
                 phase: Callable[[str], None] | None = None) -> Engine:
    """Build the engine. With no ``DATABASE_URL`` / ``REDIS_URL`` it starts the embedded servers
    in ``settings.data_dir`` (and lets go of them in :meth:`Engine.close`; they stay up for
    ``settings.embedded_grace`` seconds for the next command). ``phase(text)`` is told, one line
    each, what a slow start is doing (creating or starting a server, applying migrations).

    The keyword arguments replace one adapter each (tests: a fake Discord port, a clock that
    moves only when told, ...); left out, the one the settings describe is built.
    """
    embedded: list = []
    try:
        database_url = settings.database_url
        if database_url is None:
            pg = EmbeddedPostgres(settings.data_dir, grace=settings.embedded_grace, phase=phase)
            database_url = pg.start()
            embedded.append(pg)
        redis_url = settings.redis_url
        if redis_url is None:
            rd = EmbeddedRedis(settings.data_dir, grace=settings.embedded_grace, phase=phase)
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

    clock = clock or system_clock
    migrator = Migrator(db.owner_connection, sql_dir)
    if any(isinstance(server, EmbeddedPostgres) for server in embedded):
        # The embedded database is ours alone: bring it up to date on every start, so a new data
        # folder works from the first command (a configured server is upgraded by `arrakis db upgrade`).
        told = []

        def applying(migration) -> None:
            if phase is not None and not told:
                told.append(True)
                phase("bringing the database schema up to date…")

        try:
            migrator.upgrade(progress=applying)
        except Exception:
            db.close()
            redis_client.close()
            for server in reversed(embedded):
                server.stop()
            raise
    repos = Repositories.build(db)
    bucket = RedisTokenBucket(redis_client, limit=settings.discord_limit, window=settings.discord_window)
    alerts = WebhookNotifier(settings.alert_webhook_url) if settings.alert_webhook_url else None
    freeze = FreezeFlags(redis_client, state=FreezeStateRepository(db, repos.audit),
                         notify=(lambda subject, body: alerts.notify(subject, body, fields={})) if alerts else None)
    # One recorder per engine, handed to the parts that count something through their constructors
    # (left out, they count nothing). ARRAKIS_METRICS=off: a recorder that keeps nothing, and no
    # flusher (the shared figures of the other processes are still read: `arrakis web`, `status`).
    metrics = Metrics() if settings.metrics else NullMetrics("off")
    if discord is None:
        discord = _discord(settings, redis_client, bucket, freeze, metrics)
    else:  # a port made outside the engine (a test's): the one part handed its recorder after it is made
        discord.metrics = metrics
    if chain_readers is None:
        chain_readers = {chain: Deferred(functools.partial(_web3_reader, chain, urls, settings.rpc_timeout),
                                         chain=chain)
                         for chain, urls in settings.rpc_urls.items()}
    if score is None and settings.score_api_url:
        from .adapters.chain.score_http import ScoreClient

        score = ScoreClient(settings.score_api_url, settings.score_api_key)
    store = store if store is not None else _shadow_store(settings)
    queue = SynthesisQueue(redis_client, backoff=settings.retry_backoff)
    unknown = UnknownMembers(redis_client)

    signing = SigningService(_signer(settings, redis_client), SigningCutoffs(redis_client), db, repos,
                             holds=freeze.holds, metrics=metrics)
    sessions = SessionStore(redis_client)
    mfa = MfaService(db, repos, MfaStepCopies(redis_client), signing=signing, clock=clock, metrics=metrics)
    communities = CommunityService(db, repos.communities, repos.profiles, repos.audit)
    orchestrator = EligibilityOrchestrator(chain_readers, score=score, cache=ScoreCache(redis_client, clock=clock),
                                           db=db, metrics=metrics)
    gating = Gating(db, repos, chain_readers, discord=discord, clock=clock)
    # One holdings indexer per chain: `eligibility add-asset` builds an index with it, the watcher
    # builds the missing ones and catches up those far behind.
    indexers = {chain: HolderIndexer(db, reader) for chain, reader in chain_readers.items()}
    eligibility = EligibilitySync(db, repos, orchestrator, clock=clock, unknown=unknown, gating=gating,
                                  confirmations=settings.confirmations_for, indexers=indexers, metrics=metrics)
    archive = ManifestArchive(db, store, signing=signing)
    manifests = ManifestService(db, repos, archive=archive, signing=signing)
    synthesizer = CommunitySynthesizer(db, repos, discord, RedisCommunityLocks(redis_client))
    operators = OperatorService(db, repos, mfa)
    enrolment = EnrolmentService(db, repos, operators, mfa, discord=discord, clock=clock,
                                 slack=Deferred(lambda: SlackClient(settings.slack_bot_token,
                                                                    base_url=settings.slack_api_base))
                                 if settings.slack_bot_token else None)
    policy_gate = build_policy_gate(settings, metrics=metrics)
    slack = (SlackApprovals(settings.slack_bot_token, settings.slack_approval_channel,
                            base_url=settings.slack_api_base)
             if settings.slack_bot_token and settings.slack_approval_channel else None)
    approval_notifiers = [n for n in (slack, DiscordWebhookApprovals(settings.discord_approval_webhook_url)
                                      if settings.discord_approval_webhook_url else None) if n is not None]
    # An approved mass strip is carried out at once, on the queue, as the approver. (The sync
    # service is built below, from parts that need this one: the call looks it up when it runs.)
    approvals = ApprovalService(db, repos, policy_gate, operators, mfa, notifiers=approval_notifiers, clock=clock,
                                on_strip_approved=lambda community_id, by: synthesis.sync_members(
                                    community_id, queued=True, actor=f"operator:{by}"), metrics=metrics)
    member_sync = MemberRoleSync(db, repos, discord, approvals, max_strip_share=settings.max_strip_share,
                                 metrics=metrics)
    reconciler = Reconciler(db, repos, discord, synthesizer)
    audit_anchor = AuditAnchor(db, repos, store, signing, interval=settings.audit_digest_interval, clock=clock,
                               notifier=alerts)
    killswitch = KillSwitch(db, repos, freeze=freeze, sessions=sessions, signing=signing, mfa=mfa,
                            notifier=alerts)
    probes = PlatformProbes(
        services=functools.partial(services_health, db, redis_client), rpc_block=_rpc_block,
        rpc_urls=settings.rpc_urls, shadow_where="S3" if settings.s3_endpoint else "local folder",
        discord_rate=settings.discord_rate, discord_where=_discord_where(discord))
    synthesis = SynthesisService(db, repos, manifests, synthesizer, member_sync, queue, unknown)
    live = LiveRoleSync(db, repos, eligibility, manifests, synthesis, WatcherStatus(redis_client), clock=clock)
    metrics_store = MetricsStore(redis_client)  # the figures every process shares
    operations = Operations(db, repos, reconciler=reconciler, drift_checks=DriftChecks(redis_client), unknown=unknown,
                            orchestrator=orchestrator, shadow_store=store, queue=queue, bucket=bucket, probes=probes,
                            approvals=approvals, killswitch=killswitch, clock=clock, live=live,
                            success=lambda hours=24: success_metrics(
                                metrics_store.window(hours), vault_configured=bool(settings.vault_addr), hours=hours))
    # Sign-In with Ethereum messages name the site the member signs on: the wallet page's address.
    public = urlsplit(settings.public_url)
    wallets = WalletLinking(db, repos, SignInNonces(redis_client), domain=public.netloc,
                            uri=f"{settings.public_url}/verify", clock=clock)
    members = MemberDesk(db, repos, operations, unknown, sandbox=isinstance(discord, SandboxDiscord),
                       guards=MemberSyncGuards(redis_client), resync=live.resync, reconciler=reconciler,
                       approvals=approvals, mfa=mfa, operators=operators)
    wizard = WizardService(sessions, db=db, repos=repos, communities=communities,
                           eligibility=eligibility, manifests=manifests, queue=queue, clock=clock,
                           synthesis=synthesis, metrics=metrics)
    reconcile_round = ReconcileRound(db, repos, reconciler, operations.drift, freeze=freeze)
    # The demo runs queued work with an in-process worker, and a worker holds the whole engine
    # (built just below; the demo asks for it only when it runs).
    demo = Demo(migrator=migrator, db=db, repos=repos, communities=communities,
                services=functools.partial(services_health, db, redis_client), embedded=bool(embedded),
                clock=clock, discord=discord, manifests=manifests, synthesis=synthesis,
                drift=operations.drift, checked_drift=operations.checked_drift,
                drain=lambda **how: work_until_done(engine, **how),
                discord_stats=getattr(discord, "stats", None))
    engine = Engine(
        settings=settings, db=db, redis=redis_client, migrator=migrator, repos=repos,
        clock=clock, discord=discord, chain_readers=chain_readers, score=score, shadow_store=store, bucket=bucket,
        freeze=freeze, queue=queue, unknown_members=unknown,
        communities=communities, orchestrator=orchestrator, eligibility=eligibility, gating=gating,
        wallets=wallets,
        water_sharer=WaterSharerService(db, repos), archive=archive, manifests=manifests,
        synthesizer=synthesizer, member_sync=member_sync, reconciler=reconciler,
        synthesis=synthesis,
        reconcile_round=reconcile_round,
        scheduler=Scheduler(reconcile_round, freeze=freeze, archive=archive, approvals=approvals,
                            audit_anchor=audit_anchor),
        operations=operations,
        members=members,
        live=live,
        live_watch=LiveWatch(
            live, chain_readers,
            watcher_for=lambda chain: _chain_watcher(chain, chain_readers[chain], db,
                                                     settings.confirmations_for(chain), clock, indexers[chain]),
            heads_for=lambda chain: _head_subscriber(chain, settings.rpc_urls.get(chain, ()))),
        verification=WalletVerification(VerifyLinks(redis_client), members, wallets, public_url=settings.public_url,
                                        follow_web=not settings.public_url_explicit),
        wizard=wizard,
        operators=operators, mfa=mfa, signing=signing, enrolment=enrolment,
        killswitch=killswitch, key_rotation=KeyRotation(db, repos, signing, mfa),
        drill=KillSwitchDrill(killswitch, discord, repos, db, DrillReports(redis_client), freeze,
                              discord_base=settings.discord_api_base, sandbox=isinstance(discord, SandboxDiscord),
                              clock=clock),
        policy_gate=policy_gate,
        approvals=approvals,
        slack=slack,
        audit_anchor=audit_anchor,
        discord_pause=DiscordPause(db, repos, freeze), audit_check=AuditCheck(db, repos, signing=signing, anchor=audit_anchor),
        demo=demo,
        metrics=metrics,
        metrics_store=metrics_store,
        platform_gauges=functools.partial(
            _platform_gauges, queue=queue, killswitch=killswitch, live=live,
            approvals_figures=lambda: approval_figures(db, datetime.fromtimestamp(clock(), timezone.utc)),
            chains=sorted(settings.rpc_urls), vault_configured=bool(settings.vault_addr)),
        _flusher=MetricsFlusher(metrics, metrics_store, interval=settings.metrics_flush).start()
        if settings.metrics else None,
        legacy_importer=functools.partial(LegacyImporter, db, repos),
        _embedded=embedded,
    )
    return engine
