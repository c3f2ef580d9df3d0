"""The migrations screen: pick a legacy SQLite file, dry-run, import with progress, validate
side by side, roll back; cancel an import half-way (nothing written)."""

from __future__ import annotations

import psycopg2
import pytest
from textual.widgets import DataTable, Input

from arrakis_tui.dialogs.confirm import ConfirmDialog
from arrakis_tui.screens.migrations import MigrationsScreen
from tests.tui.conftest import GIEDI, SIZE, console, fleet_loaded, wait_for


async def migrations_open(pilot) -> MigrationsScreen:
    await fleet_loaded(pilot)
    pilot.app.open_migrations(GIEDI)
    return await wait_for(pilot, lambda: isinstance(pilot.app.screen, MigrationsScreen) and pilot.app.screen,
                          "the migrations screen")


def said(screen) -> str:
    return str(screen.query_one("#migration-result").render())


def members(world) -> int:
    with world.engine.db.tenant(GIEDI):
        return world.engine.repos.profiles.count()


async def pick(pilot, screen, path) -> None:
    screen.query_one("#path", Input).value = str(path)
    await pilot.pause()


async def confirm(pilot, answer: str) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the confirmation")
    await pilot.press(answer)


@pytest.mark.anyio
async def test_import_validate_and_roll_back(world):
    assert members(world) == 0
    async with console(world).run_test(size=SIZE) as pilot:
        screen = await migrations_open(pilot)
        await pick(pilot, screen, world.files / "profiles.db")
        await pilot.press("f2")
        text = await wait_for(pilot, lambda: "Dry run:" in said(screen) and said(screen), "the dry run")
        assert "60 profiles" in text and "Nothing was written" in text and members(world) == 0

        await pilot.press("f3")
        await confirm(pilot, "n")
        await wait_for(pilot, lambda: "Import not run" in said(screen), "the refusal")
        assert members(world) == 0

        await pilot.press("f3")
        await confirm(pilot, "y")
        await wait_for(pilot, lambda: said(screen).startswith("Imported"), "the import")
        assert members(world) == 60
        bar = screen.query_one("#progress")
        assert bar.total and bar.progress == bar.total

        await pilot.press("f4")
        table = screen.query_one("#checks", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, "the validation")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(3)]
        assert {r[0] for r in rows} == {"profiles", "badges", "wallet_links"}
        assert all(r[1] == r[2] and r[3] == r[4] and r[5] == "match" for r in rows)
        assert said(screen) == "The import matches its source file."

        await pilot.press("escape")  # the community screen now tells of the import
        pilot.app.open_community(GIEDI)
        from arrakis_tui.screens.community import CommunityScreen

        detail = await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommunityScreen)
                                and pilot.app.screen.detail and pilot.app.screen, "the community")
        assert ("Legacy import: profiles.db (70 badges, 60 profiles, 60 wallet_links), just now by console."
                in str(detail.query_one("#last-sync").render()))
        await pilot.press("escape")
        screen = await migrations_open(pilot)

        await pilot.press("f8")
        await confirm(pilot, "y")
        await wait_for(pilot, lambda: said(screen).startswith("Rolled back"), "the roll back")
        assert "60 profiles" in said(screen)
    assert members(world) == 0


@pytest.mark.anyio
async def test_a_bad_file_lists_its_bad_rows_and_writes_nothing(world):
    app = console(world)
    async with app.run_test(size=SIZE) as pilot:
        screen = await migrations_open(pilot)
        await pick(pilot, screen, world.files / "bad.db")
        await pilot.press("f2")
        text = await wait_for(pilot, lambda: "bad row" in said(screen) and said(screen), "the refusal")
        assert "nothing was imported" in text and "wallet" in text
        assert any(n.severity == "error" for n in app._notifications)
    assert members(world) == 0


@pytest.mark.anyio
async def test_pick_a_file_from_the_tree(world):
    async with console(world).run_test(size=SIZE) as pilot:
        screen = await migrations_open(pilot)
        tree = screen.query_one("#files")
        await wait_for(pilot, lambda: len(tree.root.children) >= 3, "the file tree")
        assert sorted(str(n.label) for n in tree.root.children) == ["bad.db", "large.db", "profiles.db"]
        node = next(n for n in tree.root.children if str(n.label) == "profiles.db")
        tree.select_node(node)
        await pilot.pause()
        tree.action_select_cursor()
        await wait_for(pilot, lambda: screen.query_one("#path", Input).value == "profiles.db",
                       "the path to be filled in (relative to the folder shown)")


