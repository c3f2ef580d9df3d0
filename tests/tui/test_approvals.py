"""The approvals screens: what waits, one request in full, approve (with a code for high risk),
reject with a reason, self-approval refused, and a bell when a new request arrives."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from arrakis_engine.policy.approvals import ApprovalService
from arrakis_tui.dialogs.prompt import PromptDialog
from arrakis_tui.screens.approvals import ApprovalScreen, ApprovalsScreen
from tests.fixtures.operators import add_operator, reenrol, secret_of
from tests.tui.conftest import SIZE, console, fleet_loaded, wait_for

REQUESTER, APPROVER, SECOND = "ada-requester", "bea-approver", "cyd-approver"


@pytest.fixture(scope="module")
def desk(world, tmp_path_factory):
    """Operators in the console's world, and a way to open requests at the world's fixed time (so
    ages and expiry read the same in every picture)."""
    engine = world.engine
    secrets, backups = {}, {}
    for name, role in ((REQUESTER, "approver"), (APPROVER, "approver"), (SECOND, "approver")):
        if not any(o.name == name for o in engine.operators.list()):
            enrolment = add_operator(engine, name, [role], fake=world.discord)
        else:
            enrolment = reenrol(engine, name, fake=world.discord)
        secrets[name] = parse_qs(urlparse(enrolment.uri).query)["secret"][0]
        backups[name] = list(enrolment.backup_codes)

    def codes(name: str) -> str:
        """One of ``name``'s backup codes (every answer and submission takes a code; a new
        enrolment refills them)."""
        if not backups[name]:
            enrolment = reenrol(engine, name, fake=world.discord)
            secrets[name] = parse_qs(urlparse(enrolment.uri).query)["secret"][0]
            backups[name] = list(enrolment.backup_codes)
        return backups[name].pop()
    service = ApprovalService(engine.db, engine.repos, engine.policy_gate, engine.operators, engine.mfa,
                              clock=world.clock)
    folder = tmp_path_factory.mktemp("plans")

    def open_request(name: str, changes: list[dict]) -> str:
        path = folder / f"{name}.json"
        path.write_text(json.dumps({"format_version": "1.2", "resource_changes": changes}))
        return service.submit(path, None, requested_by=REQUESTER, title=name, code=codes(REQUESTER)).id

    open_request.codes = codes
    open_request.cancel = lambda rid: service.cancel(rid, by=REQUESTER, code=codes(REQUESTER))
    yield open_request, secrets
    for r in service.list("pending"):
        if r.requested_by in backups:
            service.cancel(r.id, by=r.requested_by, code=codes(r.requested_by))


def security_rule(address="aws_security_group_rule.https"):
    return {"address": address, "mode": "managed", "type": "aws_security_group_rule",
            "change": {"actions": ["create"], "before": None, "after": {}}}


def drop_staging():
    return {"address": "module.k8s.kubernetes_namespace.staging", "mode": "managed", "type": "kubernetes_namespace",
            "change": {"actions": ["delete"], "before": {"metadata": [{"name": "staging"}]}, "after": None}}


def result(screen) -> str:
    return str(screen.query_one("#result").render())


async def open_request(pilot, rid: str) -> ApprovalScreen:
    await fleet_loaded(pilot)
    pilot.app.open_approval(rid)
    screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen) and pilot.app.screen,
                            "the request")
    await wait_for(pilot, lambda: screen.request is not None, "the request to load")
    return screen


@pytest.mark.anyio
async def test_the_list_shows_what_waits_and_opens_a_request(world, desk):
    open_req, _ = desk
    rid = open_req("Open HTTPS to the web tier", [security_rule()])
    try:
        async with console(world).run_test(size=SIZE) as pilot:
            await fleet_loaded(pilot)
            await pilot.press("p")
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalsScreen) and pilot.app.screen,
                                    "the approvals screen")
            table = screen.query_one("#approvals-table")
            await wait_for(pilot, lambda: table.row_count, "the requests")
            row = [str(c) for c in table.get_row(rid)]
            assert row[:6] == ["plan", "Open HTTPS to the web tier", REQUESTER, "just now", "24 h 00 min", "review"]
            table.move_cursor(row=table.get_row_index(rid))
            await pilot.press("enter")
            detail = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalScreen) and pilot.app.screen,
                                    "the request")
            await wait_for(pilot, lambda: detail.request is not None, "the request to load")
            text = str(detail.query_one("#approval-detail").render())
            assert "WARN_SECURITY_GROUP_CHANGE" in text and "resource type" in text and "approval.requested" in text
    finally:
        open_req.cancel(rid)


@pytest.mark.anyio
async def test_approve_with_a_reason_and_self_approval_refused(world, desk):
    open_req, _ = desk
    rid = open_req("Second rule", [security_rule("aws_security_group_rule.ssh")])
    async with console(world, operator=REQUESTER).run_test(size=SIZE) as pilot:
        screen = await open_request(pilot, rid)
        await pilot.press("a")
        text = await wait_for(pilot, lambda: "Not possible" in result(screen) and result(screen), "the refusal")
        assert "asked for this change and may not approve it" in text
        assert not isinstance(pilot.app.screen, PromptDialog)  # no code asked for an answer that cannot count
    async with console(world, operator=APPROVER).run_test(size=SIZE) as pilot:
        screen = await open_request(pilot, rid)
        await pilot.press("a")
        # Low risk too: the code first (a name proves nothing), then an optional reason.
        code = await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog) and pilot.app.screen,
                              "the code prompt")
        assert code.secret
        await pilot.press(*open_req.codes(APPROVER), "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog) and not pilot.app.screen.secret,
                       "the reason prompt")
        await pilot.press(*"checked with the team", "enter")
        await wait_for(pilot, lambda: "Approved by" in result(screen), "the approval")
    done = world.engine.approvals.get(rid)
    assert (done.status, done.decided_by, done.reason) == ("approved", APPROVER, "checked with the team")


@pytest.mark.anyio
async def test_high_risk_asks_for_the_code_and_a_wrong_one_is_refused(world, desk):
    open_req, secrets = desk
    rid = open_req("Drop the staging namespace", [drop_staging()])
    async with console(world, operator=SECOND).run_test(size=SIZE) as pilot:
        screen = await open_request(pilot, rid)
        await pilot.press("a")
        dialog = await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog) and pilot.app.screen,
                                "the code prompt")
        assert dialog.secret
        await pilot.press(*"000000", "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog) and not pilot.app.screen.secret,
                       "the reason prompt")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Not done" in result(screen), "the refusal")
        assert world.engine.approvals.get(rid).status == "pending"
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog), "the code prompt again")
        await pilot.press(*pyotp.TOTP(secrets[SECOND]).now(), "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog) and not pilot.app.screen.secret,
                       "the reason prompt")
        await pilot.press("enter")  # no reason
        await wait_for(pilot, lambda: "Approved by" in result(screen), "the approval")
    assert world.engine.approvals.get(rid).mfa == "totp"


@pytest.mark.anyio
async def test_reject_asks_why(world, desk):
    open_req, _ = desk
    rid = open_req("Third rule", [security_rule("aws_security_group_rule.rdp")])
    async with console(world, operator=APPROVER).run_test(size=SIZE) as pilot:
        screen = await open_request(pilot, rid)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog), "the reason prompt")
        await pilot.press("enter")  # no reason: the dialog says so and stays
        assert isinstance(pilot.app.screen, PromptDialog)
        await pilot.press(*"RDP stays closed", "enter")
        code = await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog) and pilot.app.screen.secret
                              and pilot.app.screen, "the code prompt")
        await pilot.press(*open_req.codes(APPROVER), "enter")
        await wait_for(pilot, lambda: "Rejected by" in result(screen), "the rejection")
    assert world.engine.approvals.get(rid).reason == "RDP stays closed"


@pytest.mark.anyio
async def test_a_new_request_rings_the_bell(world, desk):
    open_req, _ = desk
    app = console(world, approvals_every=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await fleet_loaded(pilot)
        await pilot.pause(0.5)  # the first look only learns what is there
        rid = open_req("Late change", [security_rule("aws_security_group_rule.late")])
        note = await wait_for(pilot, lambda: [n for n in app._notifications if "New approval request" in n.message],
                              "the notification")
        assert "Late change" in note[0].message
    open_req.cancel(rid)


class TestApprovalPictures:
    def test_approvals_list(self, world, desk, snap_compare):
        """The approvals screen with one plan waiting: 'plan · Open HTTPS (list) · ada-requester ·
        just now · 24 h 00 min · review · 42 medium' under '1 request(s) waiting for an approver'."""
        open_req, _ = desk
        rid = open_req("Open HTTPS (list)", [security_rule("aws_security_group_rule.list")])

        async def show(pilot):
            await fleet_loaded(pilot)
            pilot.app.open_approvals()
            screen = await wait_for(pilot, lambda: isinstance(pilot.app.screen, ApprovalsScreen) and pilot.app.screen,
                                    "the approvals screen")
            await wait_for(pilot, lambda: screen.query_one("#approvals-table").row_count, "the requests")

        try:
            assert snap_compare(console(world), terminal_size=SIZE, run_before=show)
        finally:
            open_req.cancel(rid)

    def test_approval_detail(self, world, desk, snap_compare):
        """A plan waiting for review at 120x36: title line 'Open HTTPS again · plan · asked by
        ada-requester just now · risk .. medium · pending, expires in 24 h 00 min'; the risk factors
        with their weights, the WARN_SECURITY_GROUP_CHANGE warning, the resource that drove the
        score under 'create', 'not estimated' cost, and the history line 'approval.requested'."""
        open_req, _ = desk
        rid = open_req("Open HTTPS again", [security_rule("aws_security_group_rule.again")])

        async def show(pilot):
            await open_request(pilot, rid)

        try:
            assert snap_compare(console(world), terminal_size=SIZE, run_before=show)
        finally:
            open_req.cancel(rid)

    def test_code_prompt(self, world, desk, snap_compare):
        """Approving a high-risk request: the modal 'Approve: your code' over the request, with a
        hidden input and Approve / Cancel buttons."""
        open_req, _ = desk
        rid = open_req("Drop staging (picture)", [drop_staging()])

        async def prompt(pilot):
            await open_request(pilot, rid)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptDialog), "the code prompt")
            await pilot.press(*"123")

        try:
            assert snap_compare(console(world, operator=APPROVER), terminal_size=SIZE, run_before=prompt)
        finally:
            open_req.cancel(rid)
