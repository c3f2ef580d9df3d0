"""Legacy SQLite migration for one community: pick a file, dry-run, import with progress (can be
cancelled: nothing is written then), validate counts and checksums side by side, roll back.
The same use cases as ``arrakis migrate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, DirectoryTree, Footer, Header, Input, Label, ProgressBar, Static
from textual.worker import get_current_worker

from arrakis_engine.errors import LegacyImportError, OperationCancelled

from ..dialogs.confirm import ConfirmDialog
from .base import EngineScreen

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

SQLITE_SUFFIXES = {".db", ".sqlite", ".sqlite3"}


class SQLiteTree(DirectoryTree):
    """Folders and SQLite files only."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix in SQLITE_SUFFIXES)]


class MigrationsScreen(EngineScreen):
    RESULT = "#migration-result"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("f2", "dry_run", "Dry run"),
                Binding("f3", "import_file", "Import…"), Binding("f4", "validate", "Validate"),
                Binding("f8", "rollback", "Roll back…"), Binding("f9", "cancel", "Cancel")]

    def __init__(self, engine: Engine, community_id: str, name: str = "", *, start_dir: Path | None = None) -> None:
        super().__init__(engine)
        self.community_id = community_id
        self.community_name = name
        self.start_dir = Path(start_dir or Path.cwd())
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="migration-body"):
            with Vertical(id="migration-pick"):
                yield Label("Legacy SQLite file", classes="section")
                yield Input(placeholder="profiles.db (in the folder below) or a full path", id="path")
                yield SQLiteTree(self.start_dir, id="files")
            with Vertical(id="migration-work"):
                with Horizontal(id="migration-buttons"):
                    yield Button("Dry run", id="dry-run")
                    yield Button("Import…", id="import", variant="primary")
                    yield Button("Validate", id="validate")
                    yield Button("Roll back…", id="rollback", variant="error")
                    yield Button("Cancel", id="cancel", disabled=True)
                yield Label("", id="phase")
                yield ProgressBar(id="progress", show_eta=True)
                yield Label("Validation: the file against what the last import wrote", classes="section")
                yield DataTable(id="checks", cursor_type="none", zebra_stripes=True)
                yield Static("Pick a file, then run a dry run to check every row.", id="migration-result")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"legacy import · {self.community_name}" if self.community_name else "legacy import"
        self.query_one("#checks", DataTable).add_columns("Table", "In file", "Imported", "File checksum",
                                                         "Imported checksum", "Match")
        self.query_one(ProgressBar).display = False  # shown once there is work to follow
        self.query_one("#path", Input).focus()

    # --- picking ---------------------------------------------------------------------------------

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        path = Path(event.path)
        try:  # short names for files under the folder shown; relative paths are read from there
            shown = str(path.relative_to(self.start_dir))
        except ValueError:
            shown = str(path)
        self.query_one("#path", Input).value = shown

    def _path(self) -> Path | None:
        raw = self.query_one("#path", Input).value.strip()
        if not raw:
            self.app.notify("Pick a legacy SQLite file first.", severity="warning")
            return None
        path = self.start_dir / Path(raw).expanduser()  # an absolute path stays as it is
        if not path.is_file():
            self.app.notify(f"{path.name} is not a file that can be read.", severity="error")
            return None
        return path

    # --- actions ---------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"dry-run": self.action_dry_run, "import": self.action_import_file, "validate": self.action_validate,
         "rollback": self.action_rollback, "cancel": self.action_cancel}[event.button.id]()

    def action_back(self) -> None:
        self.workers.cancel_group(self, "migration")  # leaving cancels a running import (nothing is written)
        self.app.pop_screen()

    def action_cancel(self) -> None:
        if self.busy:
            self.workers.cancel_group(self, "migration")
            self._say_now("cancelling: the import stops at the next batch and writes nothing…")

    def action_dry_run(self) -> None:
        if not self.busy and (path := self._path()):
            self._dry_run(path, then_import=False)

    def action_import_file(self) -> None:
        if not self.busy and (path := self._path()):
            self._dry_run(path, then_import=True)  # check the whole file and ask before writing

    def action_validate(self) -> None:
        if not self.busy and (path := self._path()):
            self._validate(path)

    def action_rollback(self) -> None:
        if not self.busy:
            self.app.push_screen(ConfirmDialog(
                "Roll back the last import?",
                "This removes exactly the members, wallets and badges the last legacy import wrote into "
                "this community. It is refused if badges given since then name imported members.",
                yes="Yes, roll back"), self._rollback_confirmed)

    def _rollback_confirmed(self, yes: bool | None) -> None:
        if yes:
            self._rollback()
        else:
            self._say_now("Roll back not run: nothing was changed.")

    # --- workers ---------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, exclusive=True, group="migration")
    def _dry_run(self, path: Path, then_import: bool) -> None:
        self._set_busy(True, f"checking {path.name}…")
        try:
            result = self.engine.legacy_importer().import_file(path, self.community_id, dry_run=True)
        except Exception as exc:
            self._failed(exc, "Dry run")
            return
        self._set_busy(False, "")
        counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
        if not then_import:
            self._say(f"Dry run: {path.name} is clean and would import {counts}. Nothing was written.")
            return
        self.ui(self.app.push_screen, ConfirmDialog(
            f"Import {path.name}?", f"Every row checks out. This writes {counts} into this community, "
            "in one transaction: all of it or nothing.", yes="Yes, import"),
            lambda yes: self._import(path) if yes else self._say_now("Import not run: nothing was written."))

    @work(thread=True, exit_on_error=False, exclusive=True, group="migration")
    def _import(self, path: Path) -> None:
        worker = get_current_worker()
        self._set_busy(True, f"importing {path.name}…", show_bar=True)

        def progress(phase: str, done: int, total: int) -> None:
            if worker.is_cancelled:
                raise OperationCancelled("import cancelled: nothing was written")
            self.ui(self._progress, phase, done, total)

        try:
            result = self.engine.legacy_importer(progress=progress).import_file(path, self.community_id,
                                                                                 actor="console")
        except OperationCancelled as exc:
            self._set_busy(False, "cancelled")
            self._say(str(exc))
            self.tell(str(exc), severity="warning")
            return
        except Exception as exc:
            self._failed(exc, "Import")
            return
        self._set_busy(False, "done")
        counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
        self._say(f"Imported {counts}. Validate to compare counts and checksums with the file.")
        self.tell(f"Imported {path.name}: {counts}")

    @work(thread=True, exit_on_error=False, exclusive=True, group="migration")
    def _validate(self, path: Path) -> None:
        self._set_busy(True, f"validating {path.name}…")
        try:
            report = self.engine.legacy_importer().validate(path, self.community_id)
        except Exception as exc:
            self._failed(exc, "Validate")
            return
        self._set_busy(False, "")
        self.ui(self._show_checks, report)

    @work(thread=True, exit_on_error=False, exclusive=True, group="migration")
    def _rollback(self) -> None:
        self._set_busy(True, "rolling back…")
        try:
            removed = self.engine.legacy_importer().rollback(self.community_id, actor="console")
        except Exception as exc:
            self._failed(exc, "Roll back")
            return
        self._set_busy(False, "")
        self.ui(lambda: self.query_one("#checks", DataTable).clear())
        self._say("Rolled back: removed " + ", ".join(f"{v} {k}" for k, v in removed.items()) + ".")

    # --- showing ---------------------------------------------------------------------------------

    def _failed(self, exc: BaseException, doing: str) -> None:
        self._set_busy(False, "")
        self.report_failure(exc, f"{doing} failed")
        if isinstance(exc, LegacyImportError) and exc.problems:
            shown = exc.problems[:8]
            more = f"\n… and {len(exc.problems) - len(shown)} more" if len(exc.problems) > len(shown) else ""
            self._say(f"{exc.message}:\n" + "\n".join(f"  {p}" for p in shown) + more)
        else:
            self._say(f"{doing} failed: {exc}")

    def _progress(self, phase: str, done: int, total: int) -> None:
        self.query_one(ProgressBar).update(total=total, progress=done)
        self.query_one("#phase", Label).update(f"importing {phase}: {done} of {total} rows")

    def _set_busy(self, busy: bool, phase: str, *, show_bar: bool = False) -> None:
        def apply() -> None:
            self.busy = busy
            for b in ("dry-run", "import", "validate", "rollback"):
                self.query_one(f"#{b}", Button).disabled = busy
            self.query_one("#cancel", Button).disabled = not busy
            self.query_one("#phase", Label).update(phase)
            if busy:
                bar = self.query_one(ProgressBar)
                bar.display = show_bar
                bar.update(total=None, progress=0)
        self.ui(apply)

    def _show_checks(self, report) -> None:
        table = self.query_one("#checks", DataTable)
        table.clear()
        for t in report.tables:
            table.add_row(t.table, str(t.source_count), str(t.target_count), t.source_checksum[:16],
                          t.target_checksum[:16], Text("match", style="green") if t.ok
                          else Text("MISMATCH", style="bold red"))
        self._say_now("The import matches its source file." if report.ok
                      else "The import does NOT match its source file: see the rows marked MISMATCH.")
