"""A wizard session: what the onboarding wizard holds for one user in one guild (no I/O).

It is stored in Redis as JSON (``storage/wizard_sessions.py``) and printed by
``arrakis wizard ... --json``; both use :meth:`WizardSession.as_dict`, whose keys and their order
are those the sessions have always had, so a session stored by an earlier release loads and
prints the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

# The stored keys, in the order they are written.
_STORED = ("id", "guild_id", "user_id", "community_name", "state", "data", "revision", "applied", "warnings",
           "deploy", "error", "created_at", "updated_at")


@dataclass
class WizardSession:
    """One onboarding session.

    ``data`` holds each answered step's cleaned data under its field (``chain``, ``assets``,
    ``rules``, ``roles``, ``channels``; see ``wizard/model.py``: ``STEP_FIELDS``). ``applied`` is the last
    submission ids written (a repeated one is applied once); ``revision`` counts the writes (the
    store's compare-and-set). ``deploy`` is what a deploy set up (community id, manifest version,
    job id, ...), ``error`` why the session failed.

    ``existing_community`` is the community the guild already had when the session reached
    REVIEW (or None); ``reviewed`` says whether that was looked up at all (a session that never
    reached REVIEW has no such key). ``existing`` is set only on what ``start`` answers: whether
    the user already had this session in progress; it is never stored.
    """

    id: str
    guild_id: str
    user_id: str
    community_name: str
    state: str = "INIT"
    data: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    applied: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deploy: dict[str, Any] | None = None
    error: str | None = None
    created_at: float = 0
    updated_at: float = 0
    existing_community: dict[str, Any] | None = None
    reviewed: bool = False
    existing: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this release does not know, kept as they are

    # --- the JSON form -----------------------------------------------------------------------

    def as_dict(self, *, stored: bool = False) -> dict[str, Any]:
        """The session as a plain dict, in its JSON shape. ``stored``: the form kept in Redis
        (without ``existing``, which only ``start`` answers with)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in _STORED}
        if self.reviewed:
            out["existing_community"] = self.existing_community
        out.update(self.extra)
        if self.existing is not None and not stored:
            out["existing"] = self.existing
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WizardSession:
        known = {name: d[name] for name in _STORED if name in d}
        extra = {k: v for k, v in d.items() if k not in _STORED and k not in ("existing_community", "existing")}
        return cls(**known, existing_community=d.get("existing_community"), reviewed="existing_community" in d,
                   existing=d.get("existing"), extra=extra)

    def to_json(self) -> str:
        """The JSON kept in Redis."""
        return json.dumps(self.as_dict(stored=True))

    @classmethod
    def from_json(cls, raw: str | bytes) -> WizardSession:
        return cls.from_dict(json.loads(raw))

    # --- reading -----------------------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        return self.state in ("COMPLETE", "FAILED")

    def copy(self, **changes: Any) -> WizardSession:
        """A shallow copy with ``changes`` (the way a write starts from the session it read)."""
        return replace(self, **changes)
