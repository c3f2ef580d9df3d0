"""The audit trail: the hash-chained log of the platform or one community, newest last, filterable
by actor, action and day; the chain's verification (and where it breaks) above it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, Static

from ..data import ago
from .base import LoadedScreen, add_columns

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine


class AuditScreen(LoadedScreen):
    FAILED_TO_LOAD = "Could not read the audit trail"

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("r", "refresh", "Refresh"),
                Binding("/", "focus_filter", "Filter")]

    def __init__(self, engine: Engine, community_id: str | None = None, name: str = "") -> None:
        super().__init__(engine)
        self.community_id = community_id
        self.chain_name = name or ("the platform" if community_id is None else community_id)
        self.entries: list = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("verifying the chain…", id="title")
        yield Input(placeholder="Filter by actor, action or day (2026-11-25)", id="audit-filter")
        yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)
        yield Static("", id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"audit · {self.chain_name}"
        add_columns(self.query_one(DataTable), (("Row", 6), ("When", 12), ("Actor", 24), ("Action", 24),
                                                ("Details", 50)))
        self.query_one(DataTable).focus()
        self.load()

    def action_focus_filter(self) -> None:
        self.query_one(Input).focus()

    def fetch(self) -> tuple:
        check = self.engine.audit_check
        return check.verify(self.community_id), check.entries(self.community_id, limit=1000)

    def show(self, report, entries) -> None:
        self.entries = entries
        broken = [p for p in report.problems if "are unanchored" not in p]
        if report.ok:
            head = f"[b $success]Chain intact[/]: {report.rows} entries of {escape(self.chain_name)}"
            if report.checkpoints:
                head += f", {report.checkpoints} signed checkpoint(s) check out"
        elif not broken:
            head = (f"[b $warning]Chain intact, not all anchored[/] ({report.rows} entries of "
                    f"{escape(self.chain_name)}): " + escape("; ".join(report.problems[:3])))
        else:
            head = (f"[b $error]Chain BROKEN[/] ({report.rows} entries of {escape(self.chain_name)}): "
                    + escape("; ".join(broken[:3]))
                    + (f"; and {len(broken) - 3} more" if len(broken) > 3 else ""))
        self.query_one("#title", Static).update(head)
        self._fill()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def _fill(self) -> None:
        words = self.query_one(Input).value.strip().lower().split()
        table = self.query_one(DataTable)
        table.clear()
        shown, now = 0, self.now()
        for e in self.entries:
            day = e.created_at.strftime("%Y-%m-%d %H:%M")
            details = json.dumps(e.payload, sort_keys=True, default=str)
            haystack = f"{e.actor} {e.action} {day}".lower()
            if all(w in haystack for w in words):
                table.add_row(str(e.seq), ago(e.created_at, now), e.actor, e.action, details[:200], key=str(e.seq))
                shown += 1
        self._say_now(f"{shown} of {len(self.entries)} entries shown (the newest 1,000)")
