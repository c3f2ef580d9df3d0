"""Signing-key rotation by an operator: the rule (platform admins only) and their code, then a new
key version; and when each key was last rotated (from the audit log). The CLI and the console
both call this."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import PermissionDenied
from .authz import Actor, may_rotate_keys

if TYPE_CHECKING:
    from ..signing.signing_service import SigningService
    from ..storage.database import Database
    from ..storage.repos import Repositories
    from .mfa import MfaService


class KeyRotation:
    def __init__(self, db: Database, repos: Repositories, signing: SigningService, mfa: MfaService) -> None:
        self.db = db
        self.repos = repos
        self.signing = signing
        self.mfa = mfa

    def rotate(self, actor: Actor, key_name: str, *, code: str | None) -> int:
        """The new version of ``key_name``; PermissionDenied or MfaRefused first (a refusal burns
        no code: the rule is checked before the code)."""
        decision = may_rotate_keys(actor)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)
        self.mfa.verify(actor.operator, code, action="VAULT_KEY_ROTATION")
        return self.signing.rotate(key_name, actor=f"operator:{actor.operator}")

    def last_rotations(self) -> dict[str, datetime]:
        """Key name -> when it was last rotated (keys never rotated are absent)."""
        with self.db.platform():
            return self.repos.audit_checkpoints.last_key_rotations()
