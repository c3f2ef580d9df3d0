"""Fleet overview: every community with its last sync, last synthesis and drift; platform health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Static

from arrakis_engine.use_cases.operations import FleetEntry, Health

from ..data import DRIFT_COLOURS, DRIFT_STYLE, PLANS, ago, load_fleet, load_health, search_text
from ..widgets.health import HealthPanel
from .base import EngineScreen

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

COLUMNS = ("Community", "Guild", "Theme", "Plan", "Members", "Last sync", "Last synthesis", "Drift")


class FleetScreen(EngineScreen):
    BINDINGS = [Binding("o", "open", "Open"), Binding("r", "refresh", "Refresh"),
                Binding("p", "approvals", "Approvals"), Binding("k", "killswitch", "Kill switch"),
                Binding("/", "focus_filter", "Filter"), Binding("s", "cycle_sort", "Sort")]
    SORTS = (("name", lambda r: r.name.lower(), False), ("members", lambda r: r.members, True),
             ("plan", lambda r: PLANS.index(r.subscription), True), ("theme", lambda r: r.theme, False),
             ("drift", lambda r: (r.drift not in DRIFT_STYLE, list(DRIFT_STYLE).index(r.drift)
                                  if r.drift in DRIFT_STYLE else 0, r.drift), False),
             ("last sync", lambda r: r.last_sync.timestamp() if r.last_sync else 0.0, False),
             ("last synthesis", lambda r: r.last_synthesis.timestamp() if r.last_synthesis else 0.0, False))

    PAGE = 60  # rows put into the table at a time (more than a tall terminal shows)

    def __init__(self, engine: Engine, *, health_every: float | None = 5.0) -> None:
        super().__init__(engine)
        self.rows: list[FleetEntry] | None = None
        self.sort_index = 0
        self.health_every = health_every
        self.shown: list[FleetEntry] = []
        self.partial = False  # only the first page is loaded yet (the rest follows)
        self._orders: dict[int, list[tuple[str, FleetEntry]]] = {}  # sort -> (search text, row), sorted

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="toolbar"):
            yield Input(placeholder="Filter by name, guild, theme, plan or drift", id="filter")
        yield DataTable(id="fleet", cursor_type="row", zebra_stripes=True)
        yield Static("loading communities…", id="status")
        yield HealthPanel(id="health")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        table.focus()  # keys go to the screen's bindings; "/" moves to the filter
        self.watch(table, "scroll_y", self._scrolled, init=False)
        self.action_refresh()
        if self.health_every:
            self.set_interval(self.health_every, self._load_health)

    # --- actions -------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.query_one("#status", Static).update("loading communities…")
        self._load_fleet()
        self._load_health()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(self.SORTS)
        self._render_rows()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_approvals(self) -> None:
        self.app.open_approvals()

    def action_killswitch(self) -> None:
        self.app.open_killswitch()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if self.rows is None or not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.app.open_community(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_community(event.row_key.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        names = {"Community": "name", "Members": "members", "Plan": "plan", "Theme": "theme", "Drift": "drift",
                 "Last sync": "last sync", "Last synthesis": "last synthesis"}
        wanted = names.get(str(event.label))
        for i, (name, _, _) in enumerate(self.SORTS):
            if name == wanted:
                self.sort_index = i
                self._render_rows()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._render_rows()

    def on_screen_resume(self) -> None:
        if self.rows is not None:  # back from a community: its drift or members may have changed
            self._load_fleet()

    # --- loading (worker threads: the UI never waits on the database) ----------------------------

    @work(thread=True, exit_on_error=False, exclusive=True, group="fleet")
    def _load_fleet(self) -> None:
        """The first page first (painted at once, whatever the size of the fleet), then every
        community (for scrolling, sorting and filtering)."""
        try:
            if self.rows is None:
                self.ui(self._show_rows, load_fleet(self.engine, self.PAGE), True)
            rows = load_fleet(self.engine)
        except Exception as exc:
            self.report_failure(exc, "Could not load the fleet")
            self.ui(lambda: self.query_one("#status", Static).update("the fleet could not be loaded"))
            return
        self.ui(self._show_rows, rows)

    @work(thread=True, exit_on_error=False, exclusive=True, group="health")
    def _load_health(self) -> None:
        try:
            health = load_health(self.engine)
        except Exception as exc:
            self.report_failure(exc, "Could not check the platform")
            return
        self.ui(self._show_health, health)

    def _show_rows(self, rows: list[FleetEntry], partial: bool = False) -> None:
        if partial and self.rows is not None and not self.partial:
            return  # the whole fleet is here already
        self.rows = rows
        self.partial = partial
        self._orders = {}
        if not partial:
            self.app.fleet = rows  # the command palette offers these communities
        self._render_rows()
        if not partial:
            self.app.settle_heap()

    def _show_health(self, health: Health) -> None:
        self.query_one(HealthPanel).show(health)

    def _order(self) -> list[tuple[str, FleetEntry]]:
        """The rows in the current sort, each with its search text (both made once per load and
        sort, not per key press)."""
        if self.sort_index not in self._orders:
            name, key, descending = self.SORTS[self.sort_index]
            self._orders[self.sort_index] = [(search_text(r), r) for r in
                                             sorted(self.rows, key=key, reverse=descending)]
        return self._orders[self.sort_index]

    def _render_rows(self) -> None:
        """Filter the rows kept in sort order (a substring test on one string per row: a few
        milliseconds for 10,000), then put only the first page into the table; more pages follow
        as the cursor nears the end. DataTable measures every row it is given, so this keeps a key
        press in the filter under 100 ms at any fleet size."""
        if self.rows is None:
            return
        text = self.query_one("#filter", Input).value.strip().lower()
        order = self._order()
        self.shown = [r for _, r in order] if not text else [r for hay, r in order if text in hay]
        table = self.query_one(DataTable)
        table.clear()
        self._add_page()
        self._update_status()

    def _add_page(self) -> None:
        table = self.query_one(DataTable)
        start = table.row_count
        now = self.now()
        for r in self.shown[start:start + self.PAGE]:
            drift = Text(r.drift, style=DRIFT_COLOURS.get(r.drift, ""))
            if r.drift_checked_at and r.drift in DRIFT_COLOURS:  # how fresh that verdict is
                drift.append(f" · {ago(r.drift_checked_at, now)}", style="dim")
            label = Text(r.name) if r.active else Text(f"{r.name} (inactive)", style="dim")
            if r.frozen:  # the kill switch holds it
                label = Text.assemble(("❄ ", "bold cyan"), label)
            if r.approvals:
                label.append(f" · {r.approvals} to approve", style="bold yellow")
            table.add_row(label, r.guild_id, r.theme, r.subscription, str(r.members), ago(r.last_sync, now),
                          ago(r.last_synthesis, now), drift, key=str(r.id))

    def _update_status(self) -> None:
        if not self.rows:
            self.query_one("#status", Static).update(
                "0 of 0 communities: none yet (create one with `arrakis community create`, "
                "or through the onboarding wizard)")
            return
        name = self.SORTS[self.sort_index][0]
        loaded = self.query_one(DataTable).row_count
        more = f"; first {loaded} listed, more as you scroll" if loaded < len(self.shown) else ""
        if self.partial:
            self.query_one("#status", Static).update(f"first {loaded} communities by name; loading the rest…")
            return
        self.query_one("#status", Static).update(
            f"{len(self.shown)} of {len(self.rows)} communities, by {name}{more} (s to change, Enter to open)")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if table.row_count < len(self.shown) and event.cursor_row >= table.row_count - min(20, self.PAGE // 2):
            self._add_page()
            self._update_status()

    def _scrolled(self, scroll_y: float) -> None:
        """Scrolling with the mouse wheel or the scroll bar to the end loads the next page too."""
        table = self.query_one(DataTable)
        if table.row_count < len(self.shown) and table.max_scroll_y > 0 and scroll_y >= table.max_scroll_y - 5:
            self._add_page()
            self._update_status()
