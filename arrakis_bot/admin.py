"""Admin commands (Manage Server in that guild, or a platform operator): /arrakis status,
/arrakis export, /badge award and /badge revoke."""

from __future__ import annotations

import io

import interactions
from interactions import AutocompleteContext, OptionType, SlashContext, slash_option

from .common import answer, engine_call, require_admin, require_guild

ADMIN_ONLY = interactions.Permissions.MANAGE_GUILD


def _when(t) -> str:
    return f"<t:{int(t.timestamp())}:R>" if t else "never"


class Admin(interactions.Extension):
    def __init__(self, bot, engine) -> None:
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
