"""Approvals: what waits for a person (infrastructure plans and mass strips), and one request in
full (risk breakdown, warnings, resources by action, cost, its audit history) with approve and
reject. The rules are the engine's (``engine.approvals``); the screen asks it first whether the
operator may answer, so nobody types a code for an answer that would be refused."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from ..data import ago
from ..dialogs.prompt import PromptDialog
from .base import LoadedScreen, add_columns

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

LEVEL_STYLE = {"low": "green", "medium": "yellow", "high": "dark_orange", "critical": "bold red"}
KIND_WORDS = {"terraform_plan": "plan", "member_role_strip": "mass strip"}


def left(expires_at, now: float) -> str:
    seconds = expires_at.timestamp() - now
    if seconds <= 0:
        return "expired"
    hours, minutes = divmod(math.ceil(seconds / 60 - 1e-6), 60)  # whole minutes left, rounding up
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


class ApprovalsScreen(LoadedScreen):
    """Every pending request, oldest first; Enter opens one."""

    FAILED_TO_LOAD = "Could not list the approval requests"

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("loading the requests waiting for an approver…", id="title")
        yield DataTable(id="approvals-table", cursor_type="row", zebra_stripes=True)
        yield Static("Enter: open · approve and reject from the request", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "approvals"
        add_columns(self.query_one(DataTable), (("Kind", 10), ("Request", 40), ("Asked by", 16), ("Age", 9),
                                                ("Expires in", 11), ("Gate", 7), ("Risk", 14)))
        self.requests = []
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def fetch(self) -> tuple:
        return (list(reversed(self.engine.approvals.list("pending"))),)

    def show(self, requests) -> None:
        self.requests = requests
        now = self.now()
        table = self.query_one(DataTable)
        table.clear()
        for r in requests:
            table.add_row(KIND_WORDS.get(r.kind, r.kind), r.title, r.requested_by, ago(r.created_at, now),
                          left(r.expires_at, now), r.decision,
                          f"[{LEVEL_STYLE.get(r.risk_level, '')}]{r.risk_score} {r.risk_level}[/]", key=r.id)
        self.query_one("#title", Static).update(
            f"[b]{len(requests)} request(s) waiting for an approver[/]" if requests
            else "Nothing waits for an approver.")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_approval(str(event.row_key.value))


class ApprovalScreen(LoadedScreen):
    """One request: why it needs a person, and the answer."""

    FAILED_TO_LOAD = "Could not open the request"

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("a", "approve", "Approve"),
                Binding("x", "reject", "Reject"), Binding("r", "refresh", "Refresh")]

    def __init__(self, engine: Engine, request_id: str) -> None:
        super().__init__(engine)
        self.request_id = request_id
        self.request = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("loading the request…", id="title")
        with VerticalScroll(id="approval-body"):
            yield Static("", id="approval-detail")
        yield Static("a: approve · x: reject", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "approval"
        self.load()

    def fetch(self) -> tuple:
        return self.engine.approvals.get(self.request_id), self.engine.approvals.history(self.request_id)

    def show(self, r, history) -> None:
        self.request = r
        now = self.now()
        self.query_one("#title", Static).update(
            f"[b]{escape(r.title)}[/]  ·  {KIND_WORDS.get(r.kind, r.kind)} · asked by {escape(r.requested_by)} "
            f"{ago(r.created_at, now)} · [{LEVEL_STYLE.get(r.risk_level, '')}]risk {r.risk_score} "
            f"{r.risk_level}[/] · {r.status}" + (f", expires in {left(r.expires_at, now)}" if r.status == "pending"
                                                else ""))
        self.query_one("#approval-detail", Static).update("\n".join(detail_lines(r, history, now)))

    # --- answering -------------------------------------------------------------------------------

    def action_approve(self) -> None:
        self._answer(approve=True)

    def action_reject(self) -> None:
        self._answer(approve=False)

    @work(thread=True, exit_on_error=False, exclusive=True, group="answer")
    def _answer(self, approve: bool) -> None:
        operator = self.app.operator
        if not operator:
            self._say("Say who you are to answer: start the console with --as NAME (or ARRAKIS_OPERATOR).")
            return
        try:
            why, needs_code = self.engine.approvals.may_answer(self.request_id, by=operator, approve=approve)
        except Exception as exc:
            self.report_failure(exc, "Could not check the request")
            return
        if why:
            self._say(f"Not possible: {why}.")
            self.tell(f"Not possible: {why}.", severity="warning")
            return
        # Every answer needs the answerer's code (a name alone proves nothing).
        if approve:
            level = "High risk: " if self.request.risk_level in ("high", "critical") else ""
            dialog = PromptDialog("Approve: your code", f"{self.request.title}\n\n{level}type the 6 digits from "
                                  "your authenticator app (or a backup code).", placeholder="123456",
                                  ok="Approve", secret=True)
            self.ui(self.app.push_screen, dialog, self._approve_reason)
        else:
            dialog = PromptDialog("Reject this request?", f"{self.request.title}\n\nSay why: the requester reads it.",
                                  placeholder="why", ok="Reject")
            self.ui(self.app.push_screen, dialog, self._reject_code)

    def _approve_reason(self, code: str | None) -> None:
        if not code:
            self._say_now("Nothing was sent.")
            return
        dialog = PromptDialog("Approve this request?", f"{self.request.title}\n\nA reason is optional.",
                              placeholder="why (optional)", ok="Approve", required=False)
        self.app.push_screen(dialog, lambda reason: self._send(True, code, reason, reason is None))

    def _reject_code(self, reason: str | None) -> None:
        if reason is None:
            self._say_now("Nothing was sent.")
            return
        dialog = PromptDialog("Reject: your code", f"{self.request.title}\n\nType the 6 digits from your "
                              "authenticator app (or a backup code).", placeholder="123456", ok="Reject", secret=True)
        self.app.push_screen(dialog, lambda code: self._send(False, code, reason))

    def _send(self, approve: bool, code: str | None, reason: str | None, cancelled: bool = False) -> None:
        if cancelled or not code:
            self._say_now("Nothing was sent.")
            return
        self._submit(approve, code, reason)

    @work(thread=True, exit_on_error=False, exclusive=True, group="answer")
    def _submit(self, approve: bool, code: str | None, reason: str | None) -> None:
        approvals, operator = self.engine.approvals, self.app.operator
        try:
            if approve:
                done = approvals.approve(self.request_id, by=operator, code=code, reason=reason, via="console")
            else:
                done = approvals.reject(self.request_id, by=operator, code=code, reason=reason, via="console")
        except Exception as exc:
            self.report_failure(exc, "Approve" if approve else "Reject")
            from ..data import describe_error

            self._say(describe_error(exc, "Not done"))
            self.load()
            return
        self.tell(f"{done.status.capitalize()}: {done.title}")
        self._say(f"{done.status.capitalize()} by {operator}.")
        self.load()


def detail_lines(r, history, now: float) -> list[str]:
    """The request in plain lines (Rich markup): risk factors, warnings, resources by action, cost,
    answer, audit history."""
    report = r.report
    lines = []
    risk = report.get("risk") or {}
    factors = risk.get("factors")
    lines.append("[b]Risk[/]")
    if factors:
        # By name: the stored report's keys come back in the database's order, not the formula's.
        lines += [f"  {name.replace('_', ' '):<14} {factors.get(name, 0):>3}  × {weight}" for name, weight
                  in (("resource_type", "0.35"), ("operation", "0.30"), ("cost", "0.20"), ("blast_radius", "0.15"))]
    if risk.get("explanation"):
        lines.append(f"  {escape(risk['explanation'])}")
    if r.kind == "member_role_strip":
        lines.append(f"  {report.get('strips')} of {report.get('tier_holders')} members would lose their tier role "
                     f"(first: {', '.join(report.get('members', [])[:5]) or '-'})")
    warnings = report.get("warnings") or []
    lines.append("")
    lines.append(f"[b]Warnings[/] ({len(warnings)})" if warnings else "[b]Warnings[/]: none")
    for w in warnings[:20]:
        lines.append(f"  {w['id']}: {escape(w.get('address') or 'the plan')} {escape(w['message'])}")
    by_action: dict[str, list[str]] = defaultdict(list)
    for entry in report.get("top_resources") or []:
        action, _, address = entry.partition(" ")
        by_action[action].append(address)
    if by_action:
        lines += ["", "[b]Resources that drove the score[/]"]
        lines += [f"  {action}: {escape(', '.join(addresses))}" for action, addresses in sorted(by_action.items())]
    budget = report.get("budget")
    if budget is not None:
        cost = ("not estimated" if budget.get("increase_monthly") is None
                else f"${budget['increase_monthly']:,.2f} a month (budget ${budget['limit_monthly']:,.0f})")
        lines += ["", f"[b]Cost change[/]: {cost}"]
    if r.status != "pending":
        lines += ["", f"[b]Answer[/]: {r.status}" + (f" by {escape(r.decided_by)}" if r.decided_by else "")
                  + (f": {escape(r.reason)}" if r.reason else "")]
    lines += ["", "[b]History[/]"]
    for h in history:
        extra = h["payload"].get("why") or h["payload"].get("reason") or ""
        lines.append(f"  {ago(h['created_at'], now):<12} {escape(h['actor'])}  {h['action']}"
                     + (f"  ({escape(str(extra))})" if extra else ""))
    return lines
