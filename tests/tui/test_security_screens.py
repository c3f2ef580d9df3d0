"""The kill switch screen (activate with a reason and a code, release, a wrong code refused) and
the audit trail screen (the chain verified, filtering)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from arrakis_engine.security.drill import DrillReport, DrillStep
from arrakis_engine.storage.outbox import RestoreRepository
from arrakis_tui.dialogs.prompt import PromptDialog
from arrakis_tui.screens.audit import AuditScreen
from arrakis_tui.screens.killswitch import KillSwitchScreen
from tests.fixtures.operators import add_operator, reenrol, secret_of
from tests.tui.conftest import ARRAKEEN, CALADAN, SIZE, console, fleet_loaded, wait_for

ADMIN = "dee-admin"


def hold(engine, community: str, reason: str, by: str, since: float) -> None:
    """A kill switch hold on a community as the kill switch records it (in PostgreSQL), with a
    chosen start time so that pictures stay the same, then the Redis cache rebuilt from it."""
    with engine.db.platform() as tx:
        tx.execute("""INSERT INTO freezes (scope, target, source, reason, held_by, since)
                      VALUES ('community', %s, 'killswitch', %s, %s, to_timestamp(%s)) ON CONFLICT DO NOTHING""",
                   (community, reason, by, since))
        tx.execute("UPDATE freeze_generation SET gen = gen + 1")
    engine.freeze.sync(changed=True)


def unhold(engine, community: str) -> None:
    engine.freeze.unfreeze(community, source="killswitch")


@pytest.fixture(scope="module")
def admin(world):
    engine = world.engine
    if not any(o.name == ADMIN for o in engine.operators.list()):
        enrolment = add_operator(engine, ADMIN, ["platform_admin"], fake=world.discord)
    else:
        enrolment = reenrol(engine, ADMIN, fake=world.discord)
    return parse_qs(urlparse(enrolment.uri).query)["secret"][0]


def result(screen) -> str:
    return str(screen.query_one("#result").render())


def title(screen) -> str:
    return str(screen.query_one("#title").render())


async def answer(pilot, text: str) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog), "a prompt")
    await pilot.press(*text, "enter")


@pytest.mark.anyio
@pytest.mark.slow
async def test_freeze_a_community_and_release_it(world, admin):
    engine = world.engine
    totp = pyotp.TOTP(admin)
    try:
        async with console(world, operator=ADMIN).run_test(size=SIZE) as pilot:
            await fleet_loaded(pilot)
            await pilot.press("k")
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, KillSwitchScreen) and pilot.app.screen,
                                    "the kill switch screen")
            await wait_for(pilot, lambda: "Kill switch off" in title(screen), "the state")
            await pilot.press("c")
            await answer(pilot, CALADAN)
            await answer(pilot, "drill from the console")
            await answer(pilot, "000000" if totp.now() != "000000" else "111111")
            await wait_for(pilot, lambda: "Not done" in result(screen), "the refused code")
            assert engine.freeze.frozen(CALADAN) is None
            await pilot.press("c")
            await answer(pilot, CALADAN)
            await answer(pilot, "drill from the console")
            code = totp.now()
            await answer(pilot, code)
            await wait_for(pilot, lambda: "Activated in" in result(screen), "the activation")
            assert "freeze Discord changes ok" in result(screen)
            await wait_for(pilot, lambda: "Kill switch ON" in title(screen), "the new state")
            assert "drill from the console" in (engine.freeze.frozen(CALADAN) or "")
            table = screen.query_one("#frozen")
            assert [str(c) for c in table.get_row_at(0)][:4] == ["community", CALADAN, "drill from the console",
                                                                     f"operator:{ADMIN}"]
            await pilot.press("l")
            backup = reenrol(engine, ADMIN, fake=world.discord)  # a fresh code: one step's code counts once
            await answer(pilot, backup.backup_codes[0])
            await wait_for(pilot, lambda: "Released in" in result(screen), "the release")
            await wait_for(pilot, lambda: "Kill switch off" in title(screen), "the state after release")
        assert engine.freeze.frozen(CALADAN) is None
    finally:  # whatever happened, the shared world is not left frozen
        engine.freeze.unfreeze(CALADAN, source="killswitch")
        engine.signing.restore(f"community-{CALADAN}")


@pytest.mark.anyio
async def test_without_an_operator_the_console_says_who_must_act(world):
    async with console(world).run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        pilot.app.open_killswitch()
        screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, KillSwitchScreen) and pilot.app.screen,
                                "the kill switch screen")
        await pilot.press("g")
        assert "--as NAME" in result(screen) and not isinstance(pilot.app.screen, PromptDialog)


@pytest.mark.anyio
async def test_the_audit_trail_is_verified_and_filters(world):
    async with console(world).run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        pilot.app.open_audit(CALADAN)
        screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, AuditScreen) and pilot.app.screen,
                                "the audit screen")
        await wait_for(pilot, lambda: screen.entries, "the entries")
        assert "Chain intact" in title(screen)
        table = screen.query_one("#audit")
        total = table.row_count
        assert total == len(screen.entries) > 0
        await pilot.press("/", *"eligibility")
        await wait_for(pilot, lambda: table.row_count < total, "the filter")
        assert all("eligibility" in str(table.get_row_at(i)[3]) for i in range(table.row_count))
        assert f"{table.row_count} of {total} entries shown" in result(screen)


class TestSecurityPictures:
    def test_activate_dialog(self, world, admin, snap_compare):
        """Freezing everything from the kill switch screen: 'Kill switch off' behind the modal
        'Freeze everything?', which says what stops and asks why; below the table 'No drill yet'
        (this picture is taken before the drill test of this file runs)."""
        async def ask(pilot):
            await fleet_loaded(pilot)
            pilot.app.open_killswitch()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, KillSwitchScreen)
                                    and pilot.app.screen, "the kill switch screen")
            await wait_for(pilot, lambda: "Kill switch" in title(screen), "the state")
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog), "the reason prompt")

        assert snap_compare(console(world, operator=ADMIN), terminal_size=SIZE, run_before=ask)

    def test_signing_keys(self, world, snap_compare):
        """The signing keys screen: 'platform' (no key yet: nothing signed it so far in this world)
        then Arrakeen, Caladan and Giedi Prime with their whole key names and versions, 'on local key
        file' in the title and 'signs' in green (this picture is taken before the rotation test of this file)."""
        from arrakis_tui.screens.signing import SigningScreen

        async def show(pilot):
            await fleet_loaded(pilot)
            pilot.app.open_signing()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, SigningScreen) and pilot.app.screen,
                                    "the signing screen")
            await wait_for(pilot, lambda: screen.query_one("#keys").row_count, "the keys")

        assert snap_compare(console(world), terminal_size=SIZE, run_before=show)


    # A drill's timings differ on every run, so its two pictures feed the screen's live log fixed
    # steps (the same DrillStep objects the engine reports); the pilot test below runs a real drill.
    WORK = DrillStep("work", True, "3 read(s) of the guild got through", 612.0)
    ACTIVATE = DrillStep("activate", True, "in 14 ms: freeze Discord changes ok (2 ms), revoke wizard sessions ok "
                         "(3 ms), stop signing and revoke Vault tokens ok (9 ms), alert ok (0 ms), audit ok (2 ms)", 15.0)
    HELD = DrillStep("held", True, "0 request(s) got through in the 2 s after activation; 1 call(s) waiting at "
                     "the gate", 2301.0)

    def _drill_picture(self, world, steps, *, frozen: bool, report=None):
        since = world.seeded_at

        async def show(pilot):
            if frozen:
                hold(world.engine, ARRAKEEN, "kill-switch drill", ADMIN, since)
            await fleet_loaded(pilot)
            pilot.app.open_killswitch()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, KillSwitchScreen)
                                    and pilot.app.screen, "the kill switch screen")
            await wait_for(pilot, lambda: "Kill switch" in title(screen), "the state")
            screen.drill_begin(ARRAKEEN)
            for step in steps:
                screen.drill_step(step)
            if report is not None:
                screen.drill_end(report)
            await pilot.pause()

        return show

    def test_drill_in_progress(self, world, admin, snap_compare):
        """A drill holding Arrakeen: the title says 'Kill switch ON for 1 scope(s)', the table lists
        the community frozen 'just now' by dee-admin for 'kill-switch drill', and the live log below
        shows 'Drill running' with work, activate (each part's time) and held (0 requests through,
        1 waiting), all ok; release and resumed are still to come."""
        try:
            assert snap_compare(console(world, operator=ADMIN), terminal_size=SIZE, run_before=self._drill_picture(
                world, (self.WORK, self.ACTIVATE, self.HELD), frozen=True))
        finally:
            unhold(world.engine, ARRAKEEN)

    def test_drill_finished(self, world, admin, snap_compare):
        """The same drill finished: 'Kill switch off' again, the log headed 'Drill passed' with all
        five steps ok (release, then resumed with 2 reads through again) and the result line
        listing each step's time."""
        steps = (self.WORK, self.ACTIVATE, self.HELD, DrillStep("release", True, "released", 41.0),
                 DrillStep("resumed", True, "2 read(s) got through again", 401.0))
        report = DrillReport(ARRAKEEN, ADMIN, world.seeded_at, list(steps), passed=True)
        assert snap_compare(console(world, operator=ADMIN), terminal_size=SIZE, run_before=self._drill_picture(
            world, steps, frozen=False, report=report))

    def test_audit_with_a_broken_chain(self, world, snap_compare):
        """The audit trail of a community made for this picture ('Dune Sea'): the title reads
        'Chain BROKEN (4 entries of Dune Sea): row 2 was edited: its content no longer matches its
        hash'; the table lists rows 1 to 4 ('just now'), row 2 with the edited payload
        {"promoted": 99}."""
        engine = world.engine
        cid = "00000000-0000-4000-8000-00000000a0ff"
        with engine.db.platform():
            RestoreRepository(engine.db).insert_community(uuid.UUID(cid), {
                "name": "Dune Sea", "guild_id": "100000000000000099", "theme_id": "basic",
                "subscription_tier": "free"})
        with engine.db.tenant(cid):
            for actor, action, payload in (("seed", "community.created", {"theme": "basic"}),
                                           ("sync", "eligibility.synced", {"promoted": 1}),
                                           ("dee-admin", "badge.awarded", {"badge": "contributor"}),
                                           ("sync", "eligibility.synced", {"promoted": 0})):
                engine.repos.audit.append(actor, action, payload)
        conn = engine.db.owner_connection()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("UPDATE audit_log SET payload = %s WHERE community_id = %s AND seq = 2",
                        (json.dumps({"promoted": 99}), cid))
            cur.execute("SET session_replication_role = origin")

        async def show(pilot):
            await fleet_loaded(pilot)
            pilot.app.push_screen(AuditScreen(engine, cid, "Dune Sea"))
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, AuditScreen) and pilot.app.screen,
                                    "the audit screen")
            await wait_for(pilot, lambda: "Chain" in title(screen) and screen.entries, "the verification")

        try:
            assert snap_compare(console(world), terminal_size=SIZE, run_before=show)
        finally:
            with conn.cursor() as cur:
                cur.execute("SET session_replication_role = replica")
                cur.execute("DELETE FROM audit_log WHERE community_id = %s", (cid,))
                cur.execute("DELETE FROM audit_heads WHERE chain = %s", (cid,))
                cur.execute("DELETE FROM communities WHERE id = %s", (cid,))
                cur.execute("SET session_replication_role = origin")
            conn.close()


