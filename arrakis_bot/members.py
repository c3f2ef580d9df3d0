"""Member commands: /profile, /leaderboard, /badges, /water-share. Ephemeral unless the member
asks to show it (``public``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import interactions
from interactions import OptionType, SlashContext, slash_command, slash_option

from arrakis_engine.use_cases.member_desk import MemberView

from .common import answer, engine_call, require_guild

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

PUBLIC = dict(name="public", description="Show the answer to everyone in the channel (only you see it otherwise)",
              opt_type=OptionType.BOOLEAN, required=False)
GOLD = 0xD4A017


def _when(t) -> str:
    return f"<t:{int(t.timestamp())}:R>" if t else "never"


def _short(wallet: str) -> str:
    return f"{wallet[:6]}…{wallet[-4:]}" if len(wallet) > 12 else wallet


def profile_embed(v: MemberView, *, own: bool) -> interactions.Embed:
    e = interactions.Embed(title=f"{v.member_title} of {v.community}", description=f"<@{v.discord_id}>", color=GOLD)
    if v.unknown:
        e.add_field("Tier", "unknown: the last read of the wallets failed, so nothing was changed; "
                    "it is read again at the next sync", inline=False)
    else:
        e.add_field("Tier", v.tier or "none", inline=True)
        e.add_field("Rank", str(v.rank) if v.rank is not None else "unranked", inline=True)
    held = [b.name for b in v.badges if b.held]
    e.add_field("Badges", ", ".join(held) if held else "none yet (/badges shows how to earn them)", inline=False)
    if own:
        e.add_field("Wallets", ", ".join(_short(w) for w in v.wallets) if v.wallets else "none linked (/verify)",
                    inline=False)
        if v.missing:
            e.add_field("To qualify", "; ".join(v.missing)[:1024], inline=False)
    e.add_field("Last refresh", _when(v.last_refresh), inline=True)
    return e


class Members(interactions.Extension):
    def __init__(self, bot: interactions.Client, engine: Engine) -> None:
        self.engine = engine

    @slash_command(name="profile", description="Your tier, rank and badges here (or another member's)")
    @slash_option(name="member", description="Whose profile (yours if left out)", opt_type=OptionType.USER,
                  required=False)
    @slash_option(**PUBLIC)
    async def profile(self, ctx: SlashContext, member: interactions.User | None = None, public: bool = False):
        guild = require_guild(ctx)
        who = str(member.id) if member else str(ctx.author_id)
        own = who == str(ctx.author_id)
        await answer(ctx, self.engine.members.profile, guild, who, ephemeral=not public,
                     render=lambda v: {"embeds": [profile_embed(v, own=own and not public)]})

    @slash_command(name="leaderboard", description="The top members of this community by rank")
    @slash_option(name="count", description="How many to show (1-25, 10 if left out)", opt_type=OptionType.INTEGER,
                  required=False, min_value=1, max_value=25)
    @slash_option(**PUBLIC)
    async def leaderboard(self, ctx: SlashContext, count: int = 10, public: bool = False):
        guild = require_guild(ctx)

        def render(board):
            lines = [f"**{r.rank}.** <@{r.discord_id}> · {r.tier or 'no tier'}" for r in board.rows]
            text = "\n".join(lines) if lines else "Nobody is ranked yet: the first sync ranks the members."
            e = interactions.Embed(title=board.title, description=text, color=GOLD)
            e.set_footer(f"{board.members} member(s) in all")
            return {"embeds": [e], "allowed_mentions": interactions.AllowedMentions.none()}

        await answer(ctx, self.engine.members.leaderboard, guild, count, ephemeral=not public, render=render)

    @slash_command(name="badges", description="Every badge of this community, and which ones you hold")
    @slash_option(**PUBLIC)
    async def badges(self, ctx: SlashContext, public: bool = False):
        guild = require_guild(ctx)

        def render(badges):
            lines = [f"{'✅' if b.held else '▫️'} **{b.name}**: {b.description or 'no description'}" for b in badges]
            return {"embeds": [interactions.Embed(title="Badges", description="\n".join(lines) or "This theme has "
                                                  "no badges.", color=GOLD)]}

        await answer(ctx, self.engine.members.badges, guild, str(ctx.author_id), ephemeral=not public, render=render)

    @slash_command(name="water-share", description="Share your Water Sharer badge with another member")
    @slash_option(name="member", description="Who receives it (once in their life, and not yourself)",
                  opt_type=OptionType.USER, required=True)
    async def water_share(self, ctx: SlashContext, member: interactions.User):
        guild = require_guild(ctx)
        c = await engine_call(self.engine.members.community, guild)
        await answer(ctx, self.engine.water_sharer.share, c.id, str(ctx.author_id), str(member.id),
                     actor=f"discord:{ctx.author_id}", ephemeral=False,
                     render=lambda _: {
                         "content": f"💧 <@{member.id}>, <@{ctx.author_id}> shared the Water Sharer badge with you.",
                         "allowed_mentions": interactions.AllowedMentions(users=[str(member.id)])})

    @slash_command(name="refresh", description="Re-read your wallets now and fix your roles (once in 5 minutes)")
    async def refresh(self, ctx: SlashContext):
        guild = require_guild(ctx)

        def render(r):
            line = "Done: your standing was read again." + (
                " Your roles are being updated." if r.role_updates else " Your roles were already right.")
            if r.paused:
                line = ("Your standing was read again, but the role update is paused for an operator: it would "
                        "take many members' roles at once.")
            return {"content": line}

        # The command carries the member's roles (Discord's own answer): kept for gating rules that
        # name a role, so a sync needs no Discord call for this member.
        ids = getattr(ctx.author, "_role_ids", None)  # a guild member's role ids, as the payload gave them
        roles = [str(r) for r in ids] if ids is not None else None
        await answer(ctx, self.engine.members.refresh, guild, str(ctx.author_id), roles, render=render)

    @slash_command(name="unlink", description="Unlink one of your wallets from this community")
    @slash_option(name="wallet", description="Which wallet (needed when you have several; /profile lists them)", opt_type=OptionType.STRING,
                  required=False, max_length=42)
    async def unlink(self, ctx: SlashContext, wallet: str | None = None):
        guild = require_guild(ctx)
        await answer(ctx, self.engine.members.unlink, guild, str(ctx.author_id), wallet,
                     render=lambda w: {"content": f"Unlinked {_short(w)}. Your roles follow at the next sync; "
                                                  "/verify links a wallet again."})

    @slash_command(name="verify", description="Link a wallet (up to 10): a one-time page where your wallet signs in")
    async def verify(self, ctx: SlashContext):
        guild = require_guild(ctx)

        def render(link):
            minutes = link.expires_in // 60
            return {"content": f"Open your page to link a wallet. It works once, for {minutes} minutes, and only "
                               "for you: do not share it. Signing costs nothing and sends no transaction.",
                    "components": [interactions.ActionRow(interactions.Button(
                        style=interactions.ButtonStyle.LINK, label="Link my wallet", url=link.url))]}

        await answer(ctx, self.engine.verification.link_for, guild, str(ctx.author_id), render=render)
