"""One error tree for the whole engine.

Every error carries a message an operator or community admin can act on. Only the front ends
(CLI, bot, console) decide how to show them; nothing below them prints.

``retryable`` says whether trying the same thing again later can succeed. The queue retries only
errors that say so (and errors from outside the tree, which may be passing faults); input that
is wrong, a thing that does not exist, a clash or a refusal stays wrong however often it is
tried. Adapters raise these classes, never their library's own exceptions, so a use case handles
one tree whatever sits behind a port.
"""

from __future__ import annotations


class ArrakisError(Exception):
    """Base of every error the engine raises on purpose.

    Args:
        message: one plain sentence saying what went wrong and, where possible, what to do.
        hint: an optional next step for the reader.
    """

    exit_code = 1
    retryable = False

    def __init_subclass__(cls, retryable: bool | None = None, **kwargs) -> None:
        """``class StorageError(ArrakisError, retryable=True)``: whether trying again can succeed is
        part of the error's kind, stated where the kind is declared."""
        super().__init_subclass__(**kwargs)
        if retryable is not None:
            cls.retryable = retryable

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(ArrakisError):
    """A setting is missing, malformed or refused."""


class StorageError(ArrakisError, retryable=True):
    """The database or Redis could not do what was asked (often a passing outage)."""


class DatabaseUnreachable(StorageError):
    """PostgreSQL did not answer (not running, wrong address): a connection could not be made."""


class EmbeddedStackError(StorageError, retryable=False):
    """The embedded PostgreSQL or Redis could not be started."""


class SchemaError(StorageError, retryable=False):
    """Migrations are missing, changed after being applied, or failed."""


class TenantError(ArrakisError):
    """Tenant scoping was used wrongly: a bad tenant id, no tenant, or two tenants at once."""


class InvalidTenantId(TenantError):
    """The tenant id is not a canonical UUID."""


class TenantIsolationError(TenantError):
    """A write tried to reach another community's data, and row-level security refused it."""


class ValidationError(ArrakisError):
    """Input failed validation. ``field`` names what to fix."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class PlanLimit(ValidationError):
    """A valid value the subscription does not allow (a premium theme on the free plan): a
    refusal, not a mistake in the command line."""


class PermissionDenied(ArrakisError):
    """Whoever asked may not do this (wrong role, another community, another member)."""


class MfaRefused(PermissionDenied):
    """A second-factor code was wrong, already used, or the operator is locked out for now."""


class NotFound(ArrakisError):
    """The thing asked for does not exist (or is not visible to this community)."""


class Conflict(ArrakisError):
    """The change clashes with what is already stored (a duplicate, a stale version)."""


class IntegrityFailure(ArrakisError):
    """Stored data failed a checksum or chain check."""


class LegacyImportError(ArrakisError):
    """A legacy SQLite import was refused. ``problems`` lists bad rows with their row ids."""

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems or [])


class OperationCancelled(ArrakisError):
    """An operator cancelled a long operation; what it had not committed was rolled back."""


class BucketTimeout(ArrakisError, retryable=True):
    """Waiting for a Discord token would take longer than allowed."""


# --- outside services -------------------------------------------------------------------------

class ChainReadError(ArrakisError, retryable=True):
    """Every endpoint for a chain failed (or timed out) for this read: the answer is unknown."""


class ScoreServiceError(ArrakisError, retryable=True):
    """The Score Service failed, refused us, or is switched off by its circuit breaker."""


class SignInError(ArrakisError):
    """The signed message or signature did not prove the wallet."""


class DiscordError(ArrakisError):
    """Discord refused or failed a call. ``status`` and ``code`` are Discord's, when it answered;
    5xx answers, network errors and rate limits are ``retryable``, 4xx refusals are not."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 retryable: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, retryable=retryable)
        self.status = status
        self.code = code


class RouteBusy(DiscordError):
    """The route's bucket is empty for longer than the caller is willing to wait."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"Discord's bucket for this route frees up in {wait:.1f} s", retryable=True)
        self.wait = wait


class SynthesisBusy(DiscordError):
    """Another synthesis of this community is running (the job is retried later)."""

    def __init__(self) -> None:
        super().__init__("another synthesis of this community is running; this one will be retried",
                         retryable=True)


class Frozen(ArrakisError, retryable=True):
    """The kill switch holds this work (globally or for the community): refused at once, or after
    waiting as long as the caller allowed. ``hold`` is the kill switch's entry (scope, reason,
    by, since) when there is one."""

    def __init__(self, message: str, *, hold: dict | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.hold = hold or {}


class SigningError(ArrakisError, retryable=True):
    """Signing or verifying failed (the signer is unreachable, refused, or the key is gone)."""


class PolicyError(ArrakisError):
    """The policies could not be loaded or evaluated."""


class InputTooLarge(ValidationError):
    """Input over a documented limit (size, nesting, count, time): refused before or while it is
    read, with exit status 2 like any other bad argument."""

    exit_code = 2


class NotificationError(ArrakisError, retryable=True):
    """A notification (Slack, webhook) could not be delivered."""


def probe_failure(exc: BaseException) -> str:
    """Why a status probe failed, in plain words and without URLs or secrets: a server that does
    not answer is "not reachable", anything else names the kind of error."""
    import redis as redis_lib

    if (isinstance(exc, (ConnectionError, TimeoutError, redis_lib.ConnectionError, redis_lib.TimeoutError))
            or isinstance(exc, DatabaseUnreachable)):
        return f"not reachable ({type(exc).__name__})"
    return f"failed ({type(exc).__name__})"
