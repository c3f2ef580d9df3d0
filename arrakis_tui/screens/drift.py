"""Drift of one community: desired (manifest) vs shadow (what Arrakis applied) vs actual (the
guild), grouped by severity; a dry-run reconcile, and a real one after a confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static
from textual.worker import get_current_worker

from arrakis_engine.errors import OperationCancelled

from ..data import DRIFT_COLOURS, describe_error
from ..dialogs.confirm import ConfirmDialog
from .base import EngineScreen

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

SEVERITIES = ("high", "medium", "low", "info")
SEVERITY_WORDS = {"high": ("HIGH", "managed by Arrakis and gone from the guild"),
                  "medium": ("MEDIUM", "changed outside Arrakis, or not synthesized yet"),
                  "low": ("LOW", "recorded, but no longer in the manifest"),
                  "info": ("INFO", "made by hand in the guild: never touched")}


class DriftScreen(EngineScreen):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("r", "check", "Check again"),
                Binding("n", "dry_run", "Dry-run reconcile"), Binding("a", "apply", "Reconcile…"),
                Binding("c", "cancel", "Cancel")]

    def __init__(self, engine: Engine, community_id: str, name: str = "") -> None:
        super().__init__(engine)
        self.community_id = community_id
        self.community_name = name
        self.report = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("checking the guild against the plan…", id="drift-summary")
        yield DataTable(id="drift", cursor_type="row")
        yield ProgressBar(id="reconcile-progress", show_eta=True)
        yield Static("n: dry-run reconcile (changes nothing) · a: reconcile for real (asks first)", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"drift · {self.community_name}" if self.community_name else "drift"
        # Fixed widths: auto widths follow whatever a table once held (clear() keeps them), so the
        # last column was cut or not depending on which check drew first.
        table = self.query_one(DataTable)
        for label, width in COLUMNS:
            table.add_column(label, width=width)
        self.query_one(ProgressBar).display = False
        self.action_check()

    # --- actions -------------------------------------------------------------------------------

    def action_back(self) -> None:
        # Leaving cancels what runs here (between two Discord calls), like c does.
        self.workers.cancel_group(self, "reconcile")
        self.app.pop_screen()

    def action_check(self) -> None:
        self._check()

    def action_dry_run(self) -> None:
        if not self.busy:
            self._reconcile(dry_run=True)

    def action_apply(self) -> None:
        if not self.busy:
            self._plan_then_confirm()

    def action_cancel(self) -> None:
        if self.busy:
            self.workers.cancel_group(self, "reconcile")
            self._say_now("cancelling after the Discord call in flight…")

    # --- workers ---------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, exclusive=True, group="check")
    def _check(self) -> None:
        try:
            report = self.engine.operations.drift(self.community_id)
        except Exception as exc:
            self.report_failure(exc, "Could not check drift")
            self.ui(lambda: self.query_one("#drift-summary", Static).update(
                "drift could not be checked (see the notification)"))
            return
        self.ui(self._show, report)

    @work(thread=True, exit_on_error=False, exclusive=True, group="reconcile")
    def _plan_then_confirm(self) -> None:
        self._set_busy(True)
        try:
            plan = self.engine.reconciler.run(self.community_id, dry_run=True)
        except Exception as exc:
            self._failed(exc, "Could not plan the reconcile")
            return
        self._set_busy(False)
        self._say("Waiting for your answer…" if plan.actions else "")
        if not plan.actions:
            self._say("Nothing to reconcile: " + plan.summary())
            return
        body = ("This calls Discord now:\n" + "\n".join(_plan_lines(plan))
                + "\n\nResources made by hand are never touched; orphans are kept.")
        self.ui(self.app.push_screen, ConfirmDialog("Reconcile this guild?", body,
                                                                      yes="Yes, reconcile"), self._confirmed)

    def _confirmed(self, yes: bool | None) -> None:
        if yes:
            self._reconcile(dry_run=False)
        else:
            self._say_now("Reconcile not run: nothing was changed.")

    @work(thread=True, exit_on_error=False, exclusive=True, group="reconcile")
    def _reconcile(self, dry_run: bool) -> None:
        worker = get_current_worker()
        self._set_busy(True, show_bar=not dry_run)

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise OperationCancelled(f"reconcile cancelled after {done} of {total} steps",
                                         hint="what ran is recorded; check drift again to see what is left")
            self.ui(lambda: self.query_one(ProgressBar).update(total=total, progress=done))

        try:
            report = self.engine.reconciler.run(self.community_id, dry_run=dry_run, progress=progress)
        except OperationCancelled as exc:
            self._set_busy(False)
            self._say(str(exc))
            self.ui(self._check)
            return
        except Exception as exc:
            self._failed(exc, "Dry-run reconcile failed" if dry_run else "Reconcile failed")
            return
        self._set_busy(False)
        lines = [report.summary()] + _plan_lines(report)
        self._say("\n".join(lines))
        if not dry_run:
            self.tell("Reconcile done: " + report.summary())
            self.ui(self._check)

    # --- showing -------------------------------------------------------------------------------

    def _failed(self, exc: BaseException, doing: str) -> None:
        """From a worker: the failure as a notification and on the result line (which said
        "working…" until now), and the screen ready for the next key."""
        self.report_failure(exc, doing)
        self._set_busy(False)
        self._say(describe_error(exc, doing) + " · n: dry run again · a: reconcile")

    def _set_busy(self, busy: bool, *, show_bar: bool = False) -> None:
        def apply() -> None:
            self.busy = busy
            bar = self.query_one(ProgressBar)
            bar.display = busy and show_bar
            if busy and show_bar:
                bar.update(total=None, progress=0)
            if busy:
                self.query_one("#result", Static).update("working… (c to cancel)")
        self.ui(apply)

    def _show(self, report) -> None:
        self.report = report
        counts = {s: sum(1 for i in report.items if i.severity == s) for s in SEVERITIES}
        status = Text(report.status, style=DRIFT_COLOURS.get(report.status, ""))
        self.query_one("#drift-summary", Static).update(Text.assemble(
            f"manifest v{report.manifest_version} · applied v{report.shadow_version} · status ", status,
            "  (" + ", ".join(f"{counts[s]} {s}" for s in SEVERITIES) + ")",
            Text("  · guild read from the local Discord sandbox", style="bold") if report.sandbox else ""))
        table = self.query_one(DataTable)
        table.clear()
        for sev in SEVERITIES:
            items = [i for i in report.items if i.severity == sev]
            if not items:
                continue
            head, words = SEVERITY_WORDS[sev]
            table.add_row(Text(f"{head} ({len(items)})", style="bold " + _colour(sev)), "", "", "",
                          Text(words, style="bold " + _colour(sev)), key=f"group:{sev}")
            for i in items:
                table.add_row(Text(sev, style=_colour(sev)), i.kind, i.manifest_id or "-", i.discord_id or "-",
                              i.problem)
        if not report.items:
            table.add_row(Text("in sync", style="green"), "", "", "", "the guild matches the plan")


COLUMNS = (("Severity", 10), ("Kind", 8), ("Desired (manifest)", 23), ("Applied (Discord id)", 20),
           ("In the guild", 47))


def _colour(severity: str) -> str:
    return DRIFT_COLOURS.get(severity, "dim")


def _plan_lines(report) -> list[str]:
    lines = [f"  {a.op} {a.kind} {a.manifest_id}" + (f" ({', '.join(sorted(a.changes))})" if a.op == "update"
                                                      else "") for a in report.actions[:12]]
    if len(report.actions) > 12:
        lines.append(f"  … and {len(report.actions) - 12} more")
    return lines
