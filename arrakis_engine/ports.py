"""The engine's ports: one ``typing.Protocol`` per outside dependency.

Use cases are typed against these and nothing else; the adapters that satisfy them
(``adapters/discord/rest.DiscordREST``, ``adapters/chain/web3_reader.Web3ChainReader``, ``score_http.ScoreClient``,
``adapters/s3/shadow.S3ObjectStore``, ...) are built only in :mod:`arrakis_engine.bootstrap`. Each method
says what it raises: an adapter translates its library's failures into the engine's own error
tree (:mod:`arrakis_engine.errors`), so a use case never sees ``httpx``, ``web3`` or ``minio``.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Mapping, Protocol, Sequence, runtime_checkable

from .domain.chain import Asset, Score
from .domain.wizard_session import WizardSession

CommunityRef = uuid.UUID | str | None

Clock = Callable[[], float]
"""The one clock shape: seconds since the epoch (UTC), injected into every use case that reads
the time. Tests pass a clock that moves only when they move it."""

# Discord's numeric channel types, as guild listings report them and creations take them.
CHANNEL_TYPES = {"text": 0, "voice": 2, "category": 4, "announcement": 5}


def system_clock() -> float:
    """The real clock (what bootstrap injects when no test clock is given)."""
    return time.time()


def moment(clock: Clock) -> datetime:
    """The clock's reading as an aware UTC datetime."""
    return datetime.fromtimestamp(clock(), timezone.utc)


@runtime_checkable
class DiscordGuild(Protocol):
    """Discord guild operations, as the synthesizer, member sync and reconciler need them.

    Every call is paced by Discord's limits and held while the community (or everything) is
    frozen; ``community_id`` names the community the call is for (the freeze that applies).
    """

    calls: int
    """How many requests this client has sent so far (for reports of calls made)."""

    def list_roles(self, guild_id: str, *, community_id: CommunityRef = None) -> list[dict]:
        """The guild's roles.

        Returns:
            Discord role objects (``id``, ``name``, ``color``, ``permissions`` as a string, ...).
        Raises:
            DiscordError: Discord refused (``retryable=False``: 401, 403, 404) or failed
                (``retryable=True``: 5xx, network, still rate limited).
        """
        ...

    def create_role(self, guild_id: str, *, name: str, color: int, permissions: int | str, hoist: bool = False,
                    community_id: CommunityRef = None, patience: float | None = None) -> dict:
        """Create a role.

        Args:
            patience: the longest to wait for the route's bucket before giving up.
        Returns:
            The created role object (with its new ``id``).
        Raises:
            RouteBusy: the route's bucket frees up later than ``patience`` (nothing was sent).
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def update_role(self, guild_id: str, role_id: str, *, community_id: CommunityRef = None, **fields) -> dict:
        """Change a role's fields (name, color, permissions, hoist).

        Returns:
            The role as Discord now has it.
        Raises:
            DiscordError: as for :meth:`list_roles` (404: the role is gone).
        """
        ...

    def delete_role(self, guild_id: str, role_id: str, *, community_id: CommunityRef = None) -> None:
        """Delete a role.

        Raises:
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def list_channels(self, guild_id: str, *, community_id: CommunityRef = None) -> list[dict]:
        """The guild's channels and categories.

        Returns:
            Channel objects (``id``, ``name``, ``type`` from :data:`CHANNEL_TYPES`, ``parent_id``,
            ``topic``, ``permission_overwrites``).
        Raises:
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def create_channel(self, guild_id: str, *, name: str, type: str = "text", parent_id: str | None = None,
                       topic: str | None = None, overwrites: list | None = None,
                       community_id: CommunityRef = None) -> dict:
        """Create a channel or category (``type`` is a key of :data:`CHANNEL_TYPES`).

        Returns:
            The created channel object.
        Raises:
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def update_channel(self, channel_id: str, *, community_id: CommunityRef = None, guild_id: str = "",
                       **fields) -> dict:
        """Change a channel's fields (name, topic, parent_id, permission_overwrites).

        Returns:
            The channel as Discord now has it.
        Raises:
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def delete_channel(self, channel_id: str, *, community_id: CommunityRef = None, guild_id: str = "") -> None:
        """Delete a channel or category.

        Raises:
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def get_member(self, guild_id: str, user_id: str, *, community_id: CommunityRef = None) -> dict:
        """One member of the guild.

        Returns:
            The member object (``roles``: the member's role ids).
        Raises:
            DiscordError: ``status=404`` when the user is not in the guild; otherwise as above.
        """
        ...

    def list_members(self, guild_id: str, *, after: str = "0", limit: int = 1000,
                     community_id: CommunityRef = None) -> list[dict]:
        """Up to ``limit`` (1 to 1000) members of the guild whose user id is above ``after``, in
        ascending id order (each with ``user.id`` and ``roles``).

        Raises:
            DiscordError: ``status=403`` when the bot may not list members (Discord's privileged
                GUILD_MEMBERS intent is off); otherwise as for :meth:`list_roles`.
        """
        ...

    def set_member_roles(self, guild_id: str, user_id: str, roles: list[str], *,
                         community_id: CommunityRef = None, patience: float | None = None) -> dict:
        """Replace a member's roles with ``roles`` in one PATCH.

        Returns:
            The member object as Discord now has it.
        Raises:
            RouteBusy: (nothing sent) the guild's member bucket frees up later than ``patience``
                seconds; without ``patience`` the call waits for it.
            DiscordError: as for :meth:`get_member`.
        """
        ...

    def send_message(self, channel_id: str, content: str, *, community_id: CommunityRef = None) -> dict:
        """Post a message in a channel.

        Returns:
            The message object (with its ``id``).
        Raises:
            DiscordError: as for :meth:`list_roles`.
        """
        ...

    def send_direct_message(self, user_id: str, content: str) -> dict:
        """Send ``user_id`` a direct message from the bot (``POST /users/@me/channels`` for the
        DM channel, then ``POST /channels/{id}/messages``), paced like every other call.

        Returns:
            The message object (with its ``id`` and ``channel_id``).
        Raises:
            DiscordError: as for :meth:`list_roles`; code 50007 when Discord will not deliver
                to that user (no server shared with the bot, or DMs closed).
        """
        ...


