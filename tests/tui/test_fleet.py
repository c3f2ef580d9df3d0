"""The operator console's fleet overview, against a real engine on a database seeded with known
communities (its own database, so the picture does not depend on other tests)."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import DataTable

from arrakis_engine.bootstrap import build_engine
from arrakis_tui.app import ArrakisConsole
from tests.conftest import create_database, drop_database, make_settings

SIZE = (110, 24)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def fleet_engine(pg_server_url, redis_url, tmp_path_factory):
    url = create_database(pg_server_url, prefix="arrakis_tui")
    engine = build_engine(make_settings(url, redis_url, tmp_path_factory.mktemp("tui")))
    engine.migrator.upgrade()
    for name, guild, theme, plan, members in (("Arrakeen", "100000000000000001", "sietch", "premium", 3),
                                              ("Caladan", "100000000000000002", "basic", "free", 1),
                                              ("Giedi Prime", "100000000000000003", "basic", "enterprise", 0)):
        c = engine.communities.create(name=name, guild_id=guild, theme_id=theme, subscription=plan)
        with engine.db.tenant(c.id):
            for i in range(members):
                engine.repos.profiles.create(discord_id=f"{guild[:-2]}{i:02d}")
    yield engine
    engine.close()
    drop_database(pg_server_url, url)


async def wait_loaded(pilot) -> DataTable:
    table = pilot.app.screen.query_one(DataTable)
    for _ in range(100):
        await pilot.pause(0.05)
        if table.row_count:
            return table
    raise AssertionError("the fleet never loaded")


@pytest.mark.anyio
async def test_filter_the_fleet(fleet_engine):
    app = ArrakisConsole(fleet_engine)
    async with app.run_test(size=SIZE) as pilot:
        table = await wait_loaded(pilot)
        assert table.row_count == 3
        await pilot.press("/")
        await pilot.press(*"cal")
        await pilot.pause()
        assert table.row_count == 1 and table.get_row_at(0)[0] == "Caladan"
        await pilot.press("backspace", "backspace", "backspace")
        for ch in "premium":
            await pilot.press(ch)
        await pilot.pause()
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["Arrakeen"]


@pytest.mark.anyio
async def test_sort_the_fleet(fleet_engine):
    app = ArrakisConsole(fleet_engine)
    async with app.run_test(size=SIZE) as pilot:
        table = await wait_loaded(pilot)
        names = lambda: [table.get_row_at(i)[0] for i in range(table.row_count)]  # noqa: E731
        assert names() == ["Arrakeen", "Caladan", "Giedi Prime"]  # by name
        await pilot.press("s")
        assert names() == ["Arrakeen", "Caladan", "Giedi Prime"]  # by members: 3, 1, 0
        await pilot.press("s")
        assert names() == ["Giedi Prime", "Arrakeen", "Caladan"]  # by plan: enterprise, premium, free
        assert "by plan" in str(app.screen.query_one("#status").render())


@pytest.mark.anyio
async def test_ui_stays_responsive_while_the_engine_is_slow(fleet_engine):
    """Loading runs in a worker thread: key presses are handled while the engine call blocks."""
    gate = threading.Event()
    original = fleet_engine.communities.list

    class SlowCommunities:
        def list(self):
            gate.wait(10)
            return original()

    class SlowEngine:
        communities = SlowCommunities()

        def health(self):
            return fleet_engine.health()

    app = ArrakisConsole(SlowEngine())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("/")
        await pilot.press(*"arr")
        await pilot.pause()
        assert app.screen.query_one("#filter").value == "arr"  # typed while the load is stuck
        gate.set()
        table = await wait_loaded(pilot)
        assert table.get_row_at(0)[0] == "Arrakeen"


def test_fleet_overview_snapshot(fleet_engine, snap_compare):
    """The fleet overview at 110x24: header 'Arrakis — operator console'; a filter box with
    'postgresql: ok  redis: ok' beside it; a table of Arrakeen (sietch, premium, 3 members),
    Caladan (basic, free, 1) and Giedi Prime (basic, enterprise, 0); '3 of 3 communities, by name
    (s to change)' below; the footer lists Refresh, Filter, Sort, Quit and Light/dark."""

    async def loaded(pilot):
        await wait_loaded(pilot)
        await pilot.pause(0.2)

    assert snap_compare(ArrakisConsole(fleet_engine), terminal_size=SIZE, run_before=loaded)
