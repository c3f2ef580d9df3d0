"""/onboard and /resume: the 8-step wizard of the engine's wizard service, drawn as one ephemeral
message that each click or form updates in place.

Every button and menu carries the session id and the step it was drawn for
(``wiz:<session>:<step>:<action>``), so a click on an out-of-date message is refused by the
engine instead of being read as the next step's answer; the interaction id is the submission id,
so a retried click counts once. A validation error redraws the same step with what to fix.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

import interactions
from interactions import (ActionRow, Button, ButtonStyle, ComponentContext, Modal, ModalContext, OptionType,
                          ParagraphText, ShortText, SlashContext, StringSelectMenu, StringSelectOption,
                          component_callback, modal_callback, slash_command, slash_option)

from arrakis_engine.errors import ArrakisError, Conflict, NotFound, ValidationError
from arrakis_engine.domain.chain import CHAINS
from arrakis_engine.domain.wizard_session import WizardSession
from arrakis_engine.wizard.model import CHANNEL_TEMPLATES, TEMPLATES, tier_names

from .common import engine_call, in_time, plain_error, require_admin, require_guild

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

log = logging.getLogger("arrakis.bot")

STEPS = {"INIT": (1, "Welcome"), "CHAIN_SELECT": (2, "Chain"), "ASSET_CONFIG": (3, "Asset"),
         "ELIGIBILITY_RULES": (4, "Tiers"), "ROLE_MAPPING": (5, "Roles"), "CHANNEL_STRUCTURE": (6, "Channels"),
         "REVIEW": (7, "Review"), "DEPLOY": (8, "Deploy"), "COMPLETE": (8, "Done"), "FAILED": (8, "Not deployed")}
HELP = {
    "INIT": "This sets up Arrakis for this server in 8 short steps: the chain, the asset that ranks members, "
            "the tiers, their roles, the channels, a review, then the deploy. Nothing changes in Discord until "
            "you deploy. The session keeps for 15 minutes after your last click; /resume picks it up.",
    "CHAIN_SELECT": "Which chain holds the asset that decides who belongs?",
    "ASSET_CONFIG": "What kind of asset ranks your members? A form asks for its contract address next.",
    "ELIGIBILITY_RULES": "Which tiers? basic: Gold 1-10, Silver 11-50, Bronze 51-100. sietch: the nine Sietch "
                         "tiers (premium plan). custom: your own ranges. To also require holdings or a role "
                         "for membership, pick \"all of\" or \"any of\" below (up to 5 requirements).",
    "ROLE_MAPPING": "Each tier gets a Discord role: Arrakis can create them, or use roles you already have.",
    "CHANNEL_STRUCTURE": "Which channels should Arrakis lay out (gated by tier where the template says so)?",
    "REVIEW": "Check what will be set up. Deploy creates the roles and channels, paced under Discord's limits.",
}
COLOUR = 0xD4A017
PROGRESS_EVERY = 2.0
FOLLOW_FOR = 14 * 60.0  # an interaction's token lasts 15 minutes
KINDS = (("native", "The chain's own coin"), ("erc20", "A token (ERC-20)"), ("erc721", "An NFT collection (ERC-721)"),
         ("erc1155", "A multi-token (ERC-1155)"))
CUSTOM_ID = re.compile(r"^wiz:(?P<sid>[0-9a-f]{32}):(?P<state>[A-Z_]+):(?P<action>[a-z-]+)$")
MODAL_ID = re.compile(r"^wizm:(?P<sid>[0-9a-f]{32}):(?P<state>[A-Z_]+):(?P<what>[a-z0-9-]+)$")


def _cid(session: WizardSession, action: str) -> str:
    return f"wiz:{session.id}:{session.state}:{action}"


def _nav(session: WizardSession, *, back: bool = True) -> list:
    row = []
    if back and session.state not in ("INIT",):
        row.append(Button(style=ButtonStyle.SECONDARY, label="Back", custom_id=_cid(session, "back")))
    row.append(Button(style=ButtonStyle.DANGER, label="Cancel", custom_id=_cid(session, "cancel")))
    return row


def render(session: WizardSession, *, summary: list[str] | None = None, note: str | None = None,
           progress: str | None = None) -> dict:
    """The wizard message for ``session``: ``embeds`` and ``components`` for send or edit."""
    state = session.state
    n, title = STEPS[state]
    e = interactions.Embed(title=f"Set up Arrakis · step {n} of 8: {title}", color=COLOUR,
                           description=HELP.get(state, ""))
    rows: list = []
    if state == "INIT":
        e.add_field("Community", session.community_name, inline=False)
        rows.append(ActionRow(Button(style=ButtonStyle.PRIMARY, label="Start", custom_id=_cid(session, "next")),
                              *_nav(session, back=False)))
    elif state == "CHAIN_SELECT":
        rows.append(ActionRow(StringSelectMenu(*[StringSelectOption(label=c, value=c) for c in CHAINS],
                                               custom_id=_cid(session, "chain"), placeholder="Choose the chain")))
        rows.append(ActionRow(*_nav(session)))
    elif state == "ASSET_CONFIG":
        rows.append(ActionRow(StringSelectMenu(*[StringSelectOption(label=label, value=k) for k, label in KINDS],
                                               custom_id=_cid(session, "kind"), placeholder="Choose the kind")))
        rows.append(ActionRow(*_nav(session)))
    elif state == "ELIGIBILITY_RULES":
        rows.append(ActionRow(StringSelectMenu(*[StringSelectOption(label=t, value=t) for t in TEMPLATES],
                                               custom_id=_cid(session, "rules"), placeholder="Choose the tiers")))
        rows.append(ActionRow(StringSelectMenu(
            StringSelectOption(label="Members must meet all of…", value="all"),
            StringSelectOption(label="Members must meet any of…", value="any"),
            custom_id=_cid(session, "rule"), placeholder="Or: tiers plus a membership rule")))
        rows.append(ActionRow(*_nav(session)))
    elif state == "ROLE_MAPPING":
        tiers = tier_names(session.data["rules"])
        e.add_field("Tiers", ", ".join(tiers), inline=False)
        rows.append(ActionRow(
            Button(style=ButtonStyle.PRIMARY, label="Create a role for every tier", custom_id=_cid(session, "create")),
            Button(style=ButtonStyle.SECONDARY, label="Use roles I have…", custom_id=_cid(session, "map")),
            *_nav(session)))
    elif state == "CHANNEL_STRUCTURE":
        rows.append(ActionRow(StringSelectMenu(*[StringSelectOption(label=t, value=t) for t in CHANNEL_TEMPLATES],
                                               custom_id=_cid(session, "channels"),
                                               placeholder="Choose the channel layout")))
        rows.append(ActionRow(*_nav(session)))
    elif state == "REVIEW":
        e.add_field("What will be set up", "\n".join(summary or []) or "nothing", inline=False)
        for w in session.warnings or []:
            e.add_field("Note", w, inline=False)
        existing = session.existing_community
        label = "Deploy (update the existing community)" if existing and existing.get("session") != session.id \
            else "Deploy"
        action = "update" if label != "Deploy" else "deploy"
        rows.append(ActionRow(Button(style=ButtonStyle.SUCCESS, label=label, custom_id=_cid(session, action)),
                              *_nav(session)))
    elif state in ("DEPLOY", "COMPLETE"):
        deploy = session.deploy or {}
        e.description = progress or ("Deployed: the roles and channels are being created." if state == "COMPLETE"
                                     else "Deploying…")
        if deploy.get("manifest_version"):
            e.add_field("Plan", f"version {deploy['manifest_version']}", inline=True)
    elif state == "FAILED":
        e.description = f"Not deployed: {session.error or 'stopped'}."
        if session.error != "abandoned by the user":
            rows.append(ActionRow(Button(style=ButtonStyle.SECONDARY, label="Back to the review",
                                         custom_id=_cid(session, "back"))))
    if note:
        e.add_field("⚠️ To fix" if note.startswith("fix:") else "Note", note.removeprefix("fix: "), inline=False)
    e.set_footer(f"session {session.id[:8]}")
    return {"embeds": [e], "components": rows}


def _fix_note(exc: ValidationError) -> str:
    field = getattr(exc, "field", None)
    return f"fix: {exc.message}" + (f" (field: {field})" if field else "")


class Onboarding(interactions.Extension):
    def __init__(self, bot: interactions.Client, engine: Engine) -> None:
        self.engine = engine
        self.following: dict[str, asyncio.Task] = {}

    # --- the commands ---------------------------------------------------------------------------

    @slash_command(name="onboard", description="Set up Arrakis for this server, step by step",
                   default_member_permissions=interactions.Permissions.MANAGE_GUILD, dm_permission=False)
    @slash_option(name="name", description="The community's name (this server's name if left out)",
                  opt_type=OptionType.STRING, required=False, max_length=100)
    async def onboard(self, ctx: SlashContext, name: str | None = None):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)
        name = name or (ctx.guild.name if ctx.guild else None)
        session = await self._call(ctx, self.engine.wizard.start, guild, str(ctx.author_id), community_name=name)
        note = ("You already had a session here; it continues where you left it (Cancel, then /onboard, "
                "starts over).") if session.existing else None
        await ctx.send(ephemeral=True, **await self._render(session, note=note))

    @slash_command(name="resume", description="Pick up your setup where you left it (after a timeout or a restart)",
                   default_member_permissions=interactions.Permissions.MANAGE_GUILD, dm_permission=False)
    @slash_option(name="session", description="A session id (the footer shows its start); yours here if left out",
                  opt_type=OptionType.STRING, required=False, max_length=32)
    async def resume(self, ctx: SlashContext, session: str | None = None):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)
        session = await self._call(ctx, self.engine.wizard.find, guild, str(ctx.author_id), session)
        await ctx.send(ephemeral=True, **await self._render(session))
        if session.state == "COMPLETE" and session.deploy:
            self._follow(ctx, session)

    # --- clicks and forms -----------------------------------------------------------------------

    @component_callback(re.compile(r"^wiz:"))
    async def on_click(self, ctx: ComponentContext):
        m = CUSTOM_ID.match(ctx.custom_id)
        if m is None:
            return await ctx.send("This button is not from a wizard this bot knows.", ephemeral=True)
        sid, state, action = m["sid"], m["state"], m["action"]
        user = str(ctx.author_id)
        wizard = self.engine.wizard
        value = ctx.values[0] if ctx.values else None
        if action == "kind" and value != "native":
            return await ctx.send_modal(self._asset_modal(sid, state, value))
        if action == "rules" and value == "custom":
            return await ctx.send_modal(Modal(
                ParagraphText(label="One tier per line: name, ranks, colour", custom_id="tiers", required=True,
                              placeholder="Gold 1-10 #FFD700\nSilver 11-50 #C0C0C0\nBronze 51-100 #CD7F32",
                              max_length=2000),
                title="Your tiers", custom_id=f"wizm:{sid}:{state}:tiers"))
        if action == "rule" and value in ("all", "any"):
            return await ctx.send_modal(Modal(
                ShortText(label="Tiers: basic, standard or sietch", custom_id="template", required=True,
                          value="basic", max_length=16),
                ParagraphText(label=f"Requirements ({value} of), one per line, up to 5", custom_id="requirements",
                              required=True, max_length=1000,
                              placeholder="balance 0x… 1000 BGT\nnft 0x… 1\nerc1155 0x… 7 2\nrole 123456789012345678"),
                title=f"Membership: {value} of", custom_id=f"wizm:{sid}:{state}:rule-{value}"))
        if action == "channels" and value == "custom":
            return await ctx.send_modal(Modal(
                ParagraphText(label="One category per line: NAME: chan-a, chan-b", custom_id="categories",
                              required=True, placeholder="INFO: rules, announcements\nHOLDERS: lounge",
                              max_length=2000),
                title="Your channels", custom_id=f"wizm:{sid}:{state}:channels"))
        if action == "map":
            session = await asyncio.wait_for(engine_call(wizard.show, sid, user), timeout=2)
            lines = "\n".join(f"{t} = create" for t in tier_names(session.data["rules"]))
            return await ctx.send_modal(Modal(
                ParagraphText(label="Tier = role id (or create)", custom_id="roles", required=True, value=lines,
                              max_length=2000),
                title="Roles for the tiers", custom_id=f"wizm:{sid}:{state}:roles"))

        def act() -> dict:
            sub = str(ctx.id)
            if action == "next":
                return wizard.step(sid, user, None, submission_id=sub, expected_state=state)
            if action == "back":
                return wizard.back(sid, user, submission_id=sub, expected_state=state)
            if action == "cancel":
                return wizard.abandon(sid, user, expected_state=state)
            if action == "chain":
                return wizard.step(sid, user, {"chain": value}, submission_id=sub, expected_state=state)
            if action == "kind":
                return wizard.step(sid, user, {"assets": [{"kind": "native"}]}, submission_id=sub,
                                   expected_state=state)
            if action == "rules":
                return wizard.step(sid, user, {"template": value}, submission_id=sub, expected_state=state)
            if action == "create":
                session = wizard.show(sid, user)
                roles = {t: "create" for t in tier_names(session.data["rules"])}
                return wizard.step(sid, user, {"roles": roles}, submission_id=sub, expected_state=state)
            if action == "channels":
                return wizard.step(sid, user, {"channel_template": value}, submission_id=sub, expected_state=state)
            if action in ("deploy", "update"):
                return wizard.deploy(sid, user, update_existing=action == "update", expected_state=state)
            raise ValidationError(f"unknown wizard action {action!r}", field="action")

        await self._update(ctx, act, sid, user, slow=action in ("deploy", "update"))

    @modal_callback(re.compile(r"^wizm:"))
    async def on_form(self, ctx: ModalContext):
        m = MODAL_ID.match(ctx.custom_id)
        if m is None:
            return await ctx.send("This form is not from a wizard this bot knows.", ephemeral=True)
        sid, state, what = m["sid"], m["state"], m["what"]
        user, r = str(ctx.author_id), ctx.responses
        wizard = self.engine.wizard

        def act() -> dict:
            data = _form_data(what, r)
            return wizard.step(sid, user, data, submission_id=str(ctx.id), expected_state=state)

        await self._update(ctx, act, sid, user)

    # --- drawing ----------------------------------------------------------------------------------

    @staticmethod
    def _asset_modal(sid: str, state: str, kind: str) -> Modal:
        fields = [ShortText(label="Contract address (0x…)", custom_id="address", required=True, min_length=42,
                            max_length=42, placeholder="0x0000000000000000000000000000000000000000")]
        if kind == "erc20":
            fields.append(ShortText(label="Decimals (18 for most tokens)", custom_id="decimals", required=True,
                                    value="18", max_length=2))
        if kind == "erc1155":
            fields.append(ShortText(label="Token id", custom_id="token_id", required=True, max_length=78))
        fields.append(ShortText(label="Symbol (optional)", custom_id="symbol", required=False, max_length=16))
        return Modal(*fields, title=f"The {kind.upper()} asset", custom_id=f"wizm:{sid}:{state}:{kind}")

    async def _render(self, session: WizardSession, **kwargs) -> dict:
        summary = None
        if session.state == "REVIEW":
            summary = await engine_call(self.engine.wizard.summary, session)
        return render(session, summary=summary, **kwargs)

    async def _call(self, ctx, fn, *args, **kwargs):
        """An engine call for a slash command: defer if it is slow, ephemeral."""
        return await in_time(ctx, fn, *args, defer=lambda: ctx.defer(ephemeral=True), **kwargs)

    async def _update(self, ctx, act, sid: str, user: str, *, slow: bool = False) -> None:
        """Run ``act`` off the loop and redraw the wizard message in place (deferring first when
        the engine is slow, or for a form, whose message is edited rather than answered)."""
        if slow or isinstance(ctx, ModalContext):
            await ctx.defer(edit_origin=True)
        note = None
        try:
            session = await in_time(ctx, act, defer=lambda: ctx.defer(edit_origin=True))
        except ValidationError as exc:
            note = _fix_note(exc)
            session = await engine_call(self.engine.wizard.show, sid, user)
        except Conflict as exc:
            note = plain_error(exc)
            session = await engine_call(self.engine.wizard.show, sid, user)
        except NotFound as exc:
            return await self._edit(ctx, {"content": f"⚠️ {plain_error(exc)} (/onboard starts a new one)",
                                          "embeds": [], "components": []})
        payload = await self._render(session, note=note)
        await self._edit(ctx, payload)
        if session.state == "COMPLETE" and session.deploy:
            self._follow(ctx, session)

    async def _edit(self, ctx, payload: dict) -> None:
        if isinstance(ctx, ModalContext):
            await ctx.edit("@original", **payload)
        else:
            await ctx.edit_origin(**payload)

    # --- following a deploy ---------------------------------------------------------------------

    def _follow(self, ctx, session: WizardSession) -> None:
        """Edit the wizard message with the synthesis' progress until it is applied (or the
        interaction's token runs out)."""
        old = self.following.pop(session.id, None)
        if old:
            old.cancel()
        self.following[session.id] = asyncio.create_task(self._progress(ctx, session))

    async def _progress(self, ctx, session: WizardSession) -> None:
        cid = session.deploy["community_id"]
        loop = asyncio.get_running_loop()
        end = loop.time() + FOLLOW_FOR
        last = None
        try:
            baseline = None  # dead letters this community already had: only new ones are this deploy's
            while loop.time() < end:
                try:
                    progress = await engine_call(self.engine.wizard.deploy_progress, cid)
                    baseline = progress.dead if baseline is None else baseline
                    dead = progress.dead - baseline
                except ArrakisError as exc:
                    text = f"Could not read the progress: {plain_error(exc)}"
                else:
                    if progress.synthesized:
                        text = ("✅ Done: every role and channel of plan version "
                                f"{progress.manifest_version} is in place. /arrakis status shows it.")
                    elif dead:
                        text = (f"⚠️ {dead} step(s) failed after their retries; a platform operator has them "
                                "(dead letters). What was done stays done.")
                    elif progress.running:
                        eta = progress.eta_seconds
                        text = f"Creating roles and channels: {progress.done} of {progress.total} done" + (
                            f", about {int(eta)} s left" if eta else "")
                    else:
                        text = "Queued: waiting for a worker to start."
                if text != last:
                    await ctx.edit("@original", **render(session, progress=text))
                    last = text
                if text.startswith(("✅", "⚠️")):
                    return
                await asyncio.sleep(PROGRESS_EVERY)
        except Exception:  # the member dismissed the message, or the token expired
            log.info("stopped following the deploy of %s", cid, exc_info=True)
        finally:
            self.following.pop(session.id, None)


