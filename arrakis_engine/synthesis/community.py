"""Community synthesis: make the guild match a manifest, step by step, resumable.

Order: categories, roles, channels (inside their categories, with their permission
overwrites), then the categories' overwrites. Before the first call the guild's caps (250 roles,
500 channels) are checked. Each resource is matched first by the Discord id recorded in the
shadow state, then -- for a crash between "Discord created it" and "we recorded it" -- by name
among the guild's resources that no manifest id claims yet; only then is it created. Every id
is recorded as soon as Discord answers, so a synthesis killed half-way resumes without
creating anything twice.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ValidationError
from ..processes import pid_alive
from ..storage.database import Database
from ..storage.repositories import canonical_json, sha256_hex
from ..storage.synthesis import SynthesisRepository
from .discord_http import CHANNEL_TYPES, DiscordError, DiscordREST, RouteBusy

CREATED = "created:"  # shadow entries marking resources Arrakis itself created
OVERWRITES = "overwrites:"  # shadow entries: digest of the overwrites last set on a category
MAX_ROLES = 250
MAX_CHANNELS = 500

Progress = Callable[[int, int], None]


@dataclass
class SynthesisReport:
    manifest_version: int
    dry_run: bool = False
    created: list = field(default_factory=list)
    adopted: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    overwrites_set: list = field(default_factory=list)
    calls: int = 0
    complete: bool = True
    retry_after: float = 0.0  # when incomplete because Discord's route bucket was empty
    steps_done: int = 0
    steps_total: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        verb = "would create" if self.dry_run else "created"
        return (f"manifest v{self.manifest_version}: {verb} {len(self.created)}, adopted {len(self.adopted)}, "
                f"kept {len(self.kept)}, overwrites {'to set' if self.dry_run else 'set'} on "
                f"{len(self.overwrites_set)}; {self.calls} Discord calls")


def overwrites_for(spec: list[dict], guild_id: str, resources: dict) -> list[dict]:
    out = []
    for o in spec:
        target = guild_id if o["target"] == "@everyone" else resources.get(o["target"])
        if target is None:
            continue
        out.append({"id": target, "type": 0, "allow": str(o["allow"]), "deny": str(o["deny"])})
    return sorted(out, key=lambda o: o["id"])


def _normal(overwrites: list[dict]) -> list[tuple]:
    return sorted((str(o["id"]), int(o.get("type", 0)), str(o["allow"]), str(o["deny"])) for o in overwrites or [])


class SynthesisBusy(DiscordError):
    """Another synthesis of this community is running (the job is retried later)."""


class CommunityLock:
    """One synthesis at a time per community, across every worker (and an orphaned work horse
    of a worker that was killed): a Redis key with an owner token and a TTL renewed per step."""

    def __init__(self, redis, community_id, ttl_ms: int = 120_000) -> None:
        self.redis = redis
        self.key = f"arrakis:synthesis-lock:{community_id}"
        # Owner host and process go into the token, so a lock left by a dead process can be taken over.
        self.token = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex}"
        self.ttl_ms = ttl_ms

    def __enter__(self) -> "CommunityLock":
        if self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return self
        held = self.redis.get(self.key)
        held = held.decode() if isinstance(held, bytes) else (held or "")
        host, _, rest = held.partition("|")
        pid = rest.partition("|")[0]
        if host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid)):
            # The owner died without letting go; take over only if nobody else did meanwhile.
            if self.redis.set(self.key, self.token, xx=True, px=self.ttl_ms, get=True) in (held, held.encode()):
                return self
        raise SynthesisBusy("another synthesis of this community is running; this one will be retried",
                            retryable=True)

    def renew(self) -> None:
        self.redis.pexpire(self.key, self.ttl_ms)

    def __exit__(self, *exc) -> None:
        if self.redis.get(self.key) in (self.token, self.token.encode()):
            self.redis.delete(self.key)


class CommunitySynthesizer:
    def __init__(self, db: Database, repos, discord: DiscordREST, redis=None) -> None:
        self.db = db
        self.repos = repos
        self.discord = discord
        self.redis = redis if redis is not None else discord.redis
        self.store = SynthesisRepository(db)

    def apply(self, community_id: uuid.UUID | str, **kwargs) -> SynthesisReport:
        if kwargs.get("dry_run"):
            return self._apply(community_id, **kwargs)
        with CommunityLock(self.redis, community_id) as lock:
            return self._apply(community_id, lock=lock, **kwargs)

    def _apply(self, community_id: uuid.UUID | str, *, version: int | None = None, dry_run: bool = False,
               progress: Progress | None = None, read_guild: bool = True,
               budget: int | None = None, lock: CommunityLock | None = None,
               patience: float | None = None) -> SynthesisReport:
        """Make the guild match the manifest.

        ``budget`` caps the changes this call makes (creates and overwrite updates); when it runs
        out the report says ``complete=False`` and a later call carries on -- the queue runs a
        synthesis as such slices, so that many communities progress side by side.
        ``read_guild=False`` (a continuation slice) trusts the shadow state instead of reading the
        guild again; a first slice, a retry and a recovered job always read.
        """
        progress = progress or (lambda done, total: None)
        with self.db.tenant(community_id):
            community = self.repos.communities.current()
            manifest = self.repos.manifests.by_version(version) if version else self.repos.manifests.latest()
            if manifest is None:
                raise ValidationError("this community has no manifest yet; publish one first", field="manifest")
            if dry_run:
                latest = self.store.latest_shadow()
                resources = dict(latest[1]) if latest else {}
            else:
                resources = self.store.open_shadow(manifest.version)
        m, guild, cid = manifest.content, community.guild_id, community.id
        calls_before = self.discord.calls
        report = SynthesisReport(manifest.version, dry_run=dry_run)
        if read_guild:
            roles_now = {r["id"]: r for r in self.discord.list_roles(guild, community_id=cid)}
            channels_now = {c["id"]: c for c in self.discord.list_channels(guild, community_id=cid)}
        else:  # what we recorded stands for the guild
            recorded = {did for mid, did in resources.items() if not mid.startswith(CREATED)}
            roles_now = {did: {"id": did, "name": None} for did in recorded}
            channels_now = dict(roles_now)

        def find(mid: str, pool: dict, match: Callable[[dict], bool]) -> tuple[str | None, str]:
            did = resources.get(mid)
            if did and did in pool:
                return did, "kept"
            claimed = set(resources.values())
            for obj_id, obj in pool.items():
                if obj_id not in claimed and match(obj):
                    return obj_id, "adopted"
            return None, "create"

        # Caps first: nothing is created if the result would not fit (checked when the guild is read).
        new_roles = sum(1 for r in m["roles"] if find(r["id"], roles_now, lambda o, r=r: o["name"] == r["name"])[0] is None)
        chans = m["categories"] + m["channels"]
        new_channels = sum(1 for c in chans if find(c["id"], channels_now, lambda o, c=c: o["name"] == c["name"])[0] is None)
        if read_guild and len(roles_now) + new_roles > MAX_ROLES:
            raise ValidationError(f"the guild would have {len(roles_now) + new_roles} roles; Discord allows {MAX_ROLES}",
                                  field="roles")
        if read_guild and len(channels_now) + new_channels > MAX_CHANNELS:
            raise ValidationError(f"the guild would have {len(channels_now) + new_channels} channels; Discord allows "
                                  f"{MAX_CHANNELS}", field="channels")

        total = len(m["categories"]) * 2 + len(m["roles"]) + len(m["channels"])
        done = 0
        spent = 0

        class _OutOfBudget(Exception):
            pass

        def spend() -> None:
            nonlocal spent
            if budget is not None and spent >= budget:
                raise _OutOfBudget
            spent += 1

        def record(mid: str, did: str) -> None:
            resources[mid] = did
            if lock is not None:
                lock.renew()
            if not dry_run:
                with self.db.tenant(community_id):
                    self.store.record(manifest.version, mid, did)

        def step(mid: str, pool: dict, match, create: Callable[[], dict]) -> None:
            nonlocal done
            did, how = find(mid, pool, match)
            if how == "create":
                if not dry_run:
                    spend()
                report.created.append(mid)
                if not dry_run:
                    obj = create()
                    pool[obj["id"]] = obj
                    record(mid, obj["id"])
                    record(CREATED + mid, obj["id"])  # only what we created may ever be deleted by us
            else:
                (report.kept if how == "kept" else report.adopted).append(mid)
                if how == "adopted":
                    record(mid, did)
            done += 1
            progress(done, total)

        cat_type = CHANNEL_TYPES["category"]
        try:
            for cat in m["categories"]:
                step(cat["id"], channels_now, lambda o, c=cat: o["name"] == c["name"] and o["type"] == cat_type,
                     lambda c=cat: self.discord.create_channel(guild, name=c["name"], type="category",
                                                               community_id=cid))
            for role in m["roles"]:
                step(role["id"], roles_now, lambda o, r=role: o["name"] == r["name"],
                     lambda r=role: self.discord.create_role(guild, name=r["name"], color=r["color"],
                                                              permissions=r["permissions"], hoist=r["hoist"],
                                                              community_id=cid, patience=patience))
            for ch in m["channels"]:
                parent = resources.get(ch["parent"])
                step(ch["id"], channels_now,
                     lambda o, c=ch, p=parent: o["name"] == c["name"] and o.get("parent_id") == p
                     and o["type"] == CHANNEL_TYPES[c["type"]],
                     lambda c=ch, p=parent: self.discord.create_channel(
                         guild, name=c["name"], type=c["type"], parent_id=p, topic=c["topic"],
                         overwrites=overwrites_for(c["overwrites"], guild, resources), community_id=cid))
            for cat in m["categories"]:
                did = resources.get(cat["id"])
                wanted = overwrites_for(cat["overwrites"], guild, resources)
                mark = OVERWRITES + cat["id"]
                digest = sha256_hex(canonical_json(_normal(wanted)))
                if read_guild:
                    current = channels_now.get(did, {}).get("permission_overwrites", []) if did else []
                    differs = _normal(current) != _normal(wanted)
                else:
                    differs = resources.get(mark) != digest
                if did and differs:
                    report.overwrites_set.append(cat["id"])
                    if not dry_run:
                        spend()
                        channels_now[did] = self.discord.update_channel(did, guild_id=guild, community_id=cid,
                                                                        permission_overwrites=wanted)
                        record(mark, digest)
                elif did and read_guild and resources.get(mark) != digest and not dry_run:
                    record(mark, digest)
                elif not did:
                    report.overwrites_set.append(cat["id"])
                done += 1
                progress(done, total)
        except _OutOfBudget:
            report.complete = False
        except RouteBusy as busy:  # role creation is slow on Discord: come back when it frees up
            report.complete = False
            report.retry_after = busy.wait
            report.created.pop()
        report.steps_done, report.steps_total = done, total
        if not report.complete:
            report.calls = self.discord.calls - calls_before
            return report

        if not dry_run:
            with self.db.tenant(community_id):
                self.store.finish(manifest.version, "applied")
                self.repos.audit.append("synthesis", "synthesis.applied", {
                    "version": manifest.version, "created": len(report.created), "adopted": len(report.adopted)})
        report.calls = self.discord.calls - calls_before
        return report
