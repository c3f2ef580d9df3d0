"""Enrolment by one-time token: how an operator gets their second factor without anyone else
ever seeing it.

- ``operators add`` (a platform admin with their code) and a re-enrolment (``mfa enroll NAME --as
  ADMIN``: a lost device) each create an enrolment token for the operator: 32 random bytes, good
  for 24 hours and once, stored only as its SHA-256 (one live token per operator; a new one
  replaces the old).
- The token goes only to a channel the operator owns: a Discord direct message from the bot to
  their linked Discord id, or else a Slack direct message to their linked Slack id. It is never
  shown to the admin who asked. Without either link the command is refused and says why, before
  anything is written.
- The very first operator, added when there is nobody to approve anything, gets their token on
  the terminal that added them (there is no one else it could go to).
- The operator redeems it (``mfa enroll NAME --token T``) and only then receives their TOTP
  secret and backup codes. A re-enrolment takes the old factor away at once (a lost device must
  stop working now).
- Every step is audited, refused attempts too (a wrong, used or expired token).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..errors import ArrakisError, ConfigError, DiscordError, MfaRefused, PermissionDenied, ValidationError
from ..ports import Clock, DirectMessenger, DiscordGuild, system_clock
from ..storage.database import Database
from .mfa import Enrolment, MfaService
from .operators import Grant, Operator, OperatorService, validate_links, validate_name, validate_roles

if TYPE_CHECKING:
    from ..storage.repos import Repositories

TOKEN_TTL = timedelta(hours=24)
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Issued:
    """An enrolment token was made. ``token`` is set only for the very first operator (shown on
    the terminal); otherwise it went to ``delivered_to`` and nobody here sees it."""

    operator: Operator
    delivered_to: str
    expires_at: datetime
    token: str | None = None
    pending: tuple = ()  # Grants of approving roles that wait for a second platform admin

    def to_dict(self) -> dict:
        d = {"operator": self.operator.to_dict(), "token_sent_to": self.delivered_to,
             "token_expires_at": self.expires_at.isoformat(), "pending_grants": [g.to_dict() for g in self.pending]}
        if self.token is not None:
            d["enrolment_token"] = self.token
        return d


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _message(name: str, token: str, expires: datetime) -> str:
    return (f"Arrakis: an enrolment token for operator {name}. Only you should see this.\n"
            f"Run: arrakis mfa enroll {name} --token {token}\n"
            f"It works once, until {expires:%Y-%m-%d %H:%M} UTC. Your authenticator secret and backup codes are "
            "shown to you then, and to nobody else. If you did not expect this, tell another platform admin.")


class EnrolmentService:
    def __init__(self, db: Database, repos: Repositories, operators: OperatorService, mfa: MfaService, *,
                 discord: DiscordGuild, slack: DirectMessenger | None = None, clock: Clock = system_clock) -> None:
        """``discord``: the DiscordGuild port (its ``send_direct_message``); ``slack``: an object
        with ``direct_message(user_id, text)`` when a Slack bot token is set, else None."""
        self.db = db
        self.repos = repos
        self.operators = operators
        self.mfa = mfa
        self.discord = discord
        self.slack = slack
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    # --- issuing ------------------------------------------------------------------------------

    def first_operator_needed(self) -> bool:
        return not self.operators.any()

    def add_operator(self, name: str, roles, *, by: Operator | None, discord_user_id: str | None = None,
                     slack_user_id: str | None = None) -> Issued:
        """Add an operator and send them their enrolment token. ``by`` is the platform admin who
        proved themself (None only for the very first operator, which is checked here again,
        under a lock, so two first operators cannot both be made)."""
        name = validate_name(name)
        roles = validate_roles(roles)
        if not roles:
            raise ValidationError("give at least one role: --role platform_admin, approver or auditor", field="role")
        discord_user_id, slack_user_id = validate_links(discord_user_id, slack_user_id)
        if by is not None:
            self.check_channel(name, discord_user_id, slack_user_id)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires = self._now() + TOKEN_TTL
        actor = f"operator:{by.name}" if by is not None else "bootstrap"
        with self.db.platform():
            self.repos.operators.lock_additions()
            first = not self.repos.operators.count()
            if by is None and not first:
                raise PermissionDenied("operators exist already: adding one needs a platform admin and their code "
                                       "(--as NAME --code CODE)")
            op = self.operators.insert(name, roles, actor=actor, discord_user_id=discord_user_id,
                                       slack_user_id=slack_user_id)
            where = "this terminal (the first operator)" if by is None else None
            if where is None:
                # Sent inside the transaction: if it cannot be delivered, the operator is not added.
                where = self._deliver(op, _message(name, token, expires))
            self._store(name, token, expires, actor, where)
            pending = tuple(Grant.from_row(r) for r in self.repos.grants.pending() if r["operator"] == name)
        return Issued(op, where, expires, token if by is None else None, pending)

    def reissue(self, name: str, *, by: Operator) -> Issued:
        """A new enrolment token for ``name`` (a lost device, or a token that expired), sent to
        their own channel. Their current second factor stops working at once."""
        op = self.operators.get(name)
        self.check_channel(op.name, op.discord_user_id, op.slack_user_id)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires = self._now() + TOKEN_TTL
        actor = f"operator:{by.name}"
        where = self._deliver(op, _message(op.name, token, expires))
        with self.db.platform():
            self._store(op.name, token, expires, actor, where)
        if op.enrolled:
            self.mfa.clear(op.name, actor=actor)
        return Issued(self.operators.get(op.name), where, expires)

    def check_channel(self, name: str, discord_user_id: str | None, slack_user_id: str | None) -> None:
        """Refuse (before anything is written or any code is asked) an operator with no channel
        of their own that a token could be sent to."""
        if discord_user_id is None and slack_user_id is None:
            raise ValidationError(f"{name} has no channel of their own for the enrolment token: link their Discord "
                                  "account (--discord ID) or their Slack account (--slack ID); the token is never "
                                  "shown to the admin who asks", field="discord")
        if discord_user_id is None and self.slack is None:
            raise ConfigError(f"{name} is linked only to Slack, and Slack is not configured here (SLACK_BOT_TOKEN): "
                              "the enrolment token cannot be sent; link their Discord account instead")

    def _deliver(self, op: Operator, text: str) -> str:
        problems = []
        if op.discord_user_id:
            try:
                self.discord.send_direct_message(op.discord_user_id, text)
                return f"a Discord direct message to {op.discord_user_id}"
            except DiscordError as exc:
                problems.append("Discord will not deliver a direct message to them (they must share a server "
                                "with the bot and accept its messages)" if exc.code == 50007 else str(exc))
            except ArrakisError as exc:
                problems.append(str(exc))
        if op.slack_user_id and self.slack is not None:
            try:
                self.slack.direct_message(op.slack_user_id, text)
                return f"a Slack direct message to {op.slack_user_id}"
            except ArrakisError as exc:
                problems.append(str(exc))
        raise ConfigError(f"the enrolment token for {op.name} could not be sent: " + "; ".join(problems or
                          ["no channel"]), hint="fix the link or the bot, then: arrakis mfa enroll NAME --as ADMIN")

    def _store(self, name: str, token: str, expires: datetime, actor: str, where: str) -> None:
        self.repos.enrolment_tokens.put(name, _hash(token), created_by=actor, created_at=self._now(),
                                        expires_at=expires, delivered_to=where)
        self.repos.audit.append(actor, "mfa.token_issued", {"operator": name, "sent_to": where,
                                                            "expires_at": expires.isoformat()})

    # --- redeeming ----------------------------------------------------------------------------

    def redeem(self, name: str, token: str | None) -> Enrolment:
        """The operator's own step: their token for their new secret and backup codes (once)."""
        name = validate_name(name)
        token = (token or "").strip()
        if not token:
            raise ValidationError(f"give the enrolment token that was sent to {name}: --token TOKEN", field="token")
        now = self._now()
        with self.db.platform():
            expires_at = self.repos.enrolment_tokens.take(name, _hash(token))
        why = "expired" if expires_at is not None and expires_at <= now else "wrong or used"
        if expires_at is None or expires_at <= now:
            self.operators.refused(f"unknown:{name}", "mfa.enroll", f"{why} enrolment token for {name}")
            raise MfaRefused("that enrolment token is not valid for this operator (wrong, used or more than 24 "
                             "hours old)", hint="another platform admin sends a new one: arrakis mfa enroll NAME "
                                                "--as ADMIN")
        return self.mfa.install(name, actor=f"operator:{name}", via="enrolment token")

