"""Platform operators: who they are and what roles they hold (a platform table, admin role only).

The very first operator may be added by anyone who can run the CLI against the database (there is
nobody yet to ask); from then on adding operators and changing roles needs a platform admin who
proves themself with a TOTP code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..errors import Conflict, NotFound, ValidationError
from ..storage.database import Database
from .authz import ROLES, Actor

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


_COLS = "name, roles, discord_user_id, slack_user_id, totp_secret IS NOT NULL AS enrolled, created_at, created_by"


def _row(r: dict) -> Operator:
    return Operator(r["name"], tuple(r["roles"]), r["discord_user_id"], r["slack_user_id"], r["enrolled"],
                    r["created_at"], r["created_by"])


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.match(name):
        raise ValidationError(f"{name!r} is not an operator name: use 2-40 lower-case letters, digits, '.', '_' "
                              "or '-', starting with a letter or digit", field="name")
    return name


def validate_roles(roles) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(r.strip() for r in roles if r and r.strip()))
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValidationError(f"unknown role {bad[0]!r}: the roles are {', '.join(ROLES)}", field="role")
    return roles


class OperatorRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> Operator | None:
        r = self.db.current().one(f"SELECT {_COLS} FROM operators WHERE name = %s", (name,))
        return _row(r) if r else None

    def by_discord_id(self, discord_user_id: str) -> Operator | None:
        r = self.db.current().one(f"SELECT {_COLS} FROM operators WHERE discord_user_id = %s", (discord_user_id,))
        return _row(r) if r else None

    def by_slack_id(self, slack_user_id: str) -> Operator | None:
        r = self.db.current().one(f"SELECT {_COLS} FROM operators WHERE slack_user_id = %s", (slack_user_id,))
        return _row(r) if r else None

    def all(self) -> list[Operator]:
        return [_row(r) for r in self.db.current().all(f"SELECT {_COLS} FROM operators ORDER BY name")]

    def count(self) -> int:
        return int(self.db.current().scalar("SELECT count(*) FROM operators"))


class OperatorService:
    def __init__(self, db: Database, repos) -> None:
        self.db = db
        self.repos = repos
        self.operators = OperatorRepository(db)

    def get(self, name: str) -> Operator:
        name = validate_name(name)
        with self.db.platform():
            op = self.operators.get(name)
        if op is None:
            raise NotFound(f"no operator named {name!r}", hint="see `arrakis operators list`")
        return op

    def by_slack(self, slack_user_id: str) -> Operator:
        """The operator a Slack user is (their Slack id was given with ``operators add --slack``)."""
        with self.db.platform():
            op = self.operators.by_slack_id(str(slack_user_id))
        if op is None:
            raise NotFound("this Slack user is not an Arrakis operator",
                           hint="a platform admin links them: arrakis operators add NAME --role approver --slack ID")
        return op

    def by_discord(self, discord_user_id: str) -> Operator | None:
        """The operator a Discord user is (linked with ``operators add --discord``), or None: on
        Discord most users are not operators, so this is a question, not an error."""
        with self.db.platform():
            return self.operators.by_discord_id(str(discord_user_id))

    def list(self) -> list[Operator]:
        with self.db.platform():
            return self.operators.all()

    def any(self) -> bool:
        with self.db.platform():
            return self.operators.count() > 0

    def add(self, name: str, roles, *, actor: str, discord_user_id: str | None = None,
            slack_user_id: str | None = None) -> Operator:
        name = validate_name(name)
        roles = validate_roles(roles)
        if discord_user_id is not None and not DISCORD_ID.match(discord_user_id):
            raise ValidationError("a Discord user id is 17 to 20 digits", field="discord")
        if slack_user_id is not None and not SLACK_ID.match(slack_user_id):
            raise ValidationError("a Slack user id looks like U012ABCDEF", field="slack")
        with self.db.platform() as tx:
            if self.operators.get(name) is not None:
                raise Conflict(f"there is already an operator named {name!r}")
            if discord_user_id and self.operators.by_discord_id(discord_user_id):
                raise Conflict("another operator already has that Discord user id")
            tx.execute("INSERT INTO operators (name, roles, discord_user_id, slack_user_id, created_by) "
                       "VALUES (%s, %s, %s, %s, %s)", (name, list(roles), discord_user_id, slack_user_id, actor))
            self.repos.audit.append(actor, "operator.added", {"operator": name, "roles": list(roles)})
            return self.operators.get(name)

    def grant(self, name: str, role: str, *, actor: str) -> Operator:
        return self._change(name, role, actor=actor, add=True)

    def revoke(self, name: str, role: str, *, actor: str) -> Operator:
        return self._change(name, role, actor=actor, add=False)

    def _change(self, name: str, role: str, *, actor: str, add: bool) -> Operator:
        name = validate_name(name)
        checked = validate_roles([role])
        if not checked:
            raise ValidationError(f"name a role: {', '.join(ROLES)}", field="role")
        role = checked[0]
        with self.db.platform() as tx:
            op = self.operators.get(name)
            if op is None:
                raise NotFound(f"no operator named {name!r}")
            roles = set(op.roles) | {role} if add else set(op.roles) - {role}
            if not add and role == "platform_admin" and "platform_admin" in op.roles:
                others = tx.scalar("SELECT count(*) FROM operators WHERE name <> %s AND 'platform_admin' = ANY(roles)",
                                   (name,))
                if not others:
                    raise Conflict(f"{name} is the last platform admin; grant the role to someone else first")
            tx.execute("UPDATE operators SET roles = %s WHERE name = %s", (sorted(roles), name))
            self.repos.audit.append(actor, "operator.role_granted" if add else "operator.role_revoked",
                                    {"operator": name, "role": role})
            return self.operators.get(name)
