"""Signing keys: the platform's and each community's, with their versions, last rotation, whether
the signer (Vault Transit or the local key file) answers, and any kill-switch cut-off; rotate the
selected key (a platform admin, with a code). The rule and the code check are the engine's
(``engine.key_rotation``)."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from arrakis_engine.signing.signing_service import PLATFORM_KEY, community_key

from ..data import ago, describe_error, fit
from ..dialogs.prompt import PromptDialog
from .base import LoadedScreen, add_columns


COLUMNS = (("Key", 46), ("Community", 14), ("Versions", 9), ("Signs with", 10), ("Last rotated", 12), ("State", 14))


def key_row(s: dict, communities: dict, rotated: dict, now: float) -> tuple:
    """One key's cells: the community's name cut to its column in terminal cells (a long name in
    wide characters ends with an ellipsis instead of being cut mid-way without a sign)."""
    state = (Text(f"cut off: {s['cut_off']}", style="bold red") if s.get("cut_off")
             else Text("signs", style="green") if s["reachable"] else Text("not reachable", style="bold red"))
    versions = ", ".join(f"v{v}" for v in s["versions"]) or "none yet"
    return (s["key"], fit(communities.get(s["key"], "the platform"), COLUMNS[1][1]), versions,
            f"v{s['latest_version']}" if s["latest_version"] else "-", ago(rotated.get(s["key"]), now), state)


class SigningScreen(LoadedScreen):
    FAILED_TO_LOAD = "Could not read the signing keys"

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("o", "rotate", "Rotate the selected key"),
                Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("asking the signer…", id="title")
        yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
        yield Static("o: rotate the selected key (platform admin, with a code); old signatures keep verifying",
                     id="result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "signing keys"
        # The whole key name (what `arrakis signing` shows); the signer is named in the title line.
        add_columns(self.query_one(DataTable), COLUMNS)
        self.keys: list[str] = []
        self.load()

    def fetch(self) -> tuple:
        communities = {community_key(c.community.id): c.community.name for c in self.engine.communities.list()}
        names = [PLATFORM_KEY] + sorted(communities, key=lambda k: communities[k].lower())
        return self.engine.signing.status(names), communities, self.engine.key_rotation.last_rotations()

    def show(self, status: list[dict], communities: dict, rotated: dict) -> None:
        now = self.now()
        table = self.query_one(DataTable)
        table.clear()
        self.keys = [s["key"] for s in status]
        for s in status:
            table.add_row(*key_row(s, communities, rotated, now), key=s["key"])
        backends = {s["backend"] for s in status}
        down = [s["key"] for s in status if not s["reachable"]]
        self.query_one("#title", Static).update(
            f"[b]{len(status)} signing key(s)[/] on {', '.join(sorted(backends))}"
            + (f" · [$error]{len(down)} not reachable[/]" if down else ""))

    def action_rotate(self) -> None:
        if not self.app.operator:
            self._say_now("Say who you are first: start the console with --as NAME (or ARRAKIS_OPERATOR).")
            return
        table = self.query_one(DataTable)
        if not self.keys or table.cursor_row is None or table.cursor_row >= len(self.keys):
            return
        key = self.keys[table.cursor_row]
        self.app.push_screen(
            PromptDialog(f"Rotate {key}?", "New signatures use a new key version; everything signed before "
                         "still verifies. Your code from the authenticator app (or a backup code):",
                         placeholder="123456", ok="Rotate", secret=True),
            lambda code: code and self._rotate(key, code))

    @work(thread=True, exit_on_error=False, exclusive=True, group="rotate")
    def _rotate(self, key: str, code: str) -> None:
        try:
            actor = self.engine.operators.get(self.app.operator).actor()
            version = self.engine.key_rotation.rotate(actor, key, code=code)
        except Exception as exc:
            self.report_failure(exc, "Rotate")
            self._say(describe_error(exc, "Not done"))
            return
        self._say(f"{key} now signs with version {version}; older versions still verify.")
        self.tell(f"Rotated {key}: version {version}")
        self.load()
