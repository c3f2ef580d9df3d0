"""The operator console: ``arrakis console``. Built from the same engine as the CLI."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from textual import work
from textual.app import App
from textual.binding import Binding

from .commands import OperatorCommands
from .data import describe_error
from .dialogs.confirm import ConfirmDialog
from .screens.approvals import ApprovalScreen, ApprovalsScreen
from .screens.audit import AuditScreen
from .screens.community import CommunityScreen
from .screens.drift import DriftScreen
from .screens.fleet import FleetScreen
from .screens.killswitch import KillSwitchScreen
from .screens.migrations import MigrationsScreen
from .screens.signing import SigningScreen

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine


class ArrakisConsole(App):
    TITLE = "Arrakis"
    SUB_TITLE = "operator console"
    CSS_PATH = "console.tcss"
    COMMANDS = App.COMMANDS | {OperatorCommands}
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("t", "toggle_dark", "Light/dark")]

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time, health_every: float | None = 5.0,
                 files_dir: Path | None = None, operator: str | None = None,
                 approvals_every: float | None = 15.0) -> None:
        """``operator``: who answers approvals from this console (``--as``); ``approvals_every``:
        seconds between checks for new approval requests (None: never)."""
        super().__init__()
        self.engine = engine
        self.operator = operator
        self.approvals_every = approvals_every
        self._seen_requests: set[str] | None = None
        self.clock = clock
        self.health_every = health_every
        self.files_dir = files_dir
        self.fleet = None  # the last fleet loaded, for the command palette
        self._heap_settled = False

    def on_mount(self) -> None:
        # Engine calls run in worker threads. asyncio's own pool is joined when the console closes,
        # so `q` would wait out whatever call is in flight (a health probe of an RPC endpoint that
        # does not answer: up to its 5 s timeout) on a blank screen. These threads are not waited
        # for: the console closes at once, and an unfinished read is simply dropped.
        asyncio.get_running_loop().set_default_executor(UnwaitedThreads())
        self.push_screen(FleetScreen(self.engine, health_every=self.health_every))
        if self.approvals_every:
            self.set_interval(self.approvals_every, self.check_new_requests)
            self.check_new_requests()

    def settle_heap(self) -> None:
        """Once, after the first screen is up: move the objects that live as long as the app out of
        the cyclic collector's way (gc.freeze). Without it a full collection walks the whole app
        every second or so and a key press now and then waits ~80 ms for it."""
        if not self._heap_settled:
            self._heap_settled = True
            gc.freeze()

    def on_unmount(self) -> None:
        if self._heap_settled:  # hand everything back to the collector when the console closes
            gc.unfreeze()
            self._heap_settled = False

    # --- navigation (the screens and the command palette call these) -----------------------------

    def name_of(self, community_id: str) -> str:
        return next((c.name for c in self.fleet or [] if str(c.id) == str(community_id)), "")

    def open_community(self, community_id: str) -> None:
        self.push_screen(CommunityScreen(self.engine, str(community_id)))

    def open_drift(self, community_id: str) -> None:
        self.push_screen(DriftScreen(self.engine, str(community_id), self.name_of(community_id)))

    def open_approvals(self) -> None:
        self.push_screen(ApprovalsScreen(self.engine))

    def open_killswitch(self) -> None:
        self.push_screen(KillSwitchScreen(self.engine))

    def open_signing(self) -> None:
        self.push_screen(SigningScreen(self.engine))

    def open_audit(self, community_id: str | None = None) -> None:
        name = self.name_of(community_id) if community_id else ""
        self.push_screen(AuditScreen(self.engine, community_id, name))

    def open_approval(self, request_id: str) -> None:
        self.push_screen(ApprovalScreen(self.engine, str(request_id)))

    @work(thread=True, exit_on_error=False, exclusive=True, group="new-requests")
    def check_new_requests(self) -> None:
        """A bell and a notification for each approval request that arrived since the last look."""
        try:
            pending = {r.id: r for r in self.engine.approvals.list("pending")}
        except Exception:  # the health panel reports what is down; no alarm from here
            return
        seen, self._seen_requests = self._seen_requests, set(pending)
        if seen is None:
            return
        for rid in pending.keys() - seen:
            r = pending[rid]
            self.call_from_thread(self.bell)
            self.call_from_thread(self.notify, f"New approval request: {r.title} (risk {r.risk_score} "
                                               f"{r.risk_level}, asked by {r.requested_by}). Ctrl+P, Approvals.",
                                  severity="warning", timeout=10)

    def open_migrations(self, community_id: str) -> None:
        self.push_screen(MigrationsScreen(self.engine, str(community_id), self.name_of(community_id),
                                          start_dir=self.files_dir))

    # --- platform actions --------------------------------------------------------------------------

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_refresh_fleet(self) -> None:
        while not isinstance(self.screen, FleetScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        if isinstance(self.screen, FleetScreen):
            self.screen.action_refresh()

    @work(thread=True, exit_on_error=False, exclusive=True, group="outbox")
    def action_flush_outbox(self) -> None:
        try:
            out = self.engine.archive.flush()
        except Exception as exc:
            self.call_from_thread(self.notify, describe_error(exc, "Sending the outbox"), severity="error")
            return
        severity = "information" if not out["failed"] else "warning"
        self.call_from_thread(self.notify, f"Manifest outbox: {out['delivered']} sent, {out['failed']} failed, "
                                           f"{out['pending']} still waiting", severity=severity)

    def action_freeze(self) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self._set_freeze(True)
        self.push_screen(ConfirmDialog("Pause all Discord changes?",
                                       "Every worker stops before its next Discord call, for every community, "
                                       "until you resume. Nothing queued is lost.", yes="Yes, pause"), confirmed)

    def action_unfreeze(self) -> None:
        self._set_freeze(False)

    @work(thread=True, exit_on_error=False, exclusive=True, group="freeze")
    def _set_freeze(self, frozen: bool) -> None:
        try:
            if frozen:
                self.engine.discord_pause.pause(actor="console", reason="paused from the operator console")
            else:
                self.engine.discord_pause.resume(actor="console")
        except Exception as exc:
            self.call_from_thread(self.notify, describe_error(exc, "Changing the freeze flag"), severity="error")
            return
        self.call_from_thread(self.notify, "Discord changes paused for every community" if frozen
                              else "Discord changes resumed", severity="warning" if frozen else "information")


class UnwaitedThreads(ThreadPoolExecutor):
    """Runs each call on a daemon thread of its own, and never waits for them on shutdown."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to whoever awaits the future
                future.set_exception(exc)

        threading.Thread(target=run, name="console-engine-call", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        return None


def make_console(engine, *, files_dir: Path | None = None, **kwargs) -> ArrakisConsole:
    """What ``arrakis console`` runs (tests build the app here too). On the embedded default the
    schema is brought up to date first, as ``arrakis demo`` does; on real servers migrations stay
    a release step (``arrakis db upgrade``)."""
    if engine.embedded:
        engine.migrator.upgrade()
    return ArrakisConsole(engine, files_dir=files_dir, **kwargs)