@pytest.mark.anyio
async def test_the_fleet_marks_frozen_communities_and_waiting_approvals(world):
    import time

    engine = world.engine
    hold(engine, CALADAN, "marker test", "test", time.time())
    request = engine.approvals.request_strip(CALADAN, strips=2, tier_holders=2, members=["1", "2"],
                                             requested_by="sync")
    try:
        async with console(world).run_test(size=SIZE) as pilot:
            table = await fleet_loaded(pilot)
            names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
            assert "❄ Caladan · 1 to approve" in names and "Arrakeen" in names  # only Caladan is marked
            pilot.app.screen.action_refresh()
            items = pilot.app.screen.query_one("#health-items")
            text = await wait_for(pilot, lambda: "kill switch" in str(items.render()) and str(items.render()),
                                  "the health check")
            assert "ON: 1 community(s)" in text
    finally:
        unhold(engine, CALADAN)
        with engine.db.platform() as tx:  # a process asked: nobody can cancel it; it is closed as expired
            tx.execute("UPDATE approval_requests SET status = 'expired', decided_at = now() WHERE id = %s",
                       (request.id,))


@pytest.mark.anyio
async def test_signing_keys_and_rotation_by_a_platform_admin_only(world, admin):
    from arrakis_tui.screens.signing import SigningScreen

    engine = world.engine
    engine.signing.sign("platform", b"make sure the platform key exists")
    if not any(o.name == "eve-auditor" for o in engine.operators.list()):
        engine.operators.add("eve-auditor", ["auditor"], actor="test")
    for operator, expected in (("eve-auditor", "only a platform admin may rotate"), (ADMIN, "now signs with version")):
        async with console(world, operator=operator).run_test(size=SIZE) as pilot:
            await fleet_loaded(pilot)
            pilot.app.open_signing()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, SigningScreen) and pilot.app.screen,
                                    "the signing screen")
            table = screen.query_one("#keys")
            await wait_for(pilot, lambda: table.row_count, "the keys")
            assert str(table.get_row_at(0)[0]) == "platform" and table.row_count == 4  # and three communities
            assert all("signs" in str(table.get_row_at(i)[5]) for i in range(table.row_count))
            before = engine.signing.status(["platform"])[0]["latest_version"]
            await pilot.press("o")
            code = (reenrol(engine, ADMIN, fake=world.discord).backup_codes[0] if operator == ADMIN else "123456")
            await answer(pilot, code)
            await wait_for(pilot, lambda: expected in result(screen), "the answer")
            after = engine.signing.status(["platform"])[0]["latest_version"]
            assert after == (before + 1 if operator == ADMIN else before)


