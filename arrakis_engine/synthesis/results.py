"""What a member role sync answers (``SynthesisService.sync_members``, ``MemberRoleSync.run``
and ``MemberRoleSync.gate``): plain data, no I/O, so use cases and front ends can read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal


@dataclass(frozen=True)
class MemberSyncResult:
    """What a member sync did, in one of four shapes (``status``):

    - ``"dry_run"``: what would change (``members``: one dict per change, with ``discord_id``,
      ``roles``, ``added``, ``removed``), and whether it would wait for approval (``would_pause``);
    - ``"done"``: sent now, without the queue;
    - ``"paused"``: a mass strip waits for approval ``approval``; nothing was decided or sent;
    - ``"queued"``: one job per update (``jobs``: their ids; ``members``: the discord ids whose
      roles change; ``on_their_way``: updates decided earlier and still not delivered).

    :meth:`as_dict` gives the summary that ``--json`` prints and logs show: that shape's keys, in
    that order; a field left None (a community not synthesized yet, where nothing was planned)
    is left out."""

    status: Literal["dry_run", "done", "paused", "queued"]
    changes: int
    strips: int | None = None
    tier_holders: int | None = None
    skipped_unknown: int | None = None
    would_pause: bool | None = None
    approval: str | None = None
    jobs: list[str] | None = None
    members: list[str] | list[dict[str, Any]] | None = None
    on_their_way: int | None = None

    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "dry_run": ("status", "changes", "strips", "tier_holders", "skipped_unknown", "would_pause", "members"),
        "done": ("status", "changes", "strips", "skipped_unknown"),
        "paused": ("status", "approval", "changes", "strips", "tier_holders"),
        "queued": ("status", "changes", "jobs", "members", "skipped_unknown", "on_their_way"),
    }

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.KEYS[self.status] if getattr(self, key) is not None}
