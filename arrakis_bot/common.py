"""What every command shares: running the engine off the event loop, answering within Discord's
3-second deadline, who counts as an admin, and turning engine errors into one plain sentence."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Awaitable, Callable

import interactions
from interactions import Permissions

from arrakis_engine.errors import ArrakisError

log = logging.getLogger("arrakis.bot")

# Answer at once when the engine is quick; otherwise defer (Discord's "thinking…") well before the
# 3-second deadline, and edit the answer in when the engine is done.
ANSWER_AT_ONCE_WITHIN = 1.0


class Refused(ArrakisError):
    """The member may not use this command here (shown to them, ephemeral)."""


def plain_error(exc: BaseException) -> str:
    """One sentence for the member: the engine's own message, or a generic one (the details go
    to the log, never to Discord)."""
    if isinstance(exc, ArrakisError):
        text = exc.message
        if getattr(exc, "hint", None):
            text += f" ({exc.hint})"
        return text[:1900]
    return "Something went wrong on our side; it has been logged. Please try again in a minute."


async def engine_call(fn: Callable, *args, **kwargs) -> Any:
    """Run one engine use case on a worker thread."""
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


async def in_time(ctx, fn: Callable, *args, defer: Callable[[], Awaitable], **kwargs) -> Any:
    """Run one engine use case off the loop; if it is still busy after
    :data:`ANSWER_AT_ONCE_WITHIN` seconds, ``defer()`` first, so Discord hears back within its
    3 seconds. Engine errors propagate."""
    task = asyncio.ensure_future(engine_call(fn, *args, **kwargs))
    done, _ = await asyncio.wait({task}, timeout=ANSWER_AT_ONCE_WITHIN)
    if not done and not ctx.deferred and not ctx.responded:
        await defer()
    return await task


async def answer(ctx: interactions.SlashContext, fn: Callable, *args, ephemeral: bool = True,
                 render: Callable[[Any], dict], **kwargs) -> None:
    """Call the engine off the loop and send ``render(result)`` (``send`` keyword arguments),
    deferring if it is slow. Engine errors propagate to the error listener, which answers them
    plainly."""
    result = await in_time(ctx, fn, *args, defer=lambda: ctx.defer(ephemeral=ephemeral), **kwargs)
    await ctx.send(ephemeral=ephemeral, **render(result))


def operator_for(engine, discord_user_id: str):
    """The platform operator linked to this Discord user, if any (they act as admins everywhere)."""
    return engine.operators.by_discord(str(discord_user_id))


async def require_admin(ctx: interactions.BaseContext, engine) -> str:
    """Manage Server in this guild, or a platform operator: returns the actor name for the audit
    log, or raises :class:`Refused`."""
    perms = ctx.author_permissions
    if ctx.guild_id and (Permissions.MANAGE_GUILD in perms or Permissions.ADMINISTRATOR in perms):
        return f"discord:{ctx.author_id}"
    op = await engine_call(operator_for, engine, ctx.author_id)
    if op is not None and "platform_admin" in op.roles:
        return f"operator:{op.name}"
    raise Refused("only this server's admins (Manage Server) or a platform operator may do that")


def require_guild(ctx: interactions.BaseContext) -> str:
    if not ctx.guild_id:
        raise Refused("this command works in a server, not in direct messages")
    return str(ctx.guild_id)


async def reply_error(ctx: interactions.BaseContext, exc: BaseException) -> None:
    """Answer a failed command with one ephemeral sentence, whatever state the answer is in."""
    if not isinstance(exc, ArrakisError):
        log.error("command %s failed", getattr(ctx, "invoke_target", "?"), exc_info=exc)
    text = plain_error(exc)
    try:
        await ctx.send(f"⚠️ {text}", ephemeral=True)
    except Exception:  # the interaction may have expired; nothing more can be said to the member
        log.warning("could not tell the member that a command failed: %s", text)