def _form_data(what: str, r: dict) -> dict:
    """A form's answers as the step's data (the engine validates them)."""
    if what in ("erc20", "erc721", "erc1155"):
        asset: dict = {"kind": what, "address": r.get("address", "").strip()}
        if what == "erc20":
            asset["decimals"] = _whole(r.get("decimals", ""), "assets[0].decimals")
        if what == "erc1155":
            asset["token_id"] = _whole(r.get("token_id", ""), "assets[0].token_id")
        if r.get("symbol"):
            asset["symbol"] = r["symbol"].strip()
        return {"assets": [asset]}
    if what == "tiers":
        tiers = []
        for i, line in enumerate(x for x in r.get("tiers", "").splitlines() if x.strip()):
            m = re.match(r"^\s*(?P<name>.+?)\s+(?P<lo>\d+)\s*-\s*(?P<hi>\d+|up)\s*(?P<colour>#[0-9A-Fa-f]{6})?\s*$",
                         line)
            if not m:
                raise ValidationError(f"line {i + 1} should look like 'Gold 1-10 #FFD700'", field=f"tiers[{i}]")
            tier = {"name": m["name"], "min_rank": int(m["lo"]), "max_rank": None if m["hi"] == "up" else int(m["hi"])}
            if m["colour"]:
                tier["colour"] = m["colour"]
            tiers.append(tier)
        return {"template": "custom", "tiers": tiers}
    if what in ("rule-all", "rule-any"):
        return {"template": r.get("template", "").strip().lower(),
                "rule": {what.removeprefix("rule-"): _requirements(r.get("requirements", ""))}}
    if what == "roles":
        roles = {}
        for i, line in enumerate(x for x in r.get("roles", "").splitlines() if x.strip()):
            if "=" not in line:
                raise ValidationError(f"line {i + 1} should look like 'Gold = 123456789012345678' or "
                                      "'Gold = create'", field="roles")
            name, value = (p.strip() for p in line.split("=", 1))
            roles[name] = value
        return {"roles": roles}
    if what == "channels":
        cats = []
        for i, line in enumerate(x for x in r.get("categories", "").splitlines() if x.strip()):
            if ":" not in line:
                raise ValidationError(f"line {i + 1} should look like 'INFO: rules, announcements'",
                                      field=f"categories[{i}]")
            name, chans = line.split(":", 1)
            cats.append({"name": name.strip(), "channels": [c.strip() for c in chans.split(",") if c.strip()]})
        return {"channel_template": "custom", "categories": cats}
    raise ValidationError(f"unknown form {what!r}", field="form")