@runtime_checkable
class ChainReader(Protocol):
    """Tier-1 reads on one chain (balances and NFT ownership), batched where it can."""

    requests: int
    """How many JSON-RPC requests this reader has sent (for the figures of a sync)."""

    def balances(self, asset: Asset, addresses: Sequence[str], *, block: int | None = None) -> dict[str, Any]:
        """The balance of ``asset`` for each address, batched (Multicall3 where it can), at the
        latest block or at ``block`` (a gating snapshot; the live path's confirmed block).

        Returns:
            address -> balance in base units, or ``UNKNOWN`` where that read failed (never 0).
        Raises:
            ChainReadError: every endpoint failed before any read could be made.
            ValidationError: the asset or an address is malformed.
        """
        ...

    def owners_of(self, collection: str, token_ids: Sequence[int]) -> dict[int, Any]:
        """The owner (lower-case address) of each ERC-721 token id, batched; None for a token
        that does not exist (burned or never minted); ``UNKNOWN`` where the read failed."""
        ...


@runtime_checkable
class BlockSource(Protocol):
    """New blocks and their event logs on one chain, for the live watcher (several endpoints
    behind it, with failover)."""

    requests: int

    def block_number(self) -> int:
        """The head block. Raises ChainReadError when every endpoint failed."""
        ...

    def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` now (None: the chain has no such block any more)."""
        ...

    def block_header(self, number: int) -> dict | None:
        """``{"hash": ..., "timestamp": seconds}`` of block ``number`` now (None: no such block)."""
        ...

    def get_logs_many(self, addresses: Sequence[str], topics0: Sequence[bytes], from_block: int,
                      to_block: int) -> list[dict]:
        """Logs of these contracts with any of these first topics, in a block range (inclusive).
        Raises RangeRefused when the node finds the range too large, ChainReadError otherwise."""
        ...

    def heads(self, timeout: float = 2.0) -> list[int | None]:
        """Each endpoint's head (None where it did not answer)."""
        ...


@runtime_checkable
class ScoreSource(Protocol):
    """Tier-2: ranks, conviction and activity from the Score Service, behind a circuit breaker."""

    def scores(self, addresses: Sequence[str]) -> dict[str, Score]:
        """Scores for the addresses the service knows (others are left out).

        Raises:
            ScoreServiceError: the service failed, refused us, sent a malformed answer, or its
                breaker is open (nothing was sent).
        """
        ...

    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        ...

    def error_rate(self) -> float:
        """The share of recent calls that failed (0..1)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class ObjectStore(Protocol):
    """Where manifest versions are shadowed (S3, or a local folder)."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (overwrites).

        Raises:
            StorageError: the store failed or cannot be reached (retryable).
        """
        ...

    def put_new(self, key: str, data: bytes) -> None:
        """Store ``data`` under a key that must not exist yet (write-once: audit digests).

        Raises:
            Conflict: something is already stored under ``key`` (it is left as it was).
            StorageError: the store failed or cannot be reached (retryable).
        """
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``.

        Raises:
            NotFound: nothing is stored there.
            StorageError: the store failed or cannot be reached.
        """
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted.

        Raises:
            StorageError: the store failed or cannot be reached.
        """
        ...


class QueuedJob(Protocol):
    id: str

    def get_status(self, refresh: bool = True) -> Any:
        ...


@runtime_checkable
class JobQueue(Protocol):
    """The Discord work queue (one lane per community, fair across them)."""

    def enqueue(self, job_type: str, community_id: uuid.UUID | str, payload: dict, *, key: str,
                delay: float = 0.0, first_contact: bool = False) -> QueuedJob:
        """Queue one job once per idempotency ``key``.

        Returns:
            The job (the existing one when ``key`` is already queued, running or done).
        Raises:
            ValidationError: unknown job type.
            StorageError: Redis failed.
        """
        ...

    def pause(self, community_id: uuid.UUID | str, seconds: float) -> None:
        """Workers leave the community's lane alone for ``seconds`` (its next job could not go
        out sooner); the shared first-contact lane is never paused.

        Raises:
            redis.RedisError: Redis failed.
        """
        ...

    def enqueue_many(self, items: Sequence[tuple[str, Any, dict, str]], *, first_contact: bool = False) -> list[str]:
        """:meth:`enqueue` for many (job type, community, payload, key) items at once.

        Returns:
            The job ids, in order (the existing job's id where a key is already queued,
            running or done).
        Raises:
            ValidationError: unknown job type.
            StorageError: Redis failed.
        """
        ...

    def running(self, community_id: uuid.UUID | str) -> list[dict]:
        """The community's jobs being run by a worker right now.

        Returns:
            ``{"job_id", "type", "progress"}`` each; ``progress`` is ``{"done", "total",
            "eta_seconds"}`` as the job last recorded it, or None before its first step.
        Raises:
            redis.RedisError: Redis failed.
        """
        ...

    def dead_letters(self, limit: int = 100) -> list[dict]:
        """The newest jobs that failed after their last try, newest first.

        Returns:
            Up to ``limit`` of them, each with the ``community`` it was for.
        Raises:
            redis.RedisError: Redis failed.
        """
        ...

    def dead_letter_count(self) -> int:
        """How many jobs failed after their last try (and wait for an operator)."""
        ...

    def counts(self) -> dict[str, int]:
        """Jobs over every lane: ``queued``, ``scheduled`` (a retry in its backoff) and ``running``."""
        ...


@runtime_checkable
class CommunityLocks(Protocol):
    """One synthesis at a time per community, across every worker process."""

    def hold(self, community_id: uuid.UUID | str) -> ContextManager[Callable[[], None]]:
        """Hold the community's lock for a ``with`` block; the value is a ``renew()`` callable.

        Raises:
            SynthesisBusy: another live process holds it (retryable).
        """
        ...


@runtime_checkable
class Signer(Protocol):
    """Signatures over manifests and audit checkpoints (Vault Transit or a local key file)."""

    def sign(self, key_name: str, data: bytes) -> str:
        """Sign ``data`` with the newest version of ``key_name``.

        Returns:
            The signature, naming the key version it was made with.
        Raises:
            SigningError: the signer cannot be reached or refused; nothing may be published unsigned.
        """
        ...

    def verify(self, key_name: str, data: bytes, signature: str) -> bool:
        """Whether ``signature`` (any key version still kept) signs ``data``.

        Raises:
            SigningError: the signer cannot be reached.
        """
        ...

    def rotate(self, key_name: str) -> int:
        """Start a new key version; old signatures keep verifying.

        Returns:
            The new version number.
        Raises:
            SigningError: the signer refused or cannot be reached.
        """
        ...

    def encrypt(self, key_name: str, plaintext: bytes, *, context: bytes = b"") -> str:
        """Seal ``plaintext`` for storage at rest with the symmetric key ``key_name`` (Vault
        Transit encrypt, or AES-GCM with a key in the local key file). ``context`` is bound to the
        result and must be given again to open it. Not stopped by the kill switch.

        Returns:
            A printable ciphertext naming the backend and key version.
        Raises:
            SigningError: the signer refused or cannot be reached.
        """
        ...

    def decrypt(self, key_name: str, ciphertext: str, *, context: bytes = b"") -> bytes:
        """Open what :meth:`encrypt` sealed.

        Raises:
            SigningError: the signer cannot be reached, or the ciphertext (or its context) was changed.
        """
        ...


@runtime_checkable
class PolicyEngine(Protocol):
    """Policy evaluation over an infrastructure plan (Rego in-process)."""

    def evaluate(self, plan: Mapping[str, Any], *, profile: str = "upstream", limits: Any = None,
                 deadline: float | None = None) -> dict:
        """Evaluate the policies against ``plan`` (``terraform show -json`` shape), with the type
        lists of ``profile``, within ``limits`` (a ``PlanLimits``) and before ``deadline``
        (``time.monotonic()``).

        Returns:
            ``{"hard_blocks": [...], "warnings": [...], "changes": n}``, each finding with its id
            and resource.
        Raises:
            ValidationError: ``plan`` is not a plan.
            InputTooLarge: over a limit, or out of time.
            PolicyError: the policies themselves failed to load or evaluate.
        """
        ...


@runtime_checkable
class Notifier(Protocol):
    """Tells people: Slack, a Discord webhook, or the log."""

    def notify(self, subject: str, body: str, *, fields: Mapping[str, str] | None = None) -> None:
        """Send one message.

        Raises:
            NotificationError: the message could not be delivered (callers decide whether that
                matters; a kill switch never fails because of it).
        """
        ...


# --- small state stores (Redis in production) -----------------------------------------------------

class UnknownMembersStore(Protocol):
    """Members the last eligibility sync of a community could not read."""

    def remember(self, community_id, discord_ids: Sequence[str]) -> None:
        """Replace the community's list. Raises StorageError."""
        ...

    def of(self, community_id) -> list[str]:
        """The community's list (empty when none is kept). Raises StorageError."""
        ...


class NonceStore(Protocol):
    """One-time challenges (Sign-In with Ethereum)."""

    def put(self, nonce: str, pending: dict, ttl: int) -> None:
        """Keep ``pending`` under ``nonce`` for ``ttl`` seconds. Raises StorageError."""
        ...

    def take(self, nonce: str) -> dict | None:
        """What was kept under ``nonce``, removed in the same step (None: expired or used)."""
        ...


class DriftCheckStore(Protocol):
    """The last drift check of each community."""

    def remember(self, community_id, check: dict) -> None:
        ...

    def all(self) -> dict[str, dict]:
        """community id -> its last check (``status``, ``counts``, ``at``)."""
        ...


class ScoreCacheStore(Protocol):
    """Score Service answers kept for when the service is down."""

    def put(self, scores: Sequence[Score]) -> None:
        ...

    def get_many(self, addresses: Sequence[str]) -> dict[str, tuple[Score, float]]:
        """address -> (score, age in seconds) for what is cached."""
        ...

    def newest_age(self) -> float | None:
        ...


class MemberSyncGuard(Protocol):
    """Keeps members' own syncs in bounds: one per community at a time, a refresh now and then."""

    def sync_lock(self, community_id, *, seconds: int) -> ContextManager[bool]:
        """Hold the community's sync lock for a ``with`` block; its value is False (nothing held)
        when another sync holds it."""
        ...

    def start_refresh(self, community_id, discord_id: str, *, every: int) -> int | None:
        """None when the member's refresh may run now (noted), else the seconds until it may."""
        ...

    def forget_refresh(self, community_id, discord_id: str) -> None:
        ...


class VerifyLinkStore(Protocol):
    """One-time /verify links, and where `arrakis web` says it serves."""

    def put(self, token: str, link: dict, ttl: int) -> None:
        ...

    def get(self, token: str) -> dict | None:
        """What the link names; None when it expired or was used."""
        ...

    def use_up(self, token: str) -> None:
        ...

    def claim(self, token: str, *, seconds: int = 60) -> bool:
        """Start the one completion of a link; False when another is under way."""
        ...

    def unclaim(self, token: str) -> None:
        ...

    def announced(self) -> str | None:
        ...

    def announce(self, url: str) -> None:
        ...

    def withdraw(self, url: str) -> None:
        """Forget the announced address if it is still ``url``."""
        ...


class MfaStepCopyStore(Protocol):
    """A read-only copy of each operator's newest accepted TOTP step."""

    def remember(self, operator: str, step: int) -> None:
        ...

    def forget(self, operator: str) -> None:
        ...


class SigningCutoffStore(Protocol):
    """The kill switch's signing cut-offs, per key name or 'all'."""

    def cut(self, key_name: str, reason: str) -> None:
        ...

    def lift(self, key_name: str) -> None:
        ...

    def reason(self, *key_names: str) -> str | None:
        """Why the first cut-off of ``key_names`` is in force, or None."""
        ...


class DrillReportStore(Protocol):
    """Past kill-switch drill reports, newest first."""

    def add(self, report: dict) -> None:
        ...

    def past(self) -> list[dict]:
        ...


# --- platform tables (PostgreSQL; each call inside the caller's ``db.platform()``) ---------------

class OperatorStore(Protocol):
    """The operators table. Rows are dicts: name, roles, discord_user_id, slack_user_id,
    enrolled, created_at, created_by."""

    def get(self, name: str) -> dict | None:
        ...

    def by_discord_id(self, discord_user_id: str) -> dict | None:
        ...

    def by_slack_id(self, slack_user_id: str) -> dict | None:
        ...

    def ever_another_platform_admin(self, name: str) -> bool:
        ...

    def other_platform_admin_names(self, name: str) -> list[str]:
        ...

    def all(self) -> list[dict]:
        ...

    def count(self) -> int:
        ...

    def lock_additions(self) -> None:
        """One addition at a time until the transaction ends."""
        ...

    def insert(self, name: str, roles: Sequence[str], *, discord_user_id: str | None, slack_user_id: str | None,
               created_by: str) -> None:
        ...

    def set_roles(self, name: str, roles: Sequence[str]) -> None:
        ...

    def other_platform_admins(self, name: str) -> int:
        ...


class MfaStore(Protocol):
    """Operators' second factor, as the system of record keeps it."""

    def enrolled(self, name: str) -> bool:
        ...

    def install(self, name: str, sealed_secret: str, code_hashes: Sequence[str]) -> None:
        ...

    def clear(self, name: str) -> None:
        ...

    def secrets(self) -> list[dict]:
        ...

    def secret(self, name: str) -> str | None:
        ...

    def replace_secret(self, name: str, new: str, *, old: str) -> bool:
        ...

    def failure_times(self, name: str, *, after: float) -> list[float]:
        ...

    def record_failure(self, name: str, at: float, *, forget_before: float) -> None:
        ...

    def accept_step(self, name: str, step: int) -> tuple[bool, int | None]:
        """(whether the step moved forward, the last accepted step now): one atomic step."""
        ...

    def backup_codes(self, name: str) -> list[dict]:
        ...

    def use_backup(self, name: str, code_hash: str) -> bool:
        """False when the code was used already (of two uses at once, one wins)."""
        ...


class GrantStore(Protocol):
    """Grants of approving power (approver, platform_admin), asked by one platform admin and
    confirmed by another. Rows are dicts: id, operator, role, requested_by, requested_at,
    expires_at, status, decided_by, decided_at."""

    def open(self, operator: str, role: str, *, requested_by: str, hours: int) -> dict:
        ...

    def applied(self, operator: str, role: str, *, requested_by: str, status: str) -> None:
        ...

    def get(self, grant_id: int, *, for_update: bool = False) -> dict | None:
        ...

    def decide(self, grant_id: int, *, status: str, decided_by: str) -> None:
        ...

    def pending(self) -> list[dict]:
        ...


class EnrolmentTokenStore(Protocol):
    """One-time enrolment tokens (hashes), one per operator."""

    def put(self, name: str, token_hash: str, *, created_by: str, created_at: datetime, expires_at: datetime,
            delivered_to: str) -> None:
        ...

    def take(self, name: str, token_hash: str) -> datetime | None:
        """Remove a matching token; when it expires (None: no such token)."""
        ...


class ApprovalStore(Protocol):
    """The approval_requests table; rows are dicts with the request's columns."""

    def insert_plan(self, *, title: str, requested_by: str, created_at: datetime, expires_at: datetime,
                    decision: str, risk_score: int, risk_level: str, plan_checksum: str, report: dict) -> dict:
        ...

    def lock_strips(self, community_id: str) -> None:
        ...

    def pending_strip(self, community_id: str, now: datetime) -> dict | None:
        ...

    def community_name(self, community_id: str) -> str | None:
        ...

    def insert_strip(self, community_id: str, *, title: str, requested_by: str, created_at: datetime,
                     expires_at: datetime, risk_score: int, report: dict) -> dict:
        ...

    def take_approved_strip(self, community_id: str, now: datetime, *, decided_after: datetime) -> dict | None:
        ...

    def set_notified(self, request_id: str, where: dict) -> None:
        ...

    def get(self, request_id: str) -> dict | None:
        ...

    def status_of(self, request_id: str) -> str | None:
        ...

    def list(self, status: str | None = None) -> list[dict]:
        ...

    def pending_for(self, community_id: str, now: datetime) -> list[dict]:
        ...

    def pending_counts(self, now: datetime) -> dict[str, int]:
        ...

    def history(self, request_id: str) -> list[dict]:
        ...

    def finish(self, request_id: str, status: str, *, by: str, now: datetime, reason: str | None,
               mfa: str | None) -> dict | None:
        """None when the request is no longer pending (of two answers at once, one loses)."""
        ...

    def expire_due(self, now: datetime) -> list[dict]:
        ...

    def remind_due(self, now: datetime, *, created_before: datetime) -> list[dict]:
        ...


class AuditCheckpointStore(Protocol):
    """Signed checkpoints of the audit chains, and key rotations as the audit log records them."""

    def head(self, chain: str) -> dict | None:
        ...

    def add(self, chain: str, seq: int, hash_: str, signature: str) -> None:
        ...

    def of_chain(self, chain: str, community_id: uuid.UUID | None) -> list[dict]:
        ...

    def last_key_rotations(self) -> dict[str, datetime]:
        ...


class WatcherStatusStore(Protocol):
    """Each chain watcher's last step, and the changes the safety net found it had missed."""

    def write(self, chain: str, fields: dict) -> None:
        ...

    def add_missed(self, chain: str, n: int) -> None:
        ...

    def read(self, chain: str) -> dict[str, str] | None:
        """The chain's fields as text; None when its watcher never reported."""
        ...


class FreezeSwitch(Protocol):
    """The kill switch's and the pause's freezes: a record in PostgreSQL (the holds) and the flags
    in Redis every Discord call checks first (``synthesis/freeze.py:FreezeFlags``)."""

    def freeze(self, community_id: uuid.UUID | str | None = None, *, reason: str = "frozen by an operator",
               user_id: str | None = None, source: str = "pause", by: str = "operator") -> bool:
        """Hold Discord calls for everyone (no community, no user), a community or a member."""
        ...

    def unfreeze(self, community_id: uuid.UUID | str | None = None, *, user_id: str | None = None,
                 source: str = "pause") -> dict | None:
        ...

    def hold(self, scope: str, target: str | None, source: str) -> dict | None:
        """The record of one hold (who, why, since), or None."""
        ...

    def holds(self, source: str | None = None) -> list[dict]:
        ...

    def check(self) -> list[str]:
        """Re-assert the flags Redis lost from PostgreSQL; returns which."""
        ...

    def frozen(self, community_id: uuid.UUID | str | None = None, *, user_id: str | None = None) -> str | None:
        """The reason, if Discord calls for this community (or all, or this member) are frozen."""
        ...

    def waiting(self) -> list[dict]:
        """The calls held by a freeze right now."""
        ...


class SendHistory(Protocol):
    """The Discord pacing gate's record of sends (``synthesis/redis_bucket.py:RedisTokenBucket``)."""

    def history(self, *, seconds: int = 600, step: int = 10) -> tuple[list[int], list[int]]:
        """(grants, 429s) summed per ``step`` seconds over the last ``seconds``."""
        ...


class WizardSessionStore(Protocol):
    """The wizard's sessions, with one active session per user and guild
    (``storage/wizard_sessions.py:SessionStore``)."""

    def create(self, session: WizardSession) -> bool:
        """Store a new session if the user has no active one in that guild (atomic)."""
        ...

    def get(self, session_id: str, *, touch: bool = True) -> WizardSession | None:
        ...

    def active_id(self, guild_id: str, user_id: str) -> str | None:
        ...

    def forget_active(self, guild_id: str, user_id: str) -> None:
        ...

    def save(self, session: WizardSession, expected_revision: int) -> int:
        """Compare-and-set on the revision: 1 saved, 0 the stored revision is not
        ``expected_revision`` (someone else wrote first), -1 the session is gone."""
        ...

    def revoke(self, *, guild_id: str | None = None, user_id: str | None = None) -> int:
        """Delete every session (none given), a guild's or a user's; returns how many."""
        ...


class DirectMessenger(Protocol):
    """A chat that can write to one person (Slack's ``adapters/notify/approvals.py:SlackClient``)."""

    def direct_message(self, user_id: str, text: str) -> dict:
        ...
