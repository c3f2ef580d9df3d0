"""Who may do what. Pure rules: no database, no Redis; the front end says who is acting.

A front end builds an :class:`Actor`: the CLI from an operator row, the bot (later) from the
Discord interaction (``admin_of`` holds the communities whose guild the user can Manage). The
rules answer yes or no with the reason in plain words; they run *before* any input is validated,
so someone who may not act learns nothing about the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("platform_admin", "approver", "auditor")

# Actions that need a fresh TOTP (or backup) code from the person doing them.
MFA_ACTIONS = frozenset({
    "DELETE_CHANNEL", "DELETE_ROLE", "DELETE_COMMUNITY", "KILL_SWITCH", "VAULT_KEY_ROTATION",
    "PURGE_DATA", "ADMIN_OVERRIDE", "APPROVE_MASS_STRIP", "APPROVE_HIGH_RISK_PLAN", "MANAGE_OPERATORS",
    "MFA_RESET",
})

SCOPES = ("global", "community", "user")


@dataclass(frozen=True)
class Actor:
    """Someone acting: a platform operator (``operator`` set, with ``roles``) and/or a Discord
    user (``discord_user_id``, admin of the communities in ``admin_of``)."""

    operator: str | None = None
    roles: frozenset[str] = frozenset()
    discord_user_id: str | None = None
    admin_of: frozenset[str] = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        """How the audit log names this actor (never a secret)."""
        if self.operator:
            return f"operator:{self.operator}"
        return f"discord:{self.discord_user_id}" if self.discord_user_id else "unknown"

    @property
    def platform_admin(self) -> bool:
        return "platform_admin" in self.roles


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def may_kill(actor: Actor, scope: str, *, community_id: str | None = None, user_id: str | None = None,
             user_communities: frozenset[str] = frozenset()) -> Decision:
    """May ``actor`` activate or release the kill switch at ``scope``?

    - global: platform admins only;
    - community: platform admins, or an admin of that very community;
    - user: platform admins, the user themself, or an admin of a community the user belongs to
      (``user_communities``).
    """
    if actor.platform_admin:
        return Decision(True, "platform admin")
    if scope == "global":
        return Decision(False, "only a platform admin may stop everything")
    if scope == "community":
        if community_id is not None and str(community_id) in actor.admin_of:
            return Decision(True, "admin of this community")
        return Decision(False, "only a platform admin or this community's admin may freeze it")
    if scope == "user":
        if user_id is not None and actor.discord_user_id is not None and str(user_id) == actor.discord_user_id:
            return Decision(True, "acting on themself")
        if actor.admin_of & user_communities:
            return Decision(True, "admin of a community this user belongs to")
        return Decision(False, "only a platform admin, an admin of the user's community, or the user themself "
                               "may freeze a user")
    return Decision(False, "only a platform admin may use an unknown scope")


def may_release_kill(actor: Actor) -> Decision:
    """May ``actor`` lift a kill switch? Only a platform admin, at every scope. Anyone who may
    freeze may freeze themself or what they run, but a freeze is never lifted by the one it holds
    (a stolen account that froze itself, or was frozen, cannot unfreeze itself)."""
    if actor.platform_admin:
        return Decision(True, "platform admin")
    return Decision(False, "only a platform admin, with a code, may release a kill switch")


def may_manage_operators(actor: Actor) -> Decision:
    if actor.platform_admin:
        return Decision(True, "platform admin")
    return Decision(False, "only a platform admin may add operators or change their roles")


def may_rotate_keys(actor: Actor) -> Decision:
    if actor.platform_admin:
        return Decision(True, "platform admin")
    return Decision(False, "only a platform admin may rotate signing keys")
