"""The fleet overview: every community with its sync, synthesis and drift, and platform health."""

from __future__ import annotations

import threading

import pytest

from tests.tui.conftest import SIZE, console, fleet_loaded, wait_for


def names(table):
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


@pytest.mark.anyio
async def test_filter_the_fleet(world):
    async with console(world).run_test(size=SIZE) as pilot:
        table = await fleet_loaded(pilot)
        assert names(table) == ["Arrakeen", "Caladan", "Giedi Prime"]
        await pilot.press("/", *"cal")
        await pilot.pause()
        assert names(table) == ["Caladan"]
        await pilot.press("backspace", "backspace", "backspace", *"premium")
        await pilot.pause()
        assert names(table) == ["Arrakeen"]
        await pilot.press("ctrl+a", "ctrl+k", *"high")  # drift status is filterable too
        await pilot.pause()
        assert names(table) == ["Arrakeen"]
        assert "1 of 3 communities" in str(pilot.app.screen.query_one("#status").render())


@pytest.mark.anyio
async def test_sort_the_fleet(world):
    app = console(world)
    async with app.run_test(size=SIZE) as pilot:
        table = await fleet_loaded(pilot)
        assert names(table) == ["Arrakeen", "Caladan", "Giedi Prime"]  # by name
        await pilot.press("s")
        assert names(table) == ["Arrakeen", "Caladan", "Giedi Prime"]  # by members: 5, 2, 0
        await pilot.press("s")
        assert names(table) == ["Giedi Prime", "Arrakeen", "Caladan"]  # by plan: enterprise, premium, free
        await pilot.press("s", "s")
        assert names(table)[0] == "Arrakeen"  # by drift: high first
        assert "by drift" in str(app.screen.query_one("#status").render())
        await pilot.press("s")
        assert names(table)[0] == "Giedi Prime"  # by last sync: the longest without one first (never)
        assert "by last sync" in str(app.screen.query_one("#status").render())


@pytest.mark.anyio
async def test_fleet_columns_and_health(world):
    async with console(world).run_test(size=SIZE) as pilot:
        table = await fleet_loaded(pilot)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(3)}
        assert rows["Arrakeen"][4:] == ["5", "just now", "just now", "high · just now"]  # checked just now
        assert rows["Caladan"][4:] == ["2", "just now", "just now", "in sync · just now"]
        assert rows["Giedi Prime"][4:] == ["0", "never", "never", "no plan yet"]
        items = pilot.app.screen.query_one("#health-items")
        text = await wait_for(pilot, lambda: "postgresql" in str(items.render()) and str(items.render()),
                              "the health check")
        for part in ("postgresql", "redis", "rpc", "score service", "shadow store", "queue", "dead letters"):
            assert part in text


@pytest.mark.anyio
async def test_sparklines_follow_discord_calls_and_429s(world):
    world.engine.bucket.reset()
    for _ in range(3):
        world.engine.discord.list_roles("100000000000000002")
    world.engine.bucket.record_rate_limited()
    async with console(world).run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        use = pilot.app.screen.query_one("#use-label")
        await wait_for(pilot, lambda: "peak" in str(use.render()), "the health check")
        assert "peak 3 (1% of limit)" in str(use.render())
        assert "1 in 10 min" in str(pilot.app.screen.query_one("#limited-label").render())
        spark = pilot.app.screen.query_one("#use")
        assert len(spark.data) == 60 and sum(spark.data) == 3
    world.engine.bucket.reset()


