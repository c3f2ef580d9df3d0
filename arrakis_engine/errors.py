"""One error tree for the whole engine.

Every error carries a message an operator or community admin can act on. Only the front ends
(CLI, bot, console) decide how to show them; nothing below them prints.
"""

from __future__ import annotations


class ArrakisError(Exception):
    """Base of every error the engine raises on purpose.

    Args:
        message: one plain sentence saying what went wrong and, where possible, what to do.
        hint: an optional next step for the reader.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(ArrakisError):
    """A setting is missing, malformed or refused."""


class StorageError(ArrakisError):
    """The database or Redis could not do what was asked."""


class EmbeddedStackError(StorageError):
    """The embedded PostgreSQL or Redis could not be started."""


class SchemaError(StorageError):
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
