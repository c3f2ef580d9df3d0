"""People approving changes: infrastructure plans after the policy gate, and member syncs that
would take tier roles from many holders at once (mass strips).

Each becomes a request: pending, then approved, rejected, expired (after 24 hours) or cancelled
(by its requester). The rules hold for both kinds, wherever the answer comes from (the CLI,
Slack's buttons, the console):

* the approver holds the ``approver`` role and is not the requester. Both are compared in their
  one canonical form (``OperatorService.canonical``: an operator's name, ``discord:<id>`` for a
  Discord user who is no operator, ``system:<what>`` for a process), and the database refuses the
  same (a CHECK on the stored form and a trigger, migration 0025);
* every answer (approve or reject at any risk, and a requester's cancel) and every plan submission
  needs the actor's TOTP (or backup) code: a name alone proves nothing;
* a request is answered once: a second answer, or one after it expired, is refused.

An approved mass strip is carried out once, by a member sync of that community within the hour
after the approval (the approval runs one at once when it can). Every step goes to the platform's
hash-chained audit log. Reasons are cleaned before they are
stored or shown: one line, printable, at most 500 characters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..errors import ArrakisError, Conflict, NotFound, PermissionDenied, ValidationError
from ..metrics import NULL_METRICS, Metrics
from ..ports import Clock, system_clock
from ..storage.database import Database
from ..security.operators import same_person
from .gate import PolicyDecision, PolicyGate

if TYPE_CHECKING:
    from ..security.mfa import MfaService
    from ..security.operators import OperatorService
    from ..storage.repos import Repositories

log = logging.getLogger(__name__)

# Actors that are people who did not name themselves: they may not open a request another
# person is to approve (the watcher, the scheduler and the bot's named users may).
ANONYMOUS_PEOPLE = frozenset({"system:cli"})
TTL = timedelta(hours=24)
REMIND_AFTER = timedelta(hours=12)
HIGH_RISK = ("high", "critical")
REASON_MAX = 500
STRIP_USABLE_FOR = timedelta(hours=1)  # an approved strip not carried out by then is not used
STATUSES = ("pending", "approved", "rejected", "expired", "cancelled")


class PlanRejected(ArrakisError):
    """The policy gate rejects the plan: no person may approve it."""

    exit_code = 20


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    kind: str  # terraform_plan | member_role_strip
    community_id: str | None
    status: str
    title: str
    requested_by: str
    created_at: datetime
    expires_at: datetime
    decision: str
    risk_score: int
    risk_level: str
    plan_checksum: str
    report: dict
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    mfa: str | None
    notified: dict
    used_at: datetime | None = None

    @property
    def needs_code(self) -> bool:
        """Every answer needs the answerer's code (kept as a field for the front ends)."""
        return True

    @property
    def high_risk(self) -> bool:
        return self.risk_level in HIGH_RISK

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("created_at", "expires_at", "decided_at", "used_at"):
            d[k] = d[k].isoformat() if d[k] else None
        d["needs_code"] = self.needs_code
        return d


class ApprovalNotifier(Protocol):
    """Where requests are announced and their outcome shown (Slack, a Discord webhook)."""

    def announce(self, request: ApprovalRequest) -> dict:
        """Post the request; returns what is needed to update the post later (may be empty)."""
        ...

    def update(self, request: ApprovalRequest, *, reminder: bool = False) -> None:
        """Show the request's new state (or remind reviewers of a pending one)."""
        ...


def clean_reason(reason: str | None) -> str | None:
    """One printable line of at most 500 characters (None when nothing is left)."""
    if reason is None:
        return None
    text = "".join(" " if unicodedata.category(ch).startswith(("C", "Z")) else ch for ch in str(reason))
    text = " ".join(text.split())
    # Markup that chat clients would render (mentions, links, formatting) is shown as typed.
    text = text.replace("<", "‹").replace(">", "›").replace("@", "@\u200b")
    return text[:REASON_MAX] or None


def _row(r: dict) -> ApprovalRequest:
    return ApprovalRequest(str(r["id"]), r["kind"], str(r["community_id"]) if r["community_id"] else None,
                           r["status"], r["title"], r["requested_by"], r["created_at"], r["expires_at"],
                           r["decision"], r["risk_score"], r["risk_level"], r["plan_checksum"], r["report"],
                           r["decided_by"], r["decided_at"], r["reason"], r["mfa"], r["notified"] or {}, r["used_at"])


def _check_id(request_id: str) -> str:
    try:
        return str(uuid.UUID(str(request_id).strip()))
    except ValueError:
        raise ValidationError(f"{request_id!r} is not an approval request id (a UUID)", field="id") from None