@pytest.mark.anyio
async def test_ui_stays_responsive_while_the_engine_is_slow(world):
    """Loading runs in a worker thread: key presses are handled while the engine call blocks."""
    gate = threading.Event()
    real = world.engine

    class SlowOperations:
        def fleet(self, limit=None):
            gate.wait(10)
            return real.operations.fleet(limit)

        def health(self):
            return real.operations.health()

    class SlowEngine:
        operations = SlowOperations()

    from arrakis_tui.app import ArrakisConsole

    app = ArrakisConsole(SlowEngine(), clock=world.clock, health_every=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("/", *"arr")
        await pilot.pause()
        assert app.screen.query_one("#filter").value == "arr"  # typed while the load is stuck
        assert app.screen.query_one("#fleet").row_count == 0
        gate.set()
        table = await fleet_loaded(pilot)
        assert names(table) == ["Arrakeen"]


@pytest.mark.anyio
async def test_an_engine_failure_is_a_notification_not_a_traceback(world):
    from arrakis_engine.errors import StorageError
    from arrakis_tui.app import ArrakisConsole

    class Broken:
        def fleet(self, limit=None):
            raise StorageError("PostgreSQL is not answering", hint="is the server running?")

        def health(self):
            return world.engine.operations.health()

    class BrokenEngine:
        operations = Broken()

    app = ArrakisConsole(BrokenEngine(), clock=world.clock, health_every=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app._notifications, "a notification")
        note = list(app._notifications)[0]
        assert note.severity == "error"
        assert note.message == ("Could not load the fleet: PostgreSQL is not answering (is the server running?)")
        assert "could not be loaded" in str(app.screen.query_one("#status").render())


@pytest.mark.anyio
async def test_health_refreshes_on_its_own(world):
    """The health panel is fetched again every few seconds, off the UI thread."""
    world.engine.bucket.reset()
    async with console(world, health_every=0.3).run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        label = pilot.app.screen.query_one("#use-label")
        await wait_for(pilot, lambda: "peak 0 " in str(label.render()), "the first health check")
        for _ in range(4):
            world.engine.discord.list_roles("100000000000000002")
        await wait_for(pilot, lambda: "peak 4 " in str(label.render()), "a later health check")
    world.engine.bucket.reset()


class TestFleetPictures:
    def test_fleet_overview(self, world, snap_compare):
        """The fleet at 120x36: header 'Arrakis — operator console'; a filter box; a table of
        Arrakeen (sietch, premium, 5 members, drift 'high' in red followed by a dim '· just now', the
        age of that check), Caladan (basic, free, 2, 'in sync' in green, '· just now') and Giedi Prime (sietch, enterprise, 0, never synced or synthesized,
        'no plan yet'); '3 of 3 communities, by name' below; the health panel lists postgresql ok,
        redis ok, rpc off, score service off, shadow store ok (local folder, 0 waiting), queue 0 jobs,
        dead letters 0 jobs, beside 'Discord calls/10 s: peak 0 (0% of limit)' and 'Discord
        429s/10 s: 0 in 10 min' over two flat sparklines; the footer shows Open, Refresh, Filter,
        Sort, Quit, Light/dark and the palette key."""
        world.engine.bucket.reset()

        async def loaded(pilot):
            await fleet_loaded(pilot)
            items = pilot.app.screen.query_one("#health-items")
            await wait_for(pilot, lambda: "postgresql" in str(items.render()), "the health check")
            await pilot.pause(0.2)

        assert snap_compare(console(world), terminal_size=SIZE, run_before=loaded)

    def test_fleet_in_the_light_theme(self, world, snap_compare):
        """The same fleet after pressing t: the light theme (light background, dark text), the
        drift words still coloured (high red, in sync green), the health marks still readable."""
        world.engine.bucket.reset()

        async def light(pilot):
            await fleet_loaded(pilot)
            items = pilot.app.screen.query_one("#health-items")
            await wait_for(pilot, lambda: "postgresql" in str(items.render()), "the health check")
            await pilot.press("t")
            await pilot.pause(0.2)
            assert pilot.app.theme == "textual-light"

        assert snap_compare(console(world), terminal_size=SIZE, run_before=light)


@pytest.mark.anyio
async def test_a_long_fleet_is_listed_a_page_at_a_time(world):
    """Only a page of rows goes into the table (so filtering stays fast with thousands); moving
    the cursor towards the end brings the next page."""
    from arrakis_tui.screens.fleet import FleetScreen

    FleetScreen.PAGE, page = 2, FleetScreen.PAGE
    try:
        async with console(world).run_test(size=SIZE) as pilot:
            table = await fleet_loaded(pilot)
            assert table.row_count == 2 and len(pilot.app.screen.shown) == 3
            assert "first 2 listed, more as you scroll" in str(pilot.app.screen.query_one("#status").render())
            await pilot.press("down")
            await wait_for(pilot, lambda: table.row_count == 3, "the next page")
            assert names(table) == ["Arrakeen", "Caladan", "Giedi Prime"]
            assert "more as you scroll" not in str(pilot.app.screen.query_one("#status").render())
    finally:
        FleetScreen.PAGE = page
