"""The shapes of the identifiers and names every front end takes in, checked in one place.

A guild id is a Discord snowflake: a whole number written in decimal, 17 to 20 digits, that fits
in 64 bits (Discord's own guilds have had 17 to 19 digits since 2015). The local Discord sandbox
uses the same shape, so a community made against the sandbox can later point at real Discord. A
member's Discord id is a snowflake too, but imports from older bots carry short numbers, so any
1 to 20 digits are taken. A community name is one line of 1 to 100 printable characters: it is
shown in tables, the console and the command palette, where a line break would split a row.
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import ValidationError

_MAX_SNOWFLAKE = 2**64 - 1
_GUILD_RE = re.compile(r"^[0-9]{17,20}$")
_DISCORD_ID_RE = re.compile(r"^[0-9]{1,20}$")
NAME_MAX = 100


def shown(value: object, limit: int = 40) -> str:
    """A value someone typed, fit to be echoed in an error: quoted, at most ``limit`` characters
    (cut with an ellipsis), control characters escaped. A 300-character mistake is not repeated
    whole."""
    text = str(value)
    cut = text if len(text) <= limit else text[:limit - 1] + "…"
    return repr(cut) if not cut.isprintable() else f"'{cut}'"


def check_guild_id(value: object) -> str:
    """The guild id as a string, or :class:`ValidationError` saying what a guild id looks like."""
    text = str(value if value is not None else "").strip()
    if not _GUILD_RE.match(text) or int(text) > _MAX_SNOWFLAKE:
        shown = text if len(text) <= 40 and text.isprintable() else "that value"
        raise ValidationError(
            f"guild id {shown!r} is not a Discord server id: it must be 17 to 20 digits, as Discord shows "
            "it (Server Settings, Widget, Server ID); the local sandbox uses the same shape",
            field="guild_id")
    return text


def check_discord_id(value: object) -> str:
    """A member's Discord id (1 to 20 digits, fits in 64 bits), or :class:`ValidationError`."""
    text = str(value if value is not None else "").strip()
    if not _DISCORD_ID_RE.match(text) or int(text) > _MAX_SNOWFLAKE:
        raise ValidationError("Discord id must be a number of up to 20 digits", field="discord_id")
    return text


def check_community_name(value: object) -> str:
    """The name trimmed, or :class:`ValidationError`: one line, 1 to 100 printable characters."""
    name = str(value if value is not None else "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationError(f"community name must be 1 to {NAME_MAX} characters (it has {len(name)})",
                              field="name")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValidationError("community name must be one line of plain text: no line breaks, tabs or "
                              "control characters", field="name")
    return name
