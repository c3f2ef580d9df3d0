"""Platform operators: who they are and what roles they hold (a platform table, admin role only).

The very first operator may be added by anyone who can run the CLI against the database (there is
nobody yet to ask); from then on adding operators and changing roles needs a platform admin who
proves themself with a TOTP code.

One identity per actor. Wherever something is stored or compared (approval requests above all),
an actor is named in one canonical form (:meth:`OperatorService.canonical`):

* an operator is their operator name (``bob``), whether they came through the CLI
  (``operator:bob``), the bot (their linked Discord id) or Slack (their linked Slack id);
* a Discord user who is no operator is ``discord:<id>``; if that user is linked to an operator
  later, the approval rules still treat that form as that operator (see ``same_person``);
* a process or an anonymous command line is ``system:<what>``.

Operator names cannot contain ``:``, so neither of the last two can ever equal an operator name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from typing import TYPE_CHECKING, Callable

from ..errors import Conflict, NotFound, PermissionDenied, ValidationError
from ..storage.database import Database
from .authz import ROLES, Actor, Decision

if TYPE_CHECKING:
    from ..storage.repos import Repositories
    from .mfa import MfaService

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
DISCORD_ID = re.compile(r"^[0-9]{17,20}$")
SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


@dataclass(frozen=True)
class Operator:
    name: str
    roles: tuple[str, ...]
    discord_user_id: str | None
    slack_user_id: str | None
    enrolled: bool
    created_at: datetime
    created_by: str

    def actor(self, admin_of: frozenset[str] = frozenset()) -> Actor:
        return Actor(operator=self.name, roles=frozenset(self.roles), discord_user_id=self.discord_user_id,
                     admin_of=admin_of)

    def to_dict(self) -> dict:
        return {"name": self.name, "roles": list(self.roles), "discord_user_id": self.discord_user_id,
                "slack_user_id": self.slack_user_id, "mfa_enrolled": self.enrolled,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by}


def _row(r: dict | None) -> Operator | None:
    """An operator from its stored row (``storage.operators``); None for no row."""
    if r is None:
        return None
    return Operator(r["name"], tuple(r["roles"]), r["discord_user_id"], r["slack_user_id"], r["enrolled"],
                    r["created_at"], r["created_by"])


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.match(name):
        raise ValidationError(f"{name!r} is not an operator name: use 2-40 lower-case letters, digits, '.', '_' "
                              "or '-', starting with a letter or digit", field="name")
    return name


def same_person(identity: str | None, operator: Operator) -> bool:
    """Whether the canonical ``identity`` (a requester) is ``operator``: their name, or the
    Discord id they are linked to (a request made before the link, by the same Discord user)."""
    if not identity:
        return False
    return identity == operator.name or (operator.discord_user_id is not None
                                         and identity == f"discord:{operator.discord_user_id}")


def _system_label(label: str) -> str:
    cleaned = re.sub(r"[^a-z0-9._-]", "-", label.lower())[:40] or "unknown"
    return f"system:{cleaned}"


def validate_links(discord_user_id: str | None, slack_user_id: str | None) -> tuple[str | None, str | None]:
    if discord_user_id is not None and not DISCORD_ID.match(discord_user_id):
        raise ValidationError("a Discord user id is 17 to 20 digits", field="discord")
    if slack_user_id is not None and not SLACK_ID.match(slack_user_id):
        raise ValidationError("a Slack user id looks like U012ABCDEF", field="slack")
    return discord_user_id, slack_user_id


def validate_roles(roles) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(r.strip() for r in roles if r and r.strip()))
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValidationError(f"unknown role {bad[0]!r}: the roles are {', '.join(ROLES)}", field="role")
    return roles


class OperatorService:
    def __init__(self, db: Database, repos: Repositories, mfa: MfaService | None = None) -> None:
        """``mfa``: the MfaService that :meth:`authorise` checks codes with."""
        self.db = db
        self.repos = repos
        self.mfa = mfa
        self.rows = repos.operators  # the operators table (storage/operators.py)

    # --- identity ------------------------------------------------------------------------------

    def canonical(self, who: str) -> str:
        """The one stored form of an actor label (see the module's docstring):
        ``operator:bob`` -> ``bob`` (who must exist), ``discord:<id>`` -> the linked operator's
        name or ``discord:<id>``, ``slack:<id>`` -> the linked operator's name; anything else
        (``scheduler``, ``cli``, ``watcher``) -> ``system:<label>``, never an operator."""
        who = str(who or "").strip()
        if who.startswith("operator:"):
            return self.get(who[len("operator:"):]).name
        if who.startswith("discord:"):
            discord_id = who[len("discord:"):]
            if not DISCORD_ID.match(discord_id):
                raise ValidationError("a Discord user id is 17 to 20 digits", field="actor")
            op = self.by_discord(discord_id)
            return op.name if op is not None else f"discord:{discord_id}"
        if who.startswith("slack:"):
            return self.by_slack(who[len("slack:"):]).name
        if who.startswith("system:"):
            who = who[len("system:"):]
        return _system_label(who)

    def authorise(self, as_name: str | None, code: str | Callable[[], str | None] | None, *, action: str,
                  rule: Callable[[Actor], Decision], what: str,
                  before_code: Callable[[], None] | None = None) -> Operator:
        """The operator ``as_name``, once ``rule`` allows them and their code passed for
        ``action``. A refusal is audited (``security.refused``) before it is raised; the code
        (or the callable that asks for it) is only used once the rule allows, so someone who may
        not act burns no attempt. ``before_code`` runs once the rule allows and before the code
        is asked for (input checks that need the actor to be allowed first)."""
        if not as_name:
            raise ValidationError("say who is acting: --as NAME or ARRAKIS_OPERATOR", field="as")
        try:
            op = self.get(as_name)
        except (NotFound, ValidationError):
            self._refused(f"unknown:{str(as_name)[:40]}", what, "no such operator")
            raise
        decision = rule(op.actor())
        if not decision.allowed:
            self._refused(f"operator:{op.name}", what, decision.reason)
            raise PermissionDenied(decision.reason)
        if before_code is not None:
            before_code()
        self.mfa.verify(op.name, code() if callable(code) else code, action=action)
        return op

    def _refused(self, actor: str, what: str, why: str) -> None:
        with self.db.platform():
            self.repos.audit.append(actor, "security.refused", {"what": what, "why": why})

    def refused(self, actor: str, what: str, why: str) -> None:
        """Audit a refused attempt that was refused elsewhere (a wrong enrolment token, say)."""
        self._refused(actor, what, why)

    def get(self, name: str) -> Operator:
        name = validate_name(name)
        with self.db.platform():
            op = _row(self.rows.get(name))
        if op is None:
            raise NotFound(f"no operator named {name!r}", hint="see `arrakis operators list`")
        return op

    def by_slack(self, slack_user_id: str) -> Operator:
        """The operator a Slack user is (their Slack id was given with ``operators add --slack``)."""
        with self.db.platform():
            op = _row(self.rows.by_slack_id(str(slack_user_id)))
        if op is None:
            raise NotFound("this Slack user is not an Arrakis operator",
                           hint="a platform admin links them: arrakis operators add NAME --role approver --slack ID")
        return op

    def by_discord(self, discord_user_id: str) -> Operator | None:
        """The operator a Discord user is (linked with ``operators add --discord``), or None: on
        Discord most users are not operators, so this is a question, not an error."""
        with self.db.platform():
            return _row(self.rows.by_discord_id(str(discord_user_id)))

    def list(self) -> list[Operator]:
        with self.db.platform():
            return [_row(r) for r in self.rows.all()]

    def any(self) -> bool:
        with self.db.platform():
            return self.rows.count() > 0

    def add(self, name: str, roles, *, actor: str, discord_user_id: str | None = None,
            slack_user_id: str | None = None) -> Operator:
        """Add an operator row (no second factor yet). Front ends go through the enrolment service,
        which also issues the operator's one-time enrolment token. Approving roles follow the
        grant rule of :meth:`insert`."""
        name = validate_name(name)
        roles = validate_roles(roles)
        discord_user_id, slack_user_id = validate_links(discord_user_id, slack_user_id)
        with self.db.platform():
            self.rows.lock_additions()
            return self.insert(name, roles, actor=actor, discord_user_id=discord_user_id,
                               slack_user_id=slack_user_id)

    def insert(self, name: str, roles: tuple[str, ...], *, actor: str, discord_user_id: str | None,
               slack_user_id: str | None) -> Operator:
        """The INSERT of :meth:`add`, inside the caller's platform transaction (checked input).

        Approving roles (approver, platform_admin) are given through grants: at once for the very
        first operator and for the founding admin before anyone else ever held platform_admin
        (nobody else could confirm); otherwise the operator is added without them and each waits, pending, for a
        second platform admin to confirm it (:meth:`confirm_grant`)."""
        if self.rows.get(name) is not None:
            raise Conflict(f"there is already an operator named {name!r}")
        if discord_user_id and self.rows.by_discord_id(discord_user_id):
            raise Conflict("another operator already has that Discord user id")
        if slack_user_id and self.rows.by_slack_id(slack_user_id):
            raise Conflict("another operator already has that Slack user id")
        first = not self.rows.count()
        requester = _requester(actor)
        privileged = [r for r in roles if r in PRIVILEGED]
        wait = bool(privileged) and not first and bool(self._must_wait(requester, name))
        now_roles = tuple(r for r in roles if not (wait and r in PRIVILEGED))
        self.rows.insert(name, now_roles, discord_user_id=discord_user_id, slack_user_id=slack_user_id,
                         created_by=actor)
        self.repos.audit.append(actor, "operator.added", {"operator": name, "roles": list(now_roles),
                                                           **({"sole_admin": True} if privileged and not wait
                                                              and not first else {})})
        for role in privileged:
            if wait:
                self._open_grant(name, role, requester, actor)
            else:
                self.repos.grants.applied(name, role, requested_by=requester, status="first" if first else "sole_admin")
        return _row(self.rows.get(name))

    # --- grants of approving power -------------------------------------------------------------

    def _must_wait(self, requester: str, operator: str) -> bool:
        """Whether a grant ``requester`` asks for ``operator`` must wait for a second platform
        admin: always, once anyone besides the requester holds or ever held platform_admin
        (whether they are enrolled now or not: wiping another admin's factor, or revoking their
        role, must not make the requester "the only one"). Only a platform's founding admin, before
        there is a second, gives approving roles alone."""
        return self.rows.ever_another_platform_admin(requester)

    def _open_grant(self, name: str, role: str, requester: str, actor: str) -> dict:
        row = self.repos.grants.open(name, role, requested_by=requester, hours=GRANT_TTL_HOURS)
        self.repos.audit.append(actor, "operator.grant_requested",
                                {"grant": row["id"], "operator": name, "role": role})
        return row

    def pending_grants(self) -> list[Grant]:
        """Grants waiting for a second platform admin, oldest first (those past 24 hours expire)."""
        with self.db.platform():
            return [Grant.from_row(r) for r in self.repos.grants.pending()]

    def confirm_grant(self, grant_id, *, by: Operator) -> Operator:
        """A second platform admin (``by``, proved by the front end) gives the role asked for."""
        return self._decide_grant(grant_id, by=by, confirm=True)

    def refuse_grant(self, grant_id, *, by: Operator) -> Operator:
        return self._decide_grant(grant_id, by=by, confirm=False)

    def _decide_grant(self, grant_id, *, by: Operator, confirm: bool) -> Operator:
        gid = grant_number(grant_id)
        verb = "confirm" if confirm else "refuse"
        with self.db.platform():
            row = self.repos.grants.get(gid, for_update=True)
            if row is None:
                raise NotFound(f"no grant {gid}", hint="see `arrakis operators grants`")
            grant = Grant.from_row(row)
            why = None
            if "platform_admin" not in by.roles:
                why = "only a platform admin may confirm or refuse a grant"
            elif grant.status != "pending":
                why = f"grant {gid} is already {grant.status}"
            elif row["expired"]:
                why = f"grant {gid} expired at {grant.expires_at:%Y-%m-%d %H:%M} UTC; ask for it again"
            elif by.name == grant.requested_by and confirm:
                why = f"{by.name} asked for this grant and may not {verb} it: another platform admin must"
            elif by.name == grant.operator:
                why = f"{by.name} would receive this role and may not {verb} it: another platform admin must"
        if why is not None:
            self._refused(f"operator:{by.name}", f"operators.{verb}", why)
            raise PermissionDenied(why)
        with self.db.platform():
            self.repos.grants.decide(gid, status="confirmed" if confirm else "refused", decided_by=by.name)
            op = _row(self.rows.get(grant.operator))
            if confirm and grant.role not in op.roles:
                self.rows.set_roles(op.name, sorted(set(op.roles) | {grant.role}))
            withdrawn = not confirm and by.name == grant.requested_by
            self.repos.audit.append(f"operator:{by.name}", "operator.role_granted" if confirm else
                                    "operator.grant_withdrawn" if withdrawn else "operator.grant_refused",
                                    {"operator": grant.operator, "role": grant.role, "grant": gid,
                                     "requested_by": grant.requested_by, "confirmed_by" if confirm else "refused_by": by.name})
            return _row(self.rows.get(grant.operator))

    def grant(self, name: str, role: str, *, actor: str) -> Operator:
        return self._change(name, role, actor=actor, add=True)

    def revoke(self, name: str, role: str, *, actor: str) -> Operator:
        return self._change(name, role, actor=actor, add=False)

    def _change(self, name: str, role: str, *, actor: str, add: bool) -> Operator:
        """Revoking applies at once (the safe direction). Granting an approving role applies at
        once only for the founding admin before anyone else held platform_admin; otherwise it
        opens a pending grant for a second platform admin."""
        name = validate_name(name)
        checked = validate_roles([role])
        if not checked:
            raise ValidationError(f"name a role: {', '.join(ROLES)}", field="role")
        role = checked[0]
        requester = _requester(actor)
        if add and role in PRIVILEGED and requester == name:
            why = f"{name} may not grant themself {role}"
            self._refused(actor, "operators.grant", why)  # audited, like every refusal
            raise PermissionDenied(why)
        with self.db.platform():
            op = _row(self.rows.get(name))
            if op is None:
                raise NotFound(f"no operator named {name!r}")
            if add and role in op.roles:
                return op
            if add and role in PRIVILEGED:
                if self._must_wait(requester, name):
                    self._open_grant(name, role, requester, actor)
                    return op
                self.repos.grants.applied(name, role, requested_by=requester, status="sole_admin")
            roles = set(op.roles) | {role} if add else set(op.roles) - {role}
            sole = add and role in PRIVILEGED  # (a grant that waits has returned above)
            if not add and role == "platform_admin" and "platform_admin" in op.roles:
                if not self.rows.other_platform_admins(name):
                    raise Conflict(f"{name} is the last platform admin; grant the role to someone else first")
            self.rows.set_roles(name, sorted(roles))
            self.repos.audit.append(actor, "operator.role_granted" if add else "operator.role_revoked",
                                    {"operator": name, "role": role, **({"sole_admin": True} if sole else {})})
            return _row(self.rows.get(name))


PRIVILEGED = ("platform_admin", "approver")  # roles that approve, or make approvers: given by two people
GRANT_TTL_HOURS = 24


@dataclass(frozen=True)
class Grant:
    """A grant of an approving role, asked by one platform admin, confirmed by another."""

    id: int
    operator: str
    role: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    status: str
    decided_by: str | None

    @classmethod
    def from_row(cls, r: dict) -> "Grant":
        return cls(int(r["id"]), r["operator"], r["role"], r["requested_by"], r["requested_at"], r["expires_at"],
                   r["status"], r["decided_by"])

    def to_dict(self) -> dict:
        return {"id": self.id, "operator": self.operator, "role": self.role, "requested_by": self.requested_by,
                "requested_at": self.requested_at.isoformat(), "expires_at": self.expires_at.isoformat(),
                "status": self.status, "decided_by": self.decided_by}


def _requester(actor: str) -> str:
    """The operator name in an actor label (``operator:bob`` -> ``bob``); other labels as given."""
    actor = str(actor or "")
    return actor[len("operator:"):] if actor.startswith("operator:") else actor[:200]


def grant_number(value) -> int:
    try:
        gid = int(str(value).strip())
    except ValueError:
        gid = 0
    if gid <= 0:
        raise ValidationError(f"{value!r} is not a grant number (see `arrakis operators grants`)", field="grant")
    return gid
