"""Signing for the rest of the engine: which key signs what, the kill switch's cut-off, and
rotation (audited). Each community signs with its own key (``community-<id>``); the platform's
audit checkpoints with ``platform``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Callable

from ..errors import SigningError
from ..metrics import NULL_METRICS, Metrics
from ..ports import Signer, SigningCutoffStore
from ..storage.database import Database

if TYPE_CHECKING:
    from ..storage.repos import Repositories

PLATFORM_KEY = "platform"


def community_key(community_id: uuid.UUID | str) -> str:
    return f"community-{community_id}"


def manifest_message(community_id, version: int, checksum: str) -> bytes:
    """What a manifest signature covers: the community, the version and the content's SHA-256."""
    return f"arrakis-manifest\n{community_id}\n{int(version)}\n{checksum}".encode()


def checkpoint_message(chain: str, seq: int, hash_: str) -> bytes:
    return f"arrakis-audit-checkpoint\n{chain}\n{int(seq)}\n{hash_}".encode()


class SigningService:
    def __init__(self, signer: Signer, cutoffs: SigningCutoffStore, db: Database, repos: Repositories, *,
                 holds: Callable[[], list[dict]] | None = None, metrics: Metrics = NULL_METRICS) -> None:
        """``holds``: () -> the freezes PostgreSQL holds (the record behind the cut-offs)."""
        self.metrics = metrics
        self.signer = signer
        self.cutoffs = cutoffs
        self.db = db
        self.repos = repos
        self.holds = holds

    @property
    def backend(self) -> str:
        return self.signer.kind

    # --- cut-off (kill switch) -----------------------------------------------------------------

    def cut_off(self, key_name: str | None, *, reason: str) -> int:
        """Stop all signing with ``key_name`` (None: every key) until :meth:`restore`. The flag is
        set first (no process signs after this returns), then Vault's tokens are revoked.
        Returns the number of Vault tokens revoked."""
        self.cutoffs.cut(key_name or "all", reason)
        return self.signer.revoke_access(key_name)

    def restore(self, key_name: str | None) -> None:
        self.cutoffs.lift(key_name or "all")

    def cut_off_reason(self, key_name: str) -> str | None:
        """Why signing with ``key_name`` is stopped, or None. Redis answers first; the kill
        switch's holds in PostgreSQL (``holds``) are the record, so a flushed Redis does not
        let a cut-off key sign."""
        reason = self.cutoffs.reason("all", key_name)
        if reason is not None:
            return reason
        if self.holds is not None:
            for h in self.holds():
                if h["source"] == "killswitch" and (
                        h["scope"] == "global" or (h["scope"] == "community"
                                                   and key_name == community_key(h["target"]))):
                    return f"{h['reason']} (by {h['held_by']})"
        return None

    # --- signing -------------------------------------------------------------------------------

    def sign(self, key_name: str, data: bytes) -> str:
        reason = self.cut_off_reason(key_name)
        if reason is not None:
            self.metrics.signing(self.signer.kind, "refused")
            raise SigningError(f"signing with {key_name} is stopped by the kill switch ({reason})", retryable=True,
                               hint="release the kill switch to sign again")
        try:
            signature = self.signer.sign(key_name, data)
        except Exception:
            self.metrics.signing(self.signer.kind, "failed")
            raise
        self.metrics.signing(self.signer.kind, "ok")
        return signature

    def verify(self, key_name: str, data: bytes, signature: str | None) -> bool:
        if not signature:
            return False
        return self.signer.verify(key_name, data, signature)

    def sign_manifest(self, community_id, version: int, checksum: str) -> str:
        return self.sign(community_key(community_id), manifest_message(community_id, version, checksum))

    def verify_manifest(self, community_id, version: int, checksum: str, signature: str | None) -> bool:
        return self.verify(community_key(community_id), manifest_message(community_id, version, checksum), signature)

    # --- secrets at rest ----------------------------------------------------------------------

    def seal(self, key_name: str, plaintext: str, *, context: str) -> str:
        """Encrypt a secret for storage (not subject to the kill switch's signing cut-off: an
        operator's code must still be checked to release it)."""
        return self.signer.encrypt(key_name, plaintext.encode(), context=context.encode())

    def unseal(self, key_name: str, sealed: str, *, context: str) -> str:
        return self.signer.decrypt(key_name, sealed, context=context.encode()).decode()

    @staticmethod
    def is_sealed(value: str | None) -> bool:
        return bool(value) and (value.startswith("vault:v") or value.startswith("arrakis:local-aead:"))

    # --- keys ----------------------------------------------------------------------------------

    def rotate(self, key_name: str, *, actor: str) -> int:
        version = self.signer.rotate(key_name)
        with self.db.platform():
            self.repos.audit.append(actor, "signing.rotated", {"key": key_name, "version": version})
        return version

    def status(self, key_names) -> list[dict]:
        out = []
        for name in key_names:
            s = dict(self.signer.status(name))
            s["cut_off"] = self.cut_off_reason(name)
            out.append(s)
        return out

    def public_keys(self, key_name: str) -> dict[int, str]:
        return self.signer.public_keys(key_name)