@pytest.mark.anyio
async def test_a_broken_chain_is_shown_with_where_it_breaks(world):
    engine = world.engine
    with engine.db.platform():
        engine.repos.audit.append("test", "platform.check", {"n": 1})
        last = engine.repos.audit.entries(None, limit=1)[-1]
    engine.audit_check.digest()  # anchored outside the database before the tampering
    conn = engine.db.owner_connection()
    conn.autocommit = True

    def tamper(payload) -> None:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")
            cur.execute("UPDATE audit_log SET payload = %s WHERE community_id IS NULL AND seq = %s",
                        (json.dumps(payload), last.seq))
            cur.execute("SET session_replication_role = origin")

    try:
        tamper({"n": 2})
        async with console(world).run_test(size=SIZE) as pilot:
            await fleet_loaded(pilot)
            pilot.app.open_audit()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, AuditScreen) and pilot.app.screen,
                                    "the audit screen")
            text = await wait_for(pilot, lambda: "Chain" in title(screen) and title(screen), "the verification")
            assert "Chain BROKEN" in text and f"row {last.seq} was edited" in text
    finally:
        tamper(last.payload)
        conn.close()
    engine.audit_check.digest()  # rows the console wrote meanwhile are anchored too
    assert engine.audit_check.verify(None).ok


