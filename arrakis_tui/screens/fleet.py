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
    BINDINGS = [Binding("r", "refresh", "Refresh"), Binding("/", "focus_filter", "Filter"),
                Binding("s", "cycle_sort", "Sort")]
    SORTS = (("name", lambda r: r.name.lower(), False), ("members", lambda r: r.members, True),
             ("plan", lambda r: ("free", "premium", "enterprise").index(r.subscription), True),
             ("theme", lambda r: r.theme, False))

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine
        self.fleet: Fleet | None = None
        self.sort_index = 0

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

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(self.SORTS)
        self._render_rows()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        names = {"Community": "name", "Members": "members", "Plan": "plan", "Theme": "theme"}
        wanted = names.get(str(event.label))
        for i, (name, _, _) in enumerate(self.SORTS):
            if name == wanted:
                self.sort_index = i
                self._render_rows()

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
        name, key, descending = self.SORTS[self.sort_index]
        shown = sorted((r for r in self.fleet.rows if matches(r, text)), key=key, reverse=descending)
        for r in shown:
            table.add_row(r.name, r.guild_id, r.theme, r.subscription, str(r.members), "yes" if r.active else "no")
        self.query_one("#status", Static).update(
            f"{len(shown)} of {len(self.fleet.rows)} communities, by {name} (s to change)")
