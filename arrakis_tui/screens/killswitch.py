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
from .base import LoadedScreen, add_columns

SCOPE_WORDS = {"global": "everything", "community": "community", "user": "member"}


class KillSwitchScreen(LoadedScreen):
    FAILED_TO_LOAD = "Could not read the kill switch"

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("g", "activate('global')", "Freeze all"),
                Binding("c", "activate('community')", "Freeze a community"),
                Binding("u", "activate('user')", "Freeze a member"), Binding("l", "release", "Release"),
                Binding("d", "drill", "Drill"), Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("reading the kill switch…", id="title")
        yield DataTable(id="frozen", cursor_type="row", zebra_stripes=True)
        yield Static("", id="drill")
        yield Static("g: freeze everything · c: a community · u: a member · l: release the selected row · "
                     "d: drill", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "kill switch"
        add_columns(self.query_one(DataTable), (("Frozen", 11), ("Which", 36), ("Why", 32), ("By", 16),
                                                ("Since", 12)))
        self.active: list[dict] = []
        self.drilling = False
        self._drill_lines: list[str] = []
        self.load()

    def fetch(self) -> tuple:
        return self.engine.killswitch.status(), self.engine.drill.past()

    def show(self, status: dict, drills: list[dict] | None = None) -> None:
        self._show(status)
        if drills is not None and not self.drilling:
            self._show_past(drills)

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
        self.load()

    # --- the drill ---------------------------------------------------------------------------------

    def _show_past(self, drills: list[dict]) -> None:
        now = self.now()
        lines = ["[b]Past drills[/]" if drills else "No drill yet: d runs one on a community (local sandbox only)."]
        for d in drills[:5]:
            when = ago(datetime.fromtimestamp(d["started_at"], timezone.utc), now)
            steps = ", ".join(f"{x['step']} {'ok' if x['ok'] else 'FAILED'}" for x in d["steps"])
            lines.append(f"  {when:<12} {'[green]passed[/]' if d['passed'] else '[red]FAILED[/]'}  by {escape(d['by'])}"
                         f" on {d['community_id']}: {steps}")
        self.query_one("#drill", Static).update("\n".join(lines))

    def action_drill(self) -> None:
        if not self.app.operator:
            self._say_now("Say who you are first: start the console with --as NAME (or ARRAKIS_OPERATOR).")
            return
        if self.drilling:
            return
        self.app.push_screen(
            PromptDialog("Kill-switch drill", "Which community id? The drill reads its guild through the Discord "
                         "gate, freezes it, checks nothing gets through, releases it and checks the reads resume. "
                         "Local sandbox (or a test server) only.", ok="Next"),
            lambda target: target and self.app.push_screen(
                PromptDialog("Drill: your code", "To activate (a second code is asked for the release).",
                             placeholder="123456", ok="Start", secret=True),
                lambda code: code and self._drill(target, code)))

    # The drill's live log: begun, one line per step as it happens, then the verdict. On the UI
    # thread (the drill's worker calls them through ``self.ui``).

    def drill_begin(self, community_id: str) -> None:
        self._drill_lines = [f"[b]Drill running[/] on {escape(community_id)}"]
        self.query_one("#drill", Static).update("\n".join(self._drill_lines))

    def drill_step(self, step) -> None:
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        self._drill_lines.append(f"  {step.step:<9} {mark} {step.ms:>7.0f} ms  {escape(step.detail)}")
        self.query_one("#drill", Static).update("\n".join(self._drill_lines))

    def drill_end(self, report) -> None:
        verdict = "passed" if report.passed else "FAILED"
        self._drill_lines[0] = (f"[b]Drill {verdict}[/] on {escape(report.community_id)} "
                                "(kept with the past drills: r shows them)")
        self.query_one("#drill", Static).update("\n".join(self._drill_lines))
        self._say_now(f"Drill {verdict}: " + ", ".join(f"{x.step} {x.ms:.0f} ms" for x in report.steps))

    @work(thread=True, exit_on_error=False, exclusive=True, group="drill")
    def _drill(self, community_id: str, code: str) -> None:
        import threading

        self.drilling = True

        def show(step) -> None:
            self.ui(self.drill_step, step)
            self._load_table_only()

        def release_code() -> str | None:
            answer: list[str | None] = []
            ready = threading.Event()

            def got(value) -> None:
                answer.append(value)
                ready.set()

            self.ui(self.app.push_screen, PromptDialog(
                "Drill: release", "Nothing got through while frozen. Your code to release (a new one: a code "
                "counts once):", placeholder="123456", ok="Release", secret=True), got)
            ready.wait(300)
            return answer[0] if answer else None

        try:
            actor = self.engine.operators.get(self.app.operator).actor()
            self.ui(self.drill_begin, community_id)
            report = self.engine.drill.run(actor, community_id, code=code, release_code=release_code, progress=show)
        except Exception as exc:
            self.report_failure(exc, "Drill")
            self._say(describe_error(exc, "Drill not run"))
            self.drilling = False
            return
        self.drilling = False
        self.ui(self.drill_end, report)
        verdict = "passed" if report.passed else "FAILED"
        self.tell(f"Kill-switch drill {verdict}", severity="information" if report.passed else "error")
        self._load_table_only()

    def _load_table_only(self) -> None:
        try:
            status = self.engine.killswitch.status()
        except Exception:
            return
        self.ui(self._show, status)