_REQUIREMENT_SHAPES = ("'balance 0x… 1000 BGT' (or 'balance native 2'), 'nft 0x… [count]', "
                       "'erc1155 0x… token-id [count]' or 'role role-id'")


def _requirements(text: str) -> list[dict]:
    """The builder's lines as gating requirements (the engine validates the values)."""
    lines = [x.split() for x in text.splitlines() if x.strip()]
    if len(lines) > 5:
        raise ValidationError("at most 5 requirements here; `arrakis gate set` takes larger rules", field="rule")
    out = []
    for i, words in enumerate(lines):
        kind, args = words[0].lower(), words[1:]
        if kind == "balance" and len(args) in (2, 3):
            req = {"type": "balance", "address": args[0].lower() if args[0].lower() == "native" else args[0],
                   "min": args[1]}
            if len(args) == 3:
                req["symbol"] = args[2]
        elif kind == "nft" and len(args) in (1, 2):
            req = {"type": "nft", "address": args[0], **({"min": args[1]} if len(args) == 2 else {})}
        elif kind == "erc1155" and len(args) in (2, 3):
            req = {"type": "nft", "standard": "erc1155", "address": args[0], "token_id": args[1],
                   **({"min": args[2]} if len(args) == 3 else {})}
        elif kind == "role" and len(args) == 1:
            req = {"type": "discord_role", "role_id": args[0].strip("<@&>")}
        else:
            raise ValidationError(f"line {i + 1} should look like {_REQUIREMENT_SHAPES}", field="rule")
        out.append(req)
    return out


def _whole(text: str, field: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValidationError(f"{field} must be a whole number", field=field) from None
