"""The operator console: ``arrakis console``. Built from the same engine as the CLI."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding

from .screens.fleet import FleetScreen


class ArrakisConsole(App):
    TITLE = "Arrakis"
    SUB_TITLE = "operator console"
    CSS_PATH = "console.tcss"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("t", "toggle_dark", "Light/dark")]

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine

    def on_mount(self) -> None:
        self.push_screen(FleetScreen(self.engine))

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"
