"""The drift view: desired vs applied vs the guild, grouped by severity; dry-run and real reconcile."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from arrakis_tui.dialogs.confirm import ConfirmDialog
from arrakis_tui.screens.drift import DriftScreen
from tests.tui.conftest import ARRAKEEN, CALADAN, GIEDI, SIZE, console, fleet_loaded, wait_for


async def drift_open(pilot, community_id) -> DriftScreen:
    await fleet_loaded(pilot)
    pilot.app.open_drift(community_id)
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, DriftScreen) and pilot.app.screen,
                            "the drift screen")
    await wait_for(pilot, lambda: screen.report is not None, "the drift check")
    await pilot.pause()
    return screen


def result(screen) -> str:
    return str(screen.query_one("#result").render())


@pytest.mark.anyio
async def test_drift_is_grouped_by_severity(world):
    async with console(world).run_test(size=SIZE) as pilot:
        screen = await drift_open(pilot, ARRAKEEN)
        table = screen.query_one(DataTable)
        first = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert first[0] == "HIGH (1)" and first[1] == "high"
        assert str(table.get_row_at(1)[4]) == "deleted outside Arrakis"
        assert any(r.startswith("INFO") for r in first)
        assert "Moderators" in " ".join(str(table.get_row_at(i)[4]) for i in range(table.row_count))
        assert first.index(next(r for r in first if r.startswith("INFO"))) > 1  # high before info


@pytest.mark.anyio
async def test_dry_run_reconcile_changes_nothing(world):
    guild = world.discord.guilds["100000000000000001"]
    before = {r["name"] for r in guild.roles.values()}
    async with console(world).run_test(size=SIZE) as pilot:
        screen = await drift_open(pilot, ARRAKEEN)
        await pilot.press("n")
        text = await wait_for(pilot, lambda: "reconcile would" in result(screen) and result(screen),
                              "the dry run")
        assert "create 1, update 0, delete 0" in text and "create role" in text
    assert {r["name"] for r in guild.roles.values()} == before  # Naib is still gone


@pytest.mark.anyio
async def test_real_reconcile_asks_first_and_fixes_the_guild(world):
    guild = world.discord.guilds["100000000000000002"]
    role = next(r for r in guild.roles.values() if r["name"] not in ("@everyone",))
    name = role["name"]
    role["name"] = "renamed by hand"
    async with console(world).run_test(size=SIZE) as pilot:
        screen = await drift_open(pilot, CALADAN)
        assert screen.report.status == "medium"
        await pilot.press("a")
        dialog = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog) and pilot.app.screen,
                                "the confirmation")
        assert "update role" in str(dialog.query_one("#confirm-body").render())
        await pilot.press("n")  # no: nothing happens
        await wait_for(pilot, lambda: "not run" in result(screen), "the refusal")
        assert role["name"] == "renamed by hand"
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: "reconcile did" in result(screen), "the reconcile")
        await wait_for(pilot, lambda: screen.report.status == "in sync", "the re-check")
    assert role["name"] == name


@pytest.mark.anyio
async def test_cancel_a_reconcile_before_its_next_discord_call(world):
    """Caladan is frozen while the operator confirms, so the reconcile waits at its first Discord
    call; the operator cancels; once unfrozen, the reconcile stops before changing anything and
    says so, and the cancellation is audited."""
    guild = world.discord.guilds["100000000000000002"]
    roles = [r for r in guild.roles.values() if r["name"] != "@everyone"][:2]
    names = [r["name"] for r in roles]
    for r in roles:
        r["name"] += " (renamed by hand)"
    try:
        async with console(world).run_test(size=SIZE) as pilot:
            screen = await drift_open(pilot, CALADAN)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the confirmation")
            world.engine.freeze.freeze(CALADAN, reason="test: hold the reconcile at its first call")
            await pilot.press("y")
            await wait_for(pilot, lambda: screen.busy, "the reconcile to start")
            await pilot.press("c")
            assert "cancelling" in result(screen)
            world.engine.freeze.unfreeze(CALADAN)
            await wait_for(pilot, lambda: "reconcile cancelled" in result(screen), "the cancellation", 15)
            assert "after 0 of 2 steps" in result(screen)
            assert not screen.busy
        assert [r["name"] for r in roles] == [n + " (renamed by hand)" for n in names]  # nothing changed
        with world.engine.db.tenant(CALADAN):
            last = world.engine.repos.audit.entries(limit=1)[-1]
        assert last.action == "reconcile.cancelled" and last.payload["steps_done"] == 0
    finally:
        world.engine.freeze.unfreeze(CALADAN)
        for r, n in zip(roles, names):
            r["name"] = n
        world.engine.operations.drift(CALADAN)


@pytest.mark.anyio
async def test_leaving_during_a_reconcile_cancels_it_and_the_console_carries_on(world):
    guild = world.discord.guilds["100000000000000002"]
    role = next(r for r in guild.roles.values() if r["name"] != "@everyone")
    name = role["name"]
    role["name"] = "renamed by hand"
    app = console(world)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await drift_open(pilot, CALADAN)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
            world.engine.freeze.freeze(CALADAN, reason="test: hold the reconcile at its first call")
            await pilot.press("y")
            await wait_for(pilot, lambda: screen.busy, "the reconcile to start")
            await pilot.press("escape")  # back to the fleet while the reconcile waits on Discord
            await fleet_loaded(pilot)
            world.engine.freeze.unfreeze(CALADAN)

            def cancelled():
                with world.engine.db.tenant(CALADAN):
                    return world.engine.repos.audit.entries(limit=1)[-1].action == "reconcile.cancelled"

            await wait_for(pilot, cancelled, "the reconcile to stop", 15)
            await pilot.pause(0.3)
            assert app.is_running and type(app.screen).__name__ == "FleetScreen"
            assert not [n for n in app._notifications if n.severity == "error"]
        assert role["name"] == "renamed by hand"
    finally:
        world.engine.freeze.unfreeze(CALADAN)
        role["name"] = name
        world.engine.operations.drift(CALADAN)


@pytest.mark.anyio
async def test_drift_of_a_community_never_synthesized_says_so(world):
    app = console(world)
    async with app.run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        app.open_drift(GIEDI)
        await wait_for(pilot, lambda: app._notifications, "a notification")
        assert list(app._notifications)[0].message == ("Could not check drift: this community has not been "
                                                      "synthesized yet")


@pytest.mark.anyio
async def test_a_failed_dry_run_says_so_on_the_result_line(world):
    app = console(world)
    async with app.run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        app.open_drift(GIEDI)  # never synthesized: a reconcile cannot even be planned
        screen = await wait_for(pilot, lambda: isinstance(app.screen, DriftScreen) and app.screen, "the drift screen")
        await wait_for(pilot, lambda: app._notifications, "the failed check")
        await pilot.press("n")
        text = await wait_for(pilot, lambda: "failed" in result(screen) and result(screen), "the failed dry run")
        assert text.startswith("Dry-run reconcile failed: this community has not been synthesized yet")
        assert "working" not in text and not screen.busy
        await pilot.press("n")  # and the key works again
        await wait_for(pilot, lambda: len(app._notifications) >= 3, "the second failure")
        assert "working" not in result(screen)


class TestDriftPictures:
    def test_drift_view_after_a_dry_run(self, world, snap_compare):
        """Arrakeen's drift at 120x36: 'manifest v1 · applied v1 · status high (1 high, 0 medium,
        0 low, 1 info)'; a red 'HIGH (1)' group row ('managed by Arrakis and gone from the guild')
        over the role:naib row 'deleted outside Arrakis'; an 'INFO (1)' group ('made by hand in the
        guild: never touched') over the 'Moderators' role; no horizontal scroll bar; below, the
        dry-run result 'reconcile would: create 1, update 0, delete 0; 2 Discord calls' and
        '  create role role:naib'; the footer shows Back, Check again, Dry-run reconcile,
        Reconcile…, Cancel."""

        async def dry_run(pilot):
            screen = await drift_open(pilot, ARRAKEEN)
            await pilot.press("n")
            await wait_for(pilot, lambda: "reconcile would" in result(screen), "the dry run")
            await pilot.pause(0.2)

        assert snap_compare(console(world), terminal_size=SIZE, run_before=dry_run)

    def test_reconcile_confirmation(self, world, snap_compare):
        """The confirmation over Caladan's drift view after a role was renamed by hand: a dialog
        'Reconcile this guild?' listing '  update role role:gold (name)', saying resources made by
        hand are never touched, with 'Yes, reconcile' and 'No, leave it' (focused) buttons; under
        the dimmed drift view the status line reads 'Waiting for your answer…'."""
        guild = world.discord.guilds["100000000000000002"]
        role = next(r for r in guild.roles.values() if r["name"] not in ("@everyone",))
        name = role["name"]
        role["name"] = "renamed by hand"

        async def ask(pilot):
            await drift_open(pilot, CALADAN)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the confirmation")
            await pilot.pause(0.3)

        try:
            assert snap_compare(console(world), terminal_size=SIZE, run_before=ask)
        finally:
            role["name"] = name
            world.engine.operations.drift(CALADAN)  # the fleet remembers Caladan in sync again
