"""The kill switch: stop Discord changes, wizard sessions and signing, globally, for one
community or for one member, in well under a second, and let them resume with nothing lost.

Order of an activation:
1. authorisation (before any input is validated: who may not act learns nothing);
2. validation of the target (a typo is an input error and costs no attempt);
3. the second factor (TOTP or backup code), unless a member freezes themself; a lockout after
   wrong codes never blocks an activation with a right code (a release stays locked);
4. in parallel: freeze flags (every Discord call passes the freeze check in the same atomic step
   that lets it out, so nothing is sent once the flag is set), wizard sessions revoked, signing
   cut off and Vault's signing tokens revoked, the scheduler's reconciles held;
5. the alert (its failure never fails the kill switch) and the audit entry.
Work that was frozen waits where it stood and carries on after release.

A release, at every scope, needs a platform admin and their code: nobody lifts a freeze that
holds them (a member who froze themself asks a platform admin).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from ..errors import ArrakisError, Conflict, Frozen, NotFound, PermissionDenied, StorageError, ValidationError
from ..storage.database import Database, validate_tenant_id
from .authz import SCOPES, Actor, may_kill, may_release_kill
from .operators import DISCORD_ID

if TYPE_CHECKING:
    from ..ports import FreezeSwitch, Notifier, WizardSessionStore
    from ..signing.signing_service import SigningService
    from ..storage.repos import Repositories
    from .mfa import MfaService

log = logging.getLogger(__name__)

SOURCE = "killswitch"  # its holds in the freezes table (the console's pause is another source)


@dataclass
class Part:
    part: str
    ok: bool
    detail: str
    ms: float


@dataclass
class KillReport:
    action: str  # activated | released
    scope: str
    target: str | None
    reason: str
    by: str
    parts: list[Part] = field(default_factory=list)
    total_ms: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class KillSwitch:
    def __init__(self, db: Database, repos: Repositories, *, freeze: FreezeSwitch, sessions: WizardSessionStore,
                 signing: SigningService, mfa: MfaService, notifier: Notifier | None = None) -> None:
        self.db = db
        self.repos = repos
        self.freeze = freeze
        self.sessions = sessions
        self.signing = signing
        self.mfa = mfa
        self.notifier = notifier
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="killswitch")

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    # --- who and what --------------------------------------------------------------------------

    def _user_communities(self, user_id) -> frozenset[str]:
        if not isinstance(user_id, str) or not DISCORD_ID.match(user_id):
            return frozenset()
        with self.db.platform():
            return frozenset(self.repos.views.communities_of_member(user_id))

    def _check(self, actor: Actor, scope, community_id, user_id, code, *, verb: str,
               before_code: Callable[[str, str | None], None] | None = None) -> tuple[str, str | None]:
        """Authorise, validate, call ``before_code(scope, target)`` (what can be refused without a
        code, such as a release of nothing), then prove (``code`` may be a callable, asked only
        then). Returns (scope, target)."""
        user_communities = (self._user_communities(user_id)
                            if scope == "user" and not actor.platform_admin and actor.admin_of else frozenset())
        decision = (may_release_kill(actor) if verb == "release" else
                    may_kill(actor, scope, community_id=community_id, user_id=user_id,
                             user_communities=user_communities))
        if not decision.allowed:
            with self.db.platform():
                self.repos.audit.append(actor.name, "killswitch.refused",
                                        {"scope": str(scope)[:20], "verb": verb, "reason": decision.reason})
            raise PermissionDenied(f"{actor.name} may not {verb} the kill switch here: {decision.reason}")
        scope, target = self._target(scope, community_id, user_id)  # input errors cost no attempt
        if before_code is not None:
            before_code(scope, target)
        # Freezing oneself needs no code (the safe direction); every release needs one.
        self_freeze = (verb == "activate" and scope == "user" and actor.discord_user_id is not None
                       and actor.discord_user_id == user_id)
        if actor.operator and not self_freeze:
            # A lockout never stops an activation with a right code (the safe direction); a
            # release stays locked.
            self.mfa.verify(actor.operator, code() if callable(code) else code, action="KILL_SWITCH",
                            even_if_locked=verb == "activate")
        elif not actor.operator and not self_freeze:
            raise PermissionDenied("the kill switch needs an operator with a second factor for this scope")
        return scope, target

    def _held(self, scope: str, target: str | None) -> dict:
        """The kill switch's hold on ``scope``/``target``; NotFound when it is not on."""
        hold = self.freeze.hold(scope, target, SOURCE)
        if hold is None:
            raise NotFound(f"the kill switch is not on for {self._describe(scope, target)}",
                           hint="see `arrakis killswitch status`")
        return hold

    def _target(self, scope, community_id, user_id) -> tuple[str, str | None]:
        if scope not in SCOPES:
            raise ValidationError(f"scope must be one of {', '.join(SCOPES)}", field="scope")
        if scope == "global":
            return scope, None
        if scope == "community":
            if not community_id:
                raise ValidationError("say which community: --community ID", field="community")
            cid = validate_tenant_id(community_id)
            with self.db.platform():
                self.repos.communities.get(cid)  # NotFound: "no community <id>"
            return scope, str(cid)
        if not isinstance(user_id, str) or not DISCORD_ID.match(user_id):
            raise ValidationError("a Discord user id is 17 to 20 digits: --user ID", field="user")
        return scope, user_id

    # --- activate ------------------------------------------------------------------------------

    def activate(self, actor: Actor, *, scope: str, reason: str, code: str | None = None,
                 community_id: str | None = None, user_id: str | None = None) -> KillReport:
        started = time.perf_counter()
        reason = " ".join((reason or "").split())
        if not reason:
            raise ValidationError("say why (--reason): it is shown to everyone whose work is held", field="reason")
        reason = reason[:300]
        scope, target = self._check(actor, scope, community_id, user_id, code, verb="activate")
        if self.freeze.hold(scope, target, SOURCE) is not None:
            raise Conflict(f"the kill switch is already on for {self._describe(scope, target)}",
                           hint="see `arrakis killswitch status`")
        report = KillReport("activated", scope, target, reason, actor.name)
        held = f"{reason} (by {actor.name})"
        parts = [self._pool.submit(self._timed, "freeze Discord changes", self._freeze, scope, target, reason,
                                   actor.name),
                 self._pool.submit(self._timed, "revoke wizard sessions", self._revoke_sessions, scope, target),
                 self._pool.submit(self._timed, "stop signing and revoke Vault tokens", self._cut_signing, scope,
                                   target, held)]
        report.parts = [p.result() for p in parts]
        report.parts.append(self._timed("alert", self._notify, "Kill switch ON",
                                        f"{self._describe(scope, target)} frozen: {reason}", actor.name))
        report.parts.append(self._timed("audit", self._audit, "killswitch.activated", scope, target, reason,
                                        actor.name, report.parts))
        report.total_ms = round((time.perf_counter() - started) * 1000, 1)
        if self.notifier is not None:  # without one, the alert above was this very line in the log
            log.warning("kill switch ON for %s by %s (%.0f ms)", self._describe(scope, target), actor.name,
                        report.total_ms)
        return report

    def release(self, actor: Actor, *, scope: str, code: str | None = None, community_id: str | None = None,
                user_id: str | None = None) -> KillReport:
        started = time.perf_counter()
        # Nothing to release is said before a code is asked; read again after it (someone else
        # may have released it meanwhile).
        scope, target = self._check(actor, scope, community_id, user_id, code, verb="release",
                                    before_code=self._held)
        hold = self._held(scope, target)
        report = KillReport("released", scope, target, hold["reason"], actor.name)
        report.parts.append(self._timed("restore signing", self._restore_signing, scope, target))
        report.parts.append(self._timed("lift the freeze", self._unfreeze, scope, target))
        report.parts.append(self._timed("alert", self._notify, "Kill switch released",
                                        f"{self._describe(scope, target)}: work resumes", actor.name))
        report.parts.append(self._timed("audit", self._audit, "killswitch.released", scope, target, report.reason,
                                        actor.name, report.parts))
        report.total_ms = round((time.perf_counter() - started) * 1000, 1)
        return report

    def status(self) -> dict:
        """What is frozen (read from PostgreSQL, the system of record) and the calls held."""
        active = [{"scope": h["scope"], "target": None if h["scope"] == "global" else h["target"],
                   "reason": h["reason"], "by": h["held_by"], "since": h["since"]}
                  for h in self.freeze.holds(SOURCE)]
        try:
            held = self.freeze.waiting()
        except StorageError:  # Redis down: the holds (in PostgreSQL) still show
            held = None
        return {"active": sorted(active, key=lambda a: a["since"]), "held_calls": held}

    # --- work that meets a freeze ---------------------------------------------------------------

    def hold_on(self, community_id) -> dict | None:
        """What holds Discord work for this community now: the kill switch's entry (scope, target,
        reason, by, since; the global one first), or, for a freeze set without it, its reason
        alone. None when nothing does. ``community_id`` None: the global freeze only."""
        cid = str(validate_tenant_id(community_id)) if community_id is not None else None
        reason = self.freeze.frozen(cid)
        if reason is None:
            return None
        holds = self.freeze.holds()  # the system of record: scope, target, source, reason, held_by, since
        for scope, target in (("global", "*"), ("community", cid))[:2 if cid else 1]:
            for h in sorted(holds, key=lambda h: h["source"] != SOURCE):  # the kill switch's own first
                if h["scope"] == scope and str(h["target"]) == target:
                    return {"scope": scope, "target": None if scope == "global" else cid, "reason": h["reason"],
                            "by": h["held_by"], "since": h["since"]}
        return {"scope": "global" if self.freeze.frozen(None) else "community",
                "target": None if self.freeze.frozen(None) else cid, "reason": reason, "by": None, "since": None}

    @staticmethod
    def describe_hold(community_id, hold: dict) -> str:
        """One sentence: what is frozen, by whom, since when, why."""
        what = "every community" if hold["scope"] == "global" else f"community {community_id}"
        who = f", by {hold['by']}" if hold.get("by") else ""
        since = (", since " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(hold["since"]))
                 if hold.get("since") else "")
        return f"the kill switch holds {what} (scope {hold['scope']}{who}{since}): {hold['reason']}"

    @staticmethod
    def release_command(hold: dict) -> str:
        """The command that lifts this hold (``hold``: scope and target)."""
        option = {"global": "", "community": " --community ", "user": " --user "}[hold["scope"]]
        return f"arrakis killswitch release --scope {hold['scope']}{option}{hold.get('target') or ''}"

    def check_not_frozen(self, community_id, *, wait: float = 0.0, on_wait=None, sleep=time.sleep,
                         clock=time.monotonic, poll: float = 0.5) -> None:
        """Return if no freeze holds the community's Discord work. Otherwise raise
        :class:`Frozen` at once (``wait`` 0), or call ``on_wait(sentence)`` once and wait up to
        ``wait`` seconds for the release, then raise :class:`Frozen` if it has not come."""
        hold = self.hold_on(community_id)
        if hold is None:
            return
        said = self.describe_hold(community_id, hold)
        if wait <= 0:
            raise Frozen(f"{said}; nothing was sent to Discord",
                         hint=f"release with `{self.release_command(hold)}`, or run again with --wait", hold=hold)
        if on_wait:
            on_wait(said)
        deadline = clock() + wait
        while (hold := self.hold_on(community_id)) is not None:
            if clock() >= deadline:
                raise Frozen(f"still frozen after waiting {wait:g} s: {self.describe_hold(community_id, hold)}; "
                             "nothing was sent to Discord", hint=f"release with `{self.release_command(hold)}`",
                             hold=hold)
            sleep(min(poll, max(0.0, deadline - clock())))

    # --- the parts -----------------------------------------------------------------------------

    @staticmethod
    def _describe(scope: str, target: str | None) -> str:
        return {"global": "everything", "community": f"community {target}", "user": f"member {target}"}[scope]

    @staticmethod
    def _timed(name: str, fn, *args) -> Part:
        t0 = time.perf_counter()
        try:
            detail = fn(*args)
            ok = True
        except ArrakisError as exc:
            detail, ok = f"failed: {exc}", False
        except Exception as exc:  # one part failing never stops the others
            log.exception("kill switch part %r failed", name)
            detail, ok = f"failed: {type(exc).__name__}", False
        return Part(name, ok, detail, round((time.perf_counter() - t0) * 1000, 1))

    def _freeze(self, scope, target, reason, by) -> str:
        where = {"community_id": target} if scope == "community" else {"user_id": target} if scope == "user" else {}
        self.freeze.freeze(reason=reason, source=SOURCE, by=by, **where)
        return "no Discord call goes out for this scope until release; held work waits"

    def _unfreeze(self, scope, target) -> str:
        where = {"community_id": target} if scope == "community" else {"user_id": target} if scope == "user" else {}
        self.freeze.unfreeze(source=SOURCE, **where)
        waiting = len(self.freeze.waiting())
        return f"Discord changes resume ({waiting} held call(s) going ahead)"

    def _revoke_sessions(self, scope, target) -> str:
        if scope == "global":
            n = self.sessions.revoke()
        elif scope == "community":
            with self.db.platform():
                community = self.repos.communities.get(target)
            n = self.sessions.revoke(guild_id=community.guild_id)
        else:
            n = self.sessions.revoke(user_id=target)
        return f"{n} wizard session(s) in progress revoked"

    def _signing_key(self, scope, target) -> str | None:
        from ..signing.signing_service import community_key

        return None if scope == "global" else community_key(target)

    def _cut_signing(self, scope, target, held) -> str:
        if scope == "user":
            return "members do not sign: nothing to stop"
        revoked = self.signing.cut_off(self._signing_key(scope, target), reason=held)
        return f"signing stopped; {revoked} Vault token(s) revoked"

    def _restore_signing(self, scope, target) -> str:
        if scope == "user":
            return "nothing to restore"
        self.signing.restore(self._signing_key(scope, target))
        return "signing allowed again (new tokens are minted on first use)"

    def _notify(self, subject, body, by) -> str:
        if self.notifier is None:
            log.warning("%s: %s (by %s)", subject, body, by)
            return "logged (no ALERT_WEBHOOK_URL set)"
        self.notifier.notify(subject, body, fields={"by": by})
        return "sent"

    def _audit(self, action, scope, target, reason, by, parts) -> str:
        payload = {"scope": scope, "target": target, "reason": reason,
                   "parts": {p.part: {"ok": p.ok, "ms": p.ms} for p in parts}}
        with self.db.platform():
            self.repos.audit.append(by, action, payload)
        if scope == "community":
            with self.db.tenant(target):
                self.repos.audit.append(by, action, payload)
        return "recorded"