@pytest.mark.anyio
@pytest.mark.slow
async def test_a_drill_runs_step_by_step_and_is_kept(world, admin):
    from tests.tui.conftest import ARRAKEEN

    engine = world.engine
    codes = reenrol(engine, ADMIN, fake=world.discord).backup_codes
    try:
        async with console(world, operator=ADMIN).run_test(size=SIZE) as pilot:
            await fleet_loaded(pilot)
            pilot.app.open_killswitch()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, KillSwitchScreen) and pilot.app.screen,
                                    "the kill switch screen")
            await wait_for(pilot, lambda: "Kill switch" in title(screen), "the state")
            await pilot.press("d")
            await answer(pilot, ARRAKEEN)
            await answer(pilot, codes[0])
            drill = screen.query_one("#drill")
            await wait_for(pilot, lambda: "held" in str(drill.render()), "the held step", timeout=20)
            assert "Kill switch ON" in title(screen)  # shown live while the drill holds the community
            await answer(pilot, codes[1])  # the release code, asked for when it is time
            await wait_for(pilot, lambda: "Drill passed" in result(screen) or "FAILED" in result(screen),
                           "the end of the drill", timeout=30)
            text = str(drill.render())
            assert "Drill passed" in result(screen), text
            for step in ("work", "activate", "held", "release", "resumed"):
                assert step in text
            assert "0 request(s) got through" in text
        past = engine.drill.past()
        assert past and past[0]["passed"] and past[0]["community_id"] == ARRAKEEN
        assert [s["step"] for s in past[0]["steps"]] == ["work", "activate", "held", "release", "resumed"]
    finally:
        engine.freeze.unfreeze(ARRAKEEN)
        engine.redis.hdel("arrakis:killswitch:active", f"community:{ARRAKEEN}")
        engine.signing.restore(f"community-{ARRAKEEN}")
