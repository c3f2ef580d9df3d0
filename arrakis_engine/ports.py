"""The engine's ports: one ``typing.Protocol`` per outside dependency.

Use cases are typed against these and nothing else; the adapters that satisfy them
(``discord_http.DiscordREST``, ``web3_reader.Web3ChainReader``, ``score_http.ScoreClient``,
``s3_shadow.S3ObjectStore``, ...) are built only in :mod:`arrakis_engine.bootstrap`. Each method
says what it raises: an adapter translates its library's failures into the engine's own error
tree (:mod:`arrakis_engine.errors`), so a use case never sees ``httpx``, ``web3`` or ``minio``.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Mapping, Protocol, Sequence, runtime_checkable

from .chain.types import Asset, Score

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

    def set_member_roles(self, guild_id: str, user_id: str, roles: list[str], *,
                         community_id: CommunityRef = None) -> dict:
        """Replace a member's roles with ``roles`` in one PATCH.

        Returns:
            The member object as Discord now has it.
        Raises:
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