class ApprovalService:
    def __init__(self, db: Database, repos: Repositories, gate: PolicyGate, operators: OperatorService,
                 mfa: MfaService, *,
                 notifiers: list[ApprovalNotifier] | None = None, clock: Clock = system_clock,
                 on_strip_approved: Callable[[str, str], None] | None = None, metrics: Metrics = NULL_METRICS) -> None:
        """``operators``: the OperatorService; ``mfa``: the MfaService (codes for high risk);
        ``on_strip_approved(community_id, approver)``: run the member sync of a community whose
        mass strip was just approved (None: the next member sync carries it out)."""
        self.metrics = metrics
        self.db = db
        self.repos = repos
        self.gate = gate
        self.operators = operators
        self.mfa = mfa
        self.notifiers = list(notifiers or [])
        self.clock = clock
        self.store = repos.approvals  # the approval_requests table (storage/approvals.py)
        self.on_strip_approved = on_strip_approved

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    # --- asking -------------------------------------------------------------------------------

    def submit(self, plan_path: str | Path, cost_path: str | Path | None, *, requested_by: str,
               code=None, title: str | None = None) -> ApprovalRequest:
        """Check the plan; unless the gate rejects it, open a request and announce it. The
        requester proves themself with ``code`` (a string, or a callable asked only once the
        input is known to be good)."""
        requester = self.operators.get(requested_by)
        plan = self.gate.read(plan_path, "plan")
        cost = self.gate.read(cost_path, "cost file") if cost_path is not None else None
        decision = self.gate.check(plan, cost)
        checksum = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
        if decision.decision == "reject":  # the plan is wrong input: refused before any code is checked
            with self.db.platform():
                self.repos.audit.append(f"operator:{requester.name}", "approval.refused",
                                        {"plan": checksum, "reasons": decision.reasons[:20], "proved": False})
            raise PlanRejected("the policy gate rejects this plan, so nobody can approve it: "
                               + "; ".join(decision.reasons[:3]), hint="`arrakis plan check` shows every reason")
        self.mfa.verify(requester.name, code() if callable(code) else code, action="SUBMIT_PLAN")
        now = self._now()
        title = clean_reason(title) or f"{Path(plan_path).name}: {decision.changes} resource change(s)"
        with self.db.platform():
            row = self.store.insert_plan(title=title[:200], requested_by=requester.name, created_at=now,
                                         expires_at=now + TTL, decision=decision.decision,
                                         risk_score=decision.risk.score, risk_level=decision.risk.level,
                                         plan_checksum=checksum, report=_report(decision))
            request = _row(row)
            self.repos.audit.append(f"operator:{requester.name}", "approval.requested",
                                    {"request": request.id, "plan": checksum, "risk": request.risk_score,
                                     "level": request.risk_level, "decision": request.decision})
        return self._announce(request)

    def request_strip(self, community_id: str, *, strips: int, tier_holders: int, members: list[str],
                      requested_by: str) -> ApprovalRequest:
        """The mass-strip request of this community: the one already pending, or a new one."""
        cid = _check_id(community_id)
        requester = self.operators.canonical(requested_by)  # stored and compared in one form only
        now = self._now()
        share = strips / tier_holders if tier_holders else 1.0
        title = f"{strips} of {tier_holders} members would lose their tier role"
        with self.db.platform():
            self.store.lock_strips(cid)  # one pending per community
            row = self.store.pending_strip(cid, now)
            if row is not None:
                return _row(row)
            if requester in ANONYMOUS_PEOPLE:
                # a person at the command line who did not say who they are: nobody could then
                # tell that the approver is someone else, so no request is opened in their name
                raise PermissionDenied(
                    f"this sync would leave {strips} of {tier_holders} members without their tier role, which "
                    "needs another person's approval: run it as yourself (--as NAME --code CODE), so that "
                    "someone else approves it; nothing was changed")
            name = self.store.community_name(cid)
            row = self.store.insert_strip(
                cid, title=f"{name}: {title}"[:200], requested_by=requester, created_at=now, expires_at=now + TTL,
                risk_score=max(60, min(100, round(100 * share))),
                report={"summary": title, "strips": strips, "tier_holders": tier_holders,
                        "members": members[:1000], "risk": {"explanation": f"{title} ({share:.0%}): more "
                                                            "often a bad chain read than a market move"},
                        "reasons": [title], "top_resources": []})
            request = _row(row)
            self.repos.audit.append(requested_by, "approval.requested",
                                    {"request": request.id, "kind": "member_role_strip", "community": cid,
                                     "strips": strips, "tier_holders": tier_holders})
        return self._announce(request)

    def take_approved_strip(self, community_id: str) -> ApprovalRequest | None:
        """The community's approved, not yet used mass strip (approved within the hour), marked
        used; None when there is none. Two syncs at once: one of them gets it."""
        cid = _check_id(community_id)
        now = self._now()
        with self.db.platform():
            row = self.store.take_approved_strip(cid, now, decided_after=now - STRIP_USABLE_FOR)
            if row is not None:
                self.repos.audit.append("sync", "approval.used", {"request": str(row["id"]), "community": cid})
        return _row(row) if row else None

    def pending_for(self, community_id: str) -> list[ApprovalRequest]:
        """What waits for a person in this community (its mass strips)."""
        cid = _check_id(community_id)
        with self.db.platform():
            rows = self.store.pending_for(cid, self._now())
        return [_row(r) for r in rows]

    def pending_counts(self) -> dict[str, int]:
        """Requests waiting per community (the fleet's marker), in one query."""
        with self.db.platform():
            return self.store.pending_counts(self._now())

    def approve_strip_of(self, community_id: str, *, by: str, code: str | None, reason: str | None = None,
                         carry_out: bool = True) -> ApprovalRequest:
        """Approve the mass strip waiting in this community (the same rules as any approval).
        ``carry_out=False``: the caller runs the member sync itself."""
        waiting = self.pending_for(community_id)
        if not waiting:
            raise NotFound("no mass strip is waiting for approval in this community",
                           hint="run `arrakis members sync COMMUNITY_ID`; if it pauses, another approver approves it")
        return self.approve(waiting[0].id, by=by, code=code, reason=reason, carry_out=carry_out)

    def _announce(self, request: ApprovalRequest) -> ApprovalRequest:
        where: dict[str, Any] = {}
        for notifier in self.notifiers:
            try:
                where.update(notifier.announce(request) or {})
            except ArrakisError as exc:  # the request stands; reviewers can still find it in the CLI
                log.warning("could not announce approval request %s: %s", request.id, exc)
        if not where:
            return request
        with self.db.platform():
            self.store.set_notified(request.id, where)
        return self.get(request.id)

    # --- reading ------------------------------------------------------------------------------

    def get(self, request_id: str) -> ApprovalRequest:
        rid = _check_id(request_id)
        with self.db.platform():
            row = self.store.get(rid)
        if row is None:
            raise NotFound(f"no approval request {rid}", hint="see `arrakis approvals list`")
        return self._expired_if_due(_row(row))

    def list(self, status: str | None = None) -> list[ApprovalRequest]:
        if status is not None and status not in STATUSES:
            raise ValidationError(f"status must be one of {', '.join(STATUSES)}", field="status")
        self.expire_due()
        with self.db.platform():
            rows = self.store.list(status)
        return [_row(r) for r in rows]

    def _expired_if_due(self, request: ApprovalRequest) -> ApprovalRequest:
        if request.status == "pending" and request.expires_at <= self._now():
            self.expire_due()
            return self.get(request.id)
        return request

    # --- answering ----------------------------------------------------------------------------

    def approve(self, request_id: str, *, by: str, code: str | None = None, reason: str | None = None,
                via: str = "cli", carry_out: bool = True) -> ApprovalRequest:
        """Approve (see the rules above). An approved mass strip is carried out at once through
        ``on_strip_approved`` unless ``carry_out`` is False."""
        return self._answer(request_id, "approved", by=by, code=code, reason=reason, via=via, carry_out=carry_out)

    def reject(self, request_id: str, *, by: str, code=None, reason: str | None = None,
               via: str = "cli") -> ApprovalRequest:
        return self._answer(request_id, "rejected", by=by, code=code, reason=reason, via=via)

    def cancel(self, request_id: str, *, by: str, code=None, reason: str | None = None) -> ApprovalRequest:
        """The requester withdraws their own request (with their code)."""
        request = self.get(request_id)
        op = self.operators.get(by)
        if request.requested_by != op.name:
            self._refused(request, op.name, f"only {request.requested_by}, who asked, may cancel this request", "cli")
        if request.status != "pending":
            self._refused(request, op.name, f"this request is already {request.status}", "cli", error=Conflict)
        mfa = self.mfa.verify(op.name, code() if callable(code) else code, action="CANCEL_APPROVAL")
        return self._finish(request, "cancelled", by=op.name, reason=clean_reason(reason), mfa=mfa, via="cli")

    def _answer(self, request_id: str, status: str, *, by: str, code: str | None, reason: str | None,
                via: str, carry_out: bool = True) -> ApprovalRequest:
        request = self.get(request_id)
        approver = self.operators.get(by)
        why = _why_not(request, approver, status)
        if why:
            self._refused(request, approver.name, why, via,
                          error=Conflict if request.status != "pending" else PermissionDenied)
        # Every answer needs the answerer's code (a refused code is audited by the MFA service and
        # raises MfaRefused); ``code`` may be a callable, asked only now that the rules allow.
        if status == "approved":
            action = ("APPROVE_MASS_STRIP" if request.kind == "member_role_strip" else
                      "APPROVE_HIGH_RISK_PLAN" if request.high_risk else "APPROVE_PLAN")
        else:
            action = "REJECT_APPROVAL"
        mfa = self.mfa.verify(approver.name, code() if callable(code) else code, action=action)
        done = self._finish(request, status, by=approver.name, reason=clean_reason(reason), mfa=mfa, via=via)
        self.metrics.approval(done.status, done.decision, (done.report or {}).get("reasons", ()))
        if done.kind == "member_role_strip" and done.status == "approved" and carry_out and \
                self.on_strip_approved is not None:
            try:
                self.on_strip_approved(done.community_id, approver.name)
            except ArrakisError as exc:  # approved all the same; the next member sync carries it out
                log.warning("the member sync after approval %s could not be started: %s", done.id, exc)
        return done

    def may_answer(self, request_id: str, *, by: str, approve: bool = True) -> tuple[str | None, bool]:
        """Before asking anyone for a code: (why ``by`` may not answer, or None; whether the
        answer needs their code: always). Nothing is written."""
        request = self.get(request_id)
        why = _why_not(request, self.operators.get(by), "approved" if approve else "rejected")
        return why, True

    def history(self, request_id: str) -> list[dict]:
        """The audit entries about this request, oldest first: when, who, what."""
        rid = _check_id(request_id)
        with self.db.platform():
            rows = self.store.history(rid)
        return [dict(r) for r in rows]

    def _refused(self, request: ApprovalRequest, by: str, why: str, via: str, *, error=PermissionDenied) -> None:
        with self.db.platform():
            self.repos.audit.append(f"operator:{by}", "approval.refused",
                                    {"request": request.id, "why": why, "via": via})
        raise error(why)

    def _finish(self, request: ApprovalRequest, status: str, *, by: str, reason: str | None, mfa: str | None,
                via: str) -> ApprovalRequest:
        now = self._now()
        with self.db.platform():
            # Only a pending, unexpired request changes: two answers at once, one of them loses.
            row = self.store.finish(request.id, status, by=by, now=now, reason=reason, mfa=mfa)
            if row is None:
                current = self.store.status_of(request.id)
                self.repos.audit.append(f"operator:{by}", "approval.refused",
                                        {"request": request.id, "why": f"already {current}", "via": via})
            else:
                self.repos.audit.append(f"operator:{by}", f"approval.{status}",
                                        {"request": request.id, "reason": reason, "mfa": mfa, "via": via})
        if row is None:
            self.expire_due()
            raise Conflict(f"this request is already {self.get(request.id).status}")
        done = _row(row)
        self._tell(done)
        return done

    # --- time ---------------------------------------------------------------------------------

    def expire_due(self) -> list[ApprovalRequest]:
        """Expire every pending request past its 24 hours (the scheduler calls this)."""
        now = self._now()
        with self.db.platform():
            rows = self.store.expire_due(now)
            for r in rows:
                self.repos.audit.append("scheduler", "approval.expired", {"request": str(r["id"])})
        expired = [_row(r) for r in rows]
        for request in expired:
            self._tell(request)
        return expired

    def remind_due(self) -> list[ApprovalRequest]:
        """Remind reviewers once of each request still pending after 12 hours."""
        now = self._now()
        with self.db.platform():
            rows = self.store.remind_due(now, created_before=now - REMIND_AFTER)
        reminded = [_row(r) for r in rows]
        for request in reminded:
            self._tell(request, reminder=True)
        return reminded

    def _tell(self, request: ApprovalRequest, *, reminder: bool = False) -> None:
        for notifier in self.notifiers:
            try:
                notifier.update(request, reminder=reminder)
            except ArrakisError as exc:
                log.warning("could not update the announcement of %s: %s", request.id, exc)

    def wait(self, request_id: str, *, timeout: float, poll: float = 2.0,
             sleep: Callable[[float], None] | None = None) -> ApprovalRequest:
        """The request once it is no longer pending, or as it is after ``timeout`` seconds."""
        import time

        sleep = sleep or time.sleep
        deadline = time.monotonic() + timeout
        while True:
            request = self.get(request_id)
            if request.status != "pending" or time.monotonic() >= deadline:
                return request
            sleep(poll)


def _why_not(request: ApprovalRequest, approver, status: str) -> str | None:
    """The rules every answer obeys, or None when ``approver`` may answer ``request`` so."""
    verb = "approve" if status == "approved" else "reject"
    if "approver" not in approver.roles:
        return f"{approver.name} does not hold the approver role"
    if same_person(request.requested_by, approver):
        return f"{approver.name} asked for this change and may not {verb} it"
    if request.status != "pending":
        return f"this request is already {request.status}"
    return None


def _report(decision: PolicyDecision) -> dict:
    d = decision.as_dict()
    return {k: d[k] for k in ("decision", "reasons", "risk", "warnings", "budget", "changes", "top_resources")}
