"""Fleet overview: every community, filterable, with platform health."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from ..data import Fleet, load_fleet, matches


class FleetScreen(Screen):
    BINDINGS = [Binding("r", "refresh", "Refresh"), Binding("/", "focus_filter", "Filter")]

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine
        self.fleet: Fleet | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="toolbar"):
            yield Input(placeholder="Filter by name, guild, theme or plan", id="filter")
            yield Static("loading…", id="health")
        yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Community", "Guild", "Theme", "Plan", "Members", "Active")
        table.focus()  # keys go to the screen's bindings; "/" moves to the filter
        self.action_refresh()

    def action_refresh(self) -> None:
        self.query_one("#status", Static).update("loading communities…")
        self._load()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        """Runs off the UI thread: the console never blocks on the database."""
        try:
            fleet = load_fleet(self.engine)
        except Exception as exc:  # shown as a notification, never a traceback
            self.app.call_from_thread(self.app.notify, f"Could not load the fleet: {exc}", severity="error")
            return
        self.app.call_from_thread(self._show, fleet)

    def _show(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.query_one("#health", Static).update(
            "  ".join(f"{name}: {state}" for name, state in sorted(fleet.health.items())))
        self._render_rows()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._render_rows()

    def _render_rows(self) -> None:
        if self.fleet is None:
            return
        text = self.query_one("#filter", Input).value
        table = self.query_one(DataTable)
        table.clear()
        shown = [r for r in self.fleet.rows if matches(r, text)]
        for r in shown:
            table.add_row(r.name, r.guild_id, r.theme, r.subscription, str(r.members), "yes" if r.active else "no")
        self.query_one("#status", Static).update(f"{len(shown)} of {len(self.fleet.rows)} communities")
