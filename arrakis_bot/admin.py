"""Admin commands (Manage Server in that guild, or a platform operator): /arrakis status,
/arrakis export, /badge award and /badge revoke."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import interactions
from interactions import AutocompleteContext, OptionType, SlashContext, slash_option

from .common import answer, engine_call, require_admin, require_guild

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

ADMIN_ONLY = interactions.Permissions.MANAGE_GUILD


def _when(t) -> str:
    return f"<t:{int(t.timestamp())}:R>" if t else "never"


def code_modal(title: str, custom_id: str) -> interactions.Modal:
    return interactions.Modal(
        interactions.ShortText(label="6 digits from your authenticator (or backup)", custom_id="code",
                               required=True, min_length=6, max_length=20, placeholder="123456"),
        title=title, custom_id=custom_id)


def reconcile_reply(report) -> dict:
    lines = [report.summary()]
    for a in report.actions[:15]:
        lines.append(f"• {a.op} {a.kind} {a.manifest_id}" + (f": {', '.join(a.changes)}" if a.op == "update" else ""))
    if len(report.actions) > 15:
        lines.append(f"… and {len(report.actions) - 15} more")
    return {"content": "\n".join(lines)[:1900]}


class Admin(interactions.Extension):
    def __init__(self, bot: interactions.Client, engine: Engine) -> None:
        self.engine = engine

    arrakis = interactions.SlashCommand(name="arrakis", description="Run this community: status, sync, export",
                                        default_member_permissions=ADMIN_ONLY, dm_permission=False)

    @arrakis.subcommand(sub_cmd_name="status",
                        sub_cmd_description="Last sync, last synthesis, drift, waiting approvals, where Discord is")
    async def status(self, ctx: SlashContext):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)

        def render(s):
            e = interactions.Embed(title=f"{s.name}: status", color=0x4169E1)
            e.add_field("Members", str(s.members), inline=True)
            e.add_field("Theme", s.theme, inline=True)
            e.add_field("Last sync", _when(s.last_sync), inline=True)
            e.add_field("Last synthesis", _when(s.last_synthesis), inline=True)
            e.add_field("Drift", s.drift, inline=True)
            e.add_field("Waiting approvals", str(s.approvals), inline=True)
            if s.unknown_members:
                e.add_field("Unknown", f"{s.unknown_members} member(s) could not be read at the last sync; their "
                            "roles were left as they were", inline=False)
            if s.frozen:
                e.add_field("Kill switch", "ON: Discord changes are held until a platform operator releases it",
                            inline=False)
            tiers = ", ".join(f"{t} {n}" for t, n in s.tiers.items() if n)
            e.add_field("Tiers", tiers or "nobody has a tier yet", inline=False)
            e.set_footer(f"Roles are kept in step on {s.discord}")
            return {"embeds": [e]}

        await answer(ctx, self.engine.members.status, guild, render=render)

    @arrakis.subcommand(sub_cmd_name="export", sub_cmd_description="Members, tiers and badges as a CSV file")
    async def export(self, ctx: SlashContext):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)

        def render(result):
            name, data = result
            rows = data.count(b"\n") - 1
            return {"content": f"{rows} member(s).", "file": interactions.File(io.BytesIO(data), file_name=name)}

        await answer(ctx, self.engine.members.export_csv, guild, render=render)

    @arrakis.subcommand(sub_cmd_name="sync",
                        sub_cmd_description="Read every member's holdings now and update the roles that change")
    async def sync(self, ctx: SlashContext):
        guild = require_guild(ctx)
        actor = await require_admin(ctx, self.engine)

        def render(r):
            lines = [r.summary]
            if r.paused:
                lines.append(f"⏸️ Paused: {r.paused.strips} of {r.paused.tier_holders} members would lose their "
                             "tier role at once, which is more often a bad read than a market crash. A platform "
                             "approver answers it (/arrakis approve-strip, or the CLI).")
            else:
                lines.append(f"{r.role_updates} member role update(s) queued.")
            if r.unknown:
                lines.append(f"{r.unknown} member(s) could not be read: their roles were left as they were.")
            return {"content": "\n".join(lines)}

        await answer(ctx, self.engine.members.sync_now, guild, actor=actor, render=render)

    @arrakis.subcommand(sub_cmd_name="reconcile",
                        sub_cmd_description="Compare the plan with Discord and fix what drifted (a dry run first)")
    @slash_option(name="dry_run", description="Only show what would change (the default)", opt_type=OptionType.BOOLEAN,
                  required=False)
    @slash_option(name="destructive", description="Also delete roles and channels Arrakis made that the plan dropped "
                  "(needs an operator's code)", opt_type=OptionType.BOOLEAN, required=False)
    async def reconcile(self, ctx: SlashContext, dry_run: bool = True, destructive: bool = False):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)
        if destructive and not dry_run:
            return await ctx.send_modal(code_modal("Destructive reconcile: your code", "mfa:reconcile"))
        await answer(ctx, self.engine.members.reconcile, guild, dry_run=dry_run, destructive=destructive,
                     render=reconcile_reply)

    @arrakis.subcommand(sub_cmd_name="approve-strip",
                        sub_cmd_description="Approve the paused sync that would take many members' tier roles")
    async def approve_strip(self, ctx: SlashContext):
        require_guild(ctx)
        await require_admin(ctx, self.engine)
        await ctx.send_modal(code_modal("Approve the mass strip: your code", "mfa:approve-strip"))

    @interactions.modal_callback("mfa:reconcile")
    async def reconcile_with_code(self, ctx: interactions.ModalContext):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)
        await answer(ctx, self.engine.members.reconcile, guild, dry_run=False, destructive=True,
                     discord_user_id=str(ctx.author_id), code=ctx.responses.get("code", ""), render=reconcile_reply)

    @interactions.modal_callback("mfa:approve-strip")
    async def approve_with_code(self, ctx: interactions.ModalContext):
        guild = require_guild(ctx)
        await require_admin(ctx, self.engine)
        await answer(ctx, self.engine.members.approve_strip, guild, discord_user_id=str(ctx.author_id),
                     code=ctx.responses.get("code", ""),
                     render=lambda req: {"content": f"Approved ({req.id}): the member sync runs now on the queue."})

    badge = interactions.SlashCommand(name="badge", description="Award or revoke a badge given by admins",
                                      default_member_permissions=ADMIN_ONLY, dm_permission=False)

    @badge.subcommand(sub_cmd_name="award", sub_cmd_description="Give a member a badge that admins award")
    @slash_option(name="member", description="Who gets it", opt_type=OptionType.USER, required=True)
    @slash_option(name="badge", description="Which badge", opt_type=OptionType.STRING, required=True,
                  autocomplete=True)
    async def award(self, ctx: SlashContext, member: interactions.User, badge: str):
        guild = require_guild(ctx)
        actor = await require_admin(ctx, self.engine)
        await answer(ctx, self.engine.members.award, guild, str(member.id), badge, actor=actor,
                     render=lambda name: {"content": f"<@{member.id}> now holds {name}.",
                                          "allowed_mentions": interactions.AllowedMentions.none()})

    @badge.subcommand(sub_cmd_name="revoke", sub_cmd_description="Take back a badge that admins award")
    @slash_option(name="member", description="From whom", opt_type=OptionType.USER, required=True)
    @slash_option(name="badge", description="Which badge", opt_type=OptionType.STRING, required=True,
                  autocomplete=True)
    @slash_option(name="reason", description="Why (kept in the audit log)", opt_type=OptionType.STRING,
                  required=False, max_length=200)
    async def revoke(self, ctx: SlashContext, member: interactions.User, badge: str, reason: str = ""):
        guild = require_guild(ctx)
        actor = await require_admin(ctx, self.engine)
        await answer(ctx, self.engine.members.revoke, guild, str(member.id), badge, actor=actor, reason=reason,
                     render=lambda name: {"content": f"{name} was taken back from <@{member.id}>.",
                                          "allowed_mentions": interactions.AllowedMentions.none()})

    @award.autocomplete("badge")
    async def award_badges(self, ctx: AutocompleteContext):
        await self._badge_choices(ctx)

    @revoke.autocomplete("badge")
    async def revoke_badges(self, ctx: AutocompleteContext):
        await self._badge_choices(ctx)

    async def _badge_choices(self, ctx: AutocompleteContext) -> None:
        try:
            badges = await engine_call(self.engine.members.manual_badges, str(ctx.guild_id))
        except Exception:
            badges = []
        typed = (ctx.input_text or "").lower()
        await ctx.send([{"name": name, "value": bid} for bid, name in badges if typed in name.lower()][:25])
