"""Community detail, and the command palette that opens it."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from arrakis_tui.screens.community import CommunityScreen
from tests.tui.conftest import ARRAKEEN, SIZE, console, fleet_loaded, wait_for


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def community_loaded(pilot) -> CommunityScreen:
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommunityScreen) and pilot.app.screen,
                            "the community screen")
    await wait_for(pilot, lambda: screen.detail is not None, "the community to load")
    await pilot.pause()
    return screen


@pytest.mark.anyio
async def test_open_a_community_from_the_fleet(world):
    async with console(world).run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        await pilot.press("enter")  # the cursor starts on Arrakeen
        screen = await community_loaded(pilot)
        assert str(screen.community_id) == ARRAKEEN
        tiers = dict((r[0], r[1]) for r in rows(screen.query_one("#tiers", DataTable)))
        assert tiers["Naib"] == "1" and tiers["Fedaykin"] == "1" and tiers["(no tier)"] == "0"
        assert list(tiers)[:2] == ["Naib", "Fedaykin"]
        assert rows(screen.query_one("#badges", DataTable)) == [["water_sharer", "1"]]
        changes = rows(screen.query_one("#changes", DataTable))
        assert len(changes) == 5 and changes[0][5] == "just now"
        manifests = rows(screen.query_one("#manifests", DataTable))
        assert manifests[0][:5] == ["v1", "just now", "seed", "applied", "yes"]
        assert "5 members" in str(screen.query_one("#last-sync").render())
        await pilot.press("escape")
        await fleet_loaded(pilot)


@pytest.mark.anyio
async def test_command_palette_opens_a_community(world):
    async with console(world).run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        await pilot.press("ctrl+p", *"open caladan")
        await pilot.pause(0.5)
        await pilot.press("enter")
        screen = await community_loaded(pilot)
        assert screen.detail.name == "Caladan"


@pytest.mark.anyio
async def test_palette_tells_two_communities_of_the_same_name_apart(world):
    from dataclasses import replace

    from arrakis_tui.commands import OperatorCommands

    app = console(world)
    async with app.run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        first, second = app.fleet[:2]
        app.fleet = [replace(first, name="Test"), replace(second, name="Test")]
        titles = [title for title, _, _ in OperatorCommands(app.screen)._commands()]
        drift = [t for t in titles if t.startswith("Check drift of Test")]
        assert len(drift) == 2 and len(set(titles)) == len(titles)
        assert all(f"(guild {row.guild_id})" in t for row, t in zip(app.fleet, drift))


@pytest.mark.anyio
async def test_a_change_waiting_for_an_operator_is_shown(world):
    from tests.tui.conftest import CALADAN

    approval = world.engine.approvals.request_strip(CALADAN, strips=2, tier_holders=2, members=["1", "2"],
                                                    requested_by="sync")
    try:
        app = console(world)
        async with app.run_test(size=SIZE) as pilot:
            await fleet_loaded(pilot)
            app.open_community(CALADAN)
            screen = await community_loaded(pilot)
            box = screen.query_one("#approvals")
            assert box.display
            text = " ".join(str(box.render()).split())
            assert "Waiting for an operator: 2 of 2 members would lose their tier role (asked by system:sync" in text
            assert f"arrakis approvals approve {approval.id} --as NAME" in text
    finally:
        with world.engine.db.platform() as tx:  # a process asked: nobody can cancel it; it is closed as expired
            tx.execute("UPDATE approval_requests SET status = 'expired', decided_at = now() WHERE id = %s",
                       (approval.id,))


@pytest.mark.anyio
async def test_a_missing_community_is_a_readable_notification(world):
    app = console(world)
    async with app.run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        app.open_community("00000000-0000-4000-8000-0000000000ff")
        await wait_for(pilot, lambda: app._notifications, "a notification")
        note = list(app._notifications)[0]
        assert note.severity == "error" and note.message.startswith("Could not open the community: ")
        assert "Traceback" not in note.message


class TestCommunityPictures:
    def test_community_detail(self, world, snap_compare):
        """Arrakeen at 120x36: a title line 'Arrakeen  guild 100000000000000001 · theme sietch ·
        plan premium · 5 members'; on the left the nine Sietch tiers in order (Naib, Fedaykin, Usul,
        Sayyadina and Ichwan 1 each, the others 0), then '(no tier) 0', and 'water_sharer 1'
        under Badges held; on the right the last eligibility sync ('just now by sync: 5 members
        (native ranks); 5 joined …'), five recent tier changes all 'just now', and manifest v1
        published by 'seed', synthesized 'applied', archived 'yes'; the footer shows Back,
        Drift, Migrations, Refresh."""

        async def opened(pilot):
            await fleet_loaded(pilot)
            pilot.app.open_community(ARRAKEEN)
            screen = await community_loaded(pilot)
            tables = [screen.query_one(f"#{t}", DataTable) for t in ("tiers", "badges", "changes", "manifests")]
            await wait_for(pilot, lambda: all(t.row_count for t in tables), "every table's rows")
            # a table sizes its columns to its rows when it next draws: under load that can be
            # after a short pause, so the picture waits for the sizes to settle
            widths = lambda: [tuple(c.get_render_width(t) for c in t.columns.values()) for t in tables]  # noqa: E731
            before = None
            for _ in range(20):
                await pilot.pause(0.1)
                if widths() == before:
                    break
                before = widths()
            await pilot.pause(0.2)

        assert snap_compare(console(world), terminal_size=SIZE, run_before=opened)


class TestPalettePictures:
    def test_command_palette_lists_operator_actions(self, world, snap_compare):
        """The command palette (ctrl+p) over the fleet with 'drift' typed: the matches include
        'Check drift of Arrakeen', 'Check drift of Caladan' and 'Check drift of Giedi Prime', each
        with its help line ('Desired vs applied vs the guild; reconcile from there'); behind it,
        the dimmed fleet with flat sparklines (the bucket is emptied first)."""
        world.engine.bucket.reset()

        async def palette(pilot):
            await fleet_loaded(pilot)
            await pilot.press("ctrl+p", *"check drift")
            from textual.command import CommandList

            lists = lambda: pilot.app.screen.query(CommandList)  # noqa: E731
            await wait_for(pilot, lambda: lists() and lists().first().option_count >= 3, "the matches", 10)
            pilot.app.screen.query_one("CommandInput").cursor_blink = False  # a blinking cursor flakes the picture
            await pilot.pause(0.5)

        assert snap_compare(console(world), terminal_size=SIZE, run_before=palette)
