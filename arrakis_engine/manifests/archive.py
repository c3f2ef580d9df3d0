"""The S3 shadow of manifests: sending the outbox, history, diffs, checks and restore.

Layout in the bucket:
    communities/{id}/community.json      the community record
    manifests/{id}/v000001.json          each version, byte for byte the text its checksum covers
    manifests/{id}/index.json            versions with their checksums
    shadows/{id}/v000001.json            each applied shadow state
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from ..errors import ArrakisError, IntegrityFailure, NotFound
from ..storage.database import Database, validate_tenant_id
from ..storage.outbox import OutboxRepository, RestoreRepository, community_key, index_key, manifest_key
from ..domain.checksums import canonical_json, sha256_hex
from ..ports import ObjectStore

if TYPE_CHECKING:
    from ..signing.signing_service import SigningService

log = logging.getLogger(__name__)


class ManifestArchive:
    def __init__(self, db: Database, store: ObjectStore, signing: SigningService | None = None) -> None:
        self.db = db
        self.store = store
        self.signing = signing
        self.outbox = OutboxRepository(db)

    # --- sending ------------------------------------------------------------------------------

    def flush(self, limit: int = 500) -> dict:
        """Send what the outbox holds. Failures stay queued (with the error) for the next flush."""
        with self.db.platform():
            rows = self.outbox.pending(limit)
        delivered, failed, touched = [], 0, set()
        for row in rows:
            try:
                self.store.put(row["object_key"], row["body"].encode("utf-8"))
                delivered.append(row["id"])
                touched.add(row["community_id"])
            except ArrakisError as exc:
                failed += 1
                with self.db.platform():
                    self.outbox.failed(row["id"], str(exc))
                log.warning("shadow store write failed (%s); it stays queued", exc)
                break  # the store is down: stop here, keep order, try again later
        with self.db.platform():
            self.outbox.delivered(delivered)
            indexes = {cid: self.outbox.manifest_index(cid) for cid in touched}
        for cid, versions in indexes.items():
            try:
                self.store.put(index_key(cid), canonical_json({"community_id": str(cid), "versions": versions}).encode())
            except ArrakisError as exc:
                log.warning("could not update the index of %s (%s); the next flush will", cid, exc)
        with self.db.platform():
            counts = self.outbox.counts()
        return {"delivered": len(delivered), "failed": failed, "pending": counts["pending"]}

    def try_flush(self) -> dict | None:
        """Flush, but never let a shadow-store problem reach the caller (versions are safe in
        PostgreSQL and the outbox)."""
        try:
            return self.flush()
        except ArrakisError as exc:
            log.warning("shadow flush skipped: %s", exc)
            return None

    # --- reading ------------------------------------------------------------------------------

    def versions(self, community_id) -> list[dict]:
        cid = validate_tenant_id(community_id)
        try:
            return json.loads(self.store.get(index_key(cid)))["versions"]
        except NotFound:  # say it in the operator's words, not the store's key layout
            raise NotFound(f"the shadow store has no manifests for community {cid}",
                           hint="check the id (`arrakis community list`); a new version reaches the store with "
                                "`arrakis synthesize` and `arrakis manifests flush`") from None

    def get(self, community_id, version: int) -> dict:
        cid = validate_tenant_id(community_id)
        try:
            return json.loads(self.store.get(manifest_key(cid, version)))
        except NotFound:
            raise NotFound(f"version {version} of community {cid}'s manifest is not in the shadow store",
                           hint="see `arrakis manifests list`") from None

    def verify(self, community_id) -> list[dict]:
        """Every archived version checked against the checksum in the index, and the checksum
        against the version's signature (``signed``: True, False for a bad or missing one, None
        when no signer is configured)."""
        cid = validate_tenant_id(community_id)
        out = []
        for v in self.versions(cid):
            try:
                body = self.store.get(manifest_key(cid, v["version"]))
            except NotFound:
                out.append({"version": v["version"], "ok": False, "checksum_ok": False, "signed": None,
                            "expected": v["checksum"], "actual": None, "problem": "file"})
                continue
            actual = sha256_hex(body.decode("utf-8", errors="replace"))
            signed = None
            if self.signing is not None:
                signed = self.signing.verify_manifest(cid, v["version"], actual, v.get("signature"))
            # Which check failed: the file's bytes against the index's checksum, or the checksum
            # against the version's signature (a file and its index entry changed together).
            problem = "checksum" if actual != v["checksum"] else ("signature" if signed is False else None)
            out.append({"version": v["version"], "ok": problem is None,
                        "checksum_ok": actual == v["checksum"], "signed": signed,
                        "expected": v["checksum"], "actual": actual, "problem": problem})
        return out

    def diff(self, community_id, a: int, b: int) -> dict:
        """What changed between two archived versions: roles, categories, channels, members."""
        old, new = self.get(community_id, a), self.get(community_id, b)
        out = {}
        for part in ("roles", "categories", "channels"):
            o = {x["id"]: x for x in old.get(part, [])}
            n = {x["id"]: x for x in new.get(part, [])}
            out[part] = {"added": sorted(set(n) - set(o)), "removed": sorted(set(o) - set(n)),
                         "changed": sorted(k for k in set(o) & set(n) if o[k] != n[k])}
        om, nm = old.get("members", {}), new.get("members", {})
        out["members"] = {"added": sorted(set(nm) - set(om)), "removed": sorted(set(om) - set(nm)),
                          "changed": sorted(k for k in set(om) & set(nm) if om[k] != nm[k])}
        return out

    # --- restore -------------------------------------------------------------------------------

    def restore(self, community_id) -> dict:
        """Rebuild a community, its manifests and its latest shadow state from the archive into a
        database that does not have them (an existing manifest version is left alone)."""
        cid = validate_tenant_id(community_id)
        record = json.loads(self.store.get(community_key(cid)))
        checks = self.verify(cid)
        bad = [c["version"] for c in checks if not c["checksum_ok"]]
        if bad:
            raise IntegrityFailure(f"archived manifest version(s) {bad} do not match their checksums; restore refused")
        unsigned = [c["version"] for c in checks if c["signed"] is False]
        if unsigned:
            raise IntegrityFailure(f"archived manifest version(s) {unsigned} carry no valid signature; restore refused",
                                   hint="the archive was changed, or signed with a key this installation does not "
                                        "have")
        repo = RestoreRepository(self.db)
        with self.db.platform():
            repo.insert_community(cid, record)
        restored, shadows = [], 0
        with self.db.tenant(cid):
            have = repo.manifest_versions()
            for v in self.versions(cid):
                if v["version"] in have:
                    continue
                body = self.store.get(manifest_key(cid, v["version"])).decode("utf-8")
                repo.insert_manifest(v["version"], body, v["checksum"], v["created_at"], v["created_by"],
                                     v.get("signature"))
                restored.append(v["version"])
            for key in self.store.list(f"shadows/{cid}/"):
                s = json.loads(self.store.get(key))
                if repo.has_shadow(s["manifest_version"]):
                    continue
                repo.insert_shadow(s["manifest_version"], canonical_json(s["resources"]), s["checksum"], s["status"])
                shadows += 1
        return {"community_id": str(cid), "manifests": restored, "shadow_states": shadows}
