"""The kill switch: what is frozen now (everything, a community, a member), by whom, why and since
when; activate and release. Who may do what, and the code, are the engine's rules
(``engine.killswitch``); the screen only asks the questions and shows the report."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from ..data import ago, describe_error
from ..dialogs.prompt import PromptDialog
from .base import EngineScreen

SCOPE_WORDS = {"global": "everything", "community": "community", "user": "member"}


class KillSwitchScreen(EngineScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("g", "activate('global')", "Freeze all"),
                Binding("c", "activate('community')", "Freeze a community"),
                Binding("u", "activate('user')", "Freeze a member"), Binding("l", "release", "Release"),
                Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("reading the kill switch…", id="title")
        yield DataTable(id="frozen", cursor_type="row", zebra_stripes=True)
        yield Static("g: freeze everything · c: a community · u: a member · l: release the selected row", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "kill switch"
        table = self.query_one(DataTable)
        for label, width in (("Frozen", 12), ("Which", 38), ("Why", 38), ("By", 16), ("Since", 12)):
            table.add_column(label, width=width)
        self.active: list[dict] = []
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="load")
    def _load(self) -> None:
        try:
            status = self.engine.killswitch.status()
        except Exception as exc:
            self.report_failure(exc, "Could not read the kill switch")
            return
        self.ui(self._show, status)

    def _show(self, status: dict) -> None:
        self.active = status["active"]
        now = self.now()
        table = self.query_one(DataTable)
        table.clear()
        for a in self.active:
            since = datetime.fromtimestamp(a["since"], timezone.utc)
            table.add_row(SCOPE_WORDS[a["scope"]], a["target"] or "-", a["reason"], a["by"], ago(since, now),
                          key=f"{a['scope']}:{a['target'] or '*'}")
        held = len(status["held_calls"])
        self.query_one("#title", Static).update(
            (f"[b $error]Kill switch ON[/] for {len(self.active)} scope(s); {held} Discord call(s) held right now"
             if self.active else "[b $success]Kill switch off[/]: Discord changes, wizards and signing run normally"))

    # --- activate and release ----------------------------------------------------------------------

    def action_activate(self, scope: str) -> None:
        if not self.app.operator:
            self._say_now("Say who you are first: start the console with --as NAME (or ARRAKIS_OPERATOR).")
            return
        if scope == "global":
            self._ask_reason(scope, None)
            return
        what = "community id" if scope == "community" else "member's Discord id"
        self.app.push_screen(PromptDialog(f"Freeze a {SCOPE_WORDS[scope]}", f"Which {what}?", ok="Next"),
                             lambda target: target and self._ask_reason(scope, target))

    def _ask_reason(self, scope: str, target: str | None) -> None:
        which = "everything" if scope == "global" else f"{SCOPE_WORDS[scope]} {target}"
        self.app.push_screen(
            PromptDialog(f"Freeze {which}?", "Every Discord change, wizard and signature for this scope stops until "
                         "released; held work waits and is not lost. Say why (everyone held sees it).",
                         placeholder="why", ok="Next"),
            lambda reason: reason and self._ask_code("activate", scope, target, reason))

    def _ask_code(self, verb: str, scope: str, target: str | None, reason: str | None) -> None:
        self.app.push_screen(
            PromptDialog(f"{verb.capitalize()}: your code", "The 6 digits from your authenticator app (or a backup "
                         "code).", placeholder="123456", ok=verb.capitalize(), secret=True),
            lambda code: code and self._send(verb, scope, target, reason, code))

    def action_release(self) -> None:
        if not self.app.operator:
            self._say_now("Say who you are first: start the console with --as NAME (or ARRAKIS_OPERATOR).")
            return
        table = self.query_one(DataTable)
        if not self.active or table.cursor_row is None or table.cursor_row >= len(self.active):
            self._say_now("Nothing is frozen: there is nothing to release.")
            return
        entry = self.active[table.cursor_row]
        self._ask_code("release", entry["scope"], entry["target"], None)

    @work(thread=True, exit_on_error=False, exclusive=True, group="switch")
    def _send(self, verb: str, scope: str, target: str | None, reason: str | None, code: str) -> None:
        switch = self.engine.killswitch
        kwargs = {"community_id": target} if scope == "community" else {"user_id": target} if scope == "user" else {}
        try:
            actor = self.engine.operators.get(self.app.operator).actor()
            if verb == "activate":
                report = switch.activate(actor, scope=scope, reason=reason, code=code, **kwargs)
            else:
                report = switch.release(actor, scope=scope, code=code, **kwargs)
        except Exception as exc:
            self.report_failure(exc, f"Kill switch {verb}")
            self._say(describe_error(exc, "Not done"))
            return
        parts = " · ".join(f"{p.part} {'ok' if p.ok else 'FAILED'} {p.ms:.0f} ms" for p in report.parts)
        self._say(f"{report.action.capitalize()} in {report.total_ms:.0f} ms: {escape(parts)}")
        self.tell(f"Kill switch {report.action} for {SCOPE_WORDS[scope]}" + (f" {target}" if target else ""),
                  severity="warning" if verb == "activate" else "information")
        self._load()