@pytest.mark.anyio
async def test_cancel_an_import_half_way_writes_nothing(world, pg_server_url):
    """The badges table is locked by another session, so the import stops there after writing
    members and wallets in its transaction; the operator cancels; the lock is let go; the import
    notices at its next batch and rolls everything back."""
    url = world.engine.settings.database_url
    locker = psycopg2.connect(url)
    try:
        async with console(world).run_test(size=SIZE) as pilot:
            screen = await migrations_open(pilot)
            await pick(pilot, screen, world.files / "large.db")
            await pilot.press("f3")
            await confirm(pilot, "y")
            with locker.cursor() as cur:
                cur.execute("LOCK TABLE badges IN ACCESS EXCLUSIVE MODE")
            phase = screen.query_one("#phase")
            await wait_for(pilot, lambda: "wallets" in str(phase.render()), "the import to reach the wallets", 30)
            assert not screen.query_one("#cancel").disabled
            await pilot.press("f9")
            locker.rollback()  # let the import go on: it must stop by itself at its next batch
            await wait_for(pilot, lambda: "cancelled" in said(screen), "the cancellation", 30)
            assert said(screen) == "import cancelled: nothing was written"
            assert not screen.query_one("#import").disabled
    finally:
        locker.close()
    assert members(world) == 0


class TestMigrationPictures:
    def test_validation_side_by_side(self, world, snap_compare):
        """Giedi Prime after importing profiles.db and pressing F4: the validation table lists
        profiles (60 in the file, 60 imported), badges (70, 70) and wallet_links (60, 60), each
        with the same 16-character checksum prefix in 'File checksum' and 'Imported checksum' and a
        green 'match'; no progress bar (validating only reads); below, 'The import matches its
        source file.' (The 'Imported …' notification is cleared first so the picture does not
        depend on its timeout; the import is rolled back after the picture.)"""

        async def imported(pilot):
            screen = await migrations_open(pilot)
            tree = screen.query_one("#files")
            await wait_for(pilot, lambda: len(tree.root.children) >= 3, "the file tree")
            await pick(pilot, screen, "profiles.db")
            screen.query_one("#path", Input).cursor_blink = False
            await pilot.press("f3")
            await confirm(pilot, "y")
            await wait_for(pilot, lambda: said(screen).startswith("Imported"), "the import")
            await pilot.press("f4")
            await wait_for(pilot, lambda: screen.query_one("#checks", DataTable).row_count == 3, "the validation")
            pilot.app.clear_notifications()
            await pilot.pause(0.3)

        try:
            assert snap_compare(console(world), terminal_size=SIZE, run_before=imported)
        finally:
            if members(world):
                world.engine.legacy_importer().rollback(GIEDI, actor="test")
        assert members(world) == 0

    def test_after_a_dry_run(self, world, snap_compare):
        """Giedi Prime's legacy import at 120x36: on the left 'Legacy SQLite file' with the path
        box reading 'profiles.db' and a tree of the folder 'legacy0' listing bad.db, large.db and
        profiles.db; on the right the buttons Dry run, Import…, Validate, Roll back… and a greyed
        Cancel, no progress bar (a dry run only reads), an empty validation table (Table, In file, Imported, File checksum, Imported
        checksum, Match) and the message 'Dry run: profiles.db is clean and would import
        60 profiles, … Nothing was written.'; the footer shows Back, Dry run, Import…, Validate,
        Roll back…, Cancel."""

        async def dry_run(pilot):
            screen = await migrations_open(pilot)
            tree = screen.query_one("#files")
            await wait_for(pilot, lambda: len(tree.root.children) >= 3, "the file tree")
            screen.query_one("#path", Input).value = "profiles.db"  # as picking it in the tree does
            screen.query_one("#path", Input).cursor_blink = False
            await pilot.press("f2")
            await wait_for(pilot, lambda: "Dry run:" in said(screen), "the dry run")
            await pilot.pause(0.3)

        assert snap_compare(console(world), terminal_size=SIZE, run_before=dry_run)
