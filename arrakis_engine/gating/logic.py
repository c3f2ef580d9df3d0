"""Three-valued (Kleene) logic. A truth value is ``True``, ``False`` or ``None`` (unknown: a read
failed). ``all`` is false as soon as one part is false, ``any`` true as soon as one part is true;
otherwise an unknown part makes the whole unknown. ``not`` keeps unknown unknown."""

from __future__ import annotations

from typing import Iterable, Optional

Truth = Optional[bool]


def k_not(x: Truth) -> Truth:
    return None if x is None else not x


def k_all(values: Iterable[Truth]) -> Truth:
    unknown = False
    for v in values:
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def k_any(values: Iterable[Truth]) -> Truth:
    unknown = False
    for v in values:
        if v is True:
            return True
        if v is None:
            unknown = True
    return None if unknown else False


def word(x: Truth) -> str:
    return "unknown" if x is None else ("true" if x else "false")
