"""Water Sharer: a holder hands the badge on to one member at a time.

Rules (DESIGN §5): the giver must hold the badge; one active share per giver; the recipient must
be onboarded (a member with a linked wallet), must not hold the badge and may receive it only
once ever; nobody shares with themselves. An admin revoke takes the badge from the holder and
from everyone it was passed on to, down the whole lineage.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ..errors import Conflict, NotFound, ValidationError
from ..storage.database import Database
from ..storage.models import Badge

if TYPE_CHECKING:
    from ..storage.repos import Repositories

BADGE = "water_sharer"


class WaterSharerService:
    def __init__(self, db: Database, repos: Repositories) -> None:
        self.db = db
        self.repos = repos

    def _member(self, discord_id: str, who: str):
        profile = self.repos.profiles.by_discord_id(discord_id)
        if profile is None:
            raise NotFound(f"{who} {discord_id} is not a member of this community")
        return profile

    def share(self, community_id: uuid.UUID | str, giver_discord_id: str, recipient_discord_id: str,
              *, actor: str) -> Badge:
        """Pass the badge from the giver to the recipient, or raise a clear error saying why not."""
        r = self.repos
        with self.db.tenant(community_id):
            giver = self._member(giver_discord_id, "the giver")
            recipient = self._member(recipient_discord_id, "the recipient")
            if giver.id == recipient.id:
                raise ValidationError("you cannot share the Water Sharer badge with yourself", field="recipient")
            r.profiles.lock(giver.id)  # two shares racing from one giver: one waits, then sees the other
            if r.badges.active(giver.id, BADGE) is None:
                raise ValidationError("only a Water Sharer can share the badge", field="giver")
            if r.badges.active_given_by(giver.id, BADGE):
                raise Conflict("you already have an active share; it must be revoked before you share again")
            if not r.wallets.for_profile(recipient.id):
                raise ValidationError("the recipient has not finished onboarding (no linked wallet yet)",
                                      field="recipient")
            r.profiles.lock(recipient.id)
            if r.badges.active(recipient.id, BADGE) is not None:
                raise Conflict("the recipient already holds the Water Sharer badge")
            if r.badges.ever_held(recipient.id, BADGE):
                raise Conflict("the recipient has held the Water Sharer badge before; it can be received only once")
            badge = r.badges.award(recipient.id, BADGE, awarded_by=giver.id)
            r.audit.append(actor, "badge.shared", {"badge": BADGE, "from": giver_discord_id, "to": recipient_discord_id})
            return badge

    def revoke(self, community_id: uuid.UUID | str, holder_discord_id: str, *, actor: str,
               reason: str = "revoked by an admin") -> list[Badge]:
        """Revoke a holder's badge and every share made from it, down the lineage."""
        with self.db.tenant(community_id):
            holder = self._member(holder_discord_id, "member")
            revoked = self.repos.badges.cascade_revoke(holder.id, BADGE, reason=reason)
            if not revoked:
                raise NotFound(f"member {holder_discord_id} does not hold the Water Sharer badge")
            self.repos.audit.append(actor, "badge.revoked", {"badge": BADGE, "holder": holder_discord_id,
                                                             "cascade": len(revoked) - 1, "reason": reason})
            return revoked
