"""Wizard use cases: start, step, back, show, resume, find, abandon, deploy, deploy_progress.

The bot and the CLI call exactly these. Each answers from Redis in a few milliseconds, well
inside Discord's 3-second interaction deadline; only ``deploy`` touches PostgreSQL, and it hands
the Discord work to the synthesis queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import keys
from ..domain.chain import Asset
from ..domain.wizard_session import WizardSession
from ..errors import ArrakisError, Conflict, NotFound
from ..manifests.builder import slug
from ..metrics import NULL_METRICS, Metrics
from ..ports import Clock, JobQueue, WizardSessionStore, system_clock
from ..storage.database import Database
from ..storage.synthesis import SynthesisRepository
from ..themes import theme_for
from ..domain.validation import check_community_name, check_discord_id, check_guild_id
from .model import (
    STEP_FIELDS,
    TERMINAL,
    TransitionError,
    next_state,
    previous_state,
    review_summary,
    review_warnings,
    validate_step,
)

if TYPE_CHECKING:
    from ..use_cases.communities import CommunityService
    from ..use_cases.eligibility_sync import EligibilitySync
    from ..manifests.manifest_service import ManifestService
    from ..storage.repos import Repositories
    from ..synthesis.synthesis_service import SynthesisService

TEMPLATE_THEME = {"basic": "basic", "standard": "basic", "sietch": "sietch"}
DEAD_LETTERS_READ = 200  # the newest dead letters a deploy's progress looks through


@dataclass(frozen=True)
class DeployProgress:
    """How far a deploy's synthesis got, for whoever follows it."""

    synthesized: bool  # the latest plan version is applied
    manifest_version: int | None
    running: int  # the community's jobs a worker is running now
    done: int  # steps done and planned, summed over those jobs
    total: int
    eta_seconds: float  # the longest of their estimates (0: none yet)
    dead: int  # the community's jobs among the newest dead letters (a follower counts the new ones)


class WizardService:
    def __init__(self, store: WizardSessionStore, *, db: Database | None = None, repos: Repositories | None = None,
                 communities: CommunityService | None = None, eligibility: EligibilitySync | None = None,
                 manifests: ManifestService | None = None, queue: JobQueue | None = None,
                 subscription_of: Callable[[str], str] | None = None, clock: Clock = system_clock,
                 synthesis: SynthesisService | None = None, metrics: Metrics = NULL_METRICS) -> None:
        """``store``: the sessions (:class:`~arrakis_engine.storage.wizard_sessions.SessionStore`).
        ``subscription_of(guild_id)`` gives the plan for REVIEW's warnings (default: the
        community's, from the database; a new guild is on the free plan). The database, the
        community, eligibility and manifest services and the queue are needed by ``deploy`` only;
        ``synthesis`` (its status) and the queue by ``deploy_progress``."""
        self.metrics = metrics
        self.store = store
        self.db = db
        self.repos = repos
        self.communities = communities
        self.eligibility = eligibility
        self.manifests = manifests
        self.queue = queue
        self.synthesis = synthesis
        self.clock = clock
        self._subscription = subscription_of or self._stored_subscription

    # --- reading ----------------------------------------------------------------------------

    def _load(self, session_id: str, user_id: str) -> WizardSession:
        session = self.store.get(session_id)
        if session is None:
            raise NotFound("this wizard session has expired or does not exist; start a new one")
        if session.user_id != str(user_id):
            raise NotFound("this wizard session belongs to someone else")
        return session

    def show(self, session_id: str, user_id: str) -> WizardSession:
        return self._load(session_id, user_id)

    def resume(self, guild_id: str, user_id: str) -> WizardSession:
        """The user's active session in this guild (only its owner, only in its guild)."""
        session_id = self.store.active_id(str(guild_id), str(user_id))
        if session_id is None:
            raise NotFound("you have no wizard session in progress in this server")
        return self._load(session_id, user_id)

    def find(self, guild_id: str, user_id: str, session_id: str | None = None) -> WizardSession:
        """The user's session in this guild: the one named (by its id, or by the first characters
        of its id, which the wizard's footer shows), or their active one. Someone else's, or one
        of another guild, is refused.

        Raises:
            NotFound: no such session of theirs here.
        """
        if not session_id:
            return self.resume(guild_id, user_id)
        session_id = session_id.strip().lower()
        if len(session_id) < 32:
            active = self.resume(guild_id, user_id)
            if not active.id.startswith(session_id):
                raise NotFound("no session of yours here starts with that id; /resume alone picks up your "
                               "current one")
            return active
        found = self.show(session_id, user_id)
        if found.guild_id != str(guild_id):
            raise NotFound("that session belongs to another server")
        return found

    def deploy_progress(self, community_id: str) -> DeployProgress:
        """How far the synthesis of a deployed community got: applied or not, the steps of the
        jobs running now, and how many of its jobs are dead letters."""
        status = self.synthesis.status(community_id)
        running = self.queue.running(community_id)
        dead = sum(1 for d in self.queue.dead_letters(DEAD_LETTERS_READ)
                   if str(d.get("community")) == str(community_id))
        steps = [r.get("progress") or {} for r in running]
        return DeployProgress(
            synthesized=status.synthesized, manifest_version=status.manifest_version,
            running=len(running), done=sum(p.get("done", 0) for p in steps),
            total=sum(p.get("total", 0) for p in steps),
            eta_seconds=max((p.get("eta_seconds") or 0 for p in steps), default=0), dead=dead)

    # --- writing ----------------------------------------------------------------------------

    def start(self, guild_id: str, user_id: str, *, community_name: str | None = None) -> WizardSession:
        """A new session at INIT, or -- if the user already has one here -- that one, marked
        ``existing`` so the caller can offer to resume it."""
        guild_id, user_id = check_guild_id(guild_id), check_discord_id(user_id)
        name = check_community_name(community_name) if community_name is not None else f"Community {guild_id}"
        now = self.clock()
        session = WizardSession(id=uuid.uuid4().hex, guild_id=guild_id, user_id=user_id, community_name=name,
                                state="INIT", created_at=now, updated_at=now)
        if self.store.create(session):
            self.metrics.wizard("INIT", "started")
            return session.copy(existing=False)
        existing = self.store.active_id(str(guild_id), str(user_id))
        current = self.store.get(existing) if existing else None
        if current is None:  # the index outlived its session: clear it and start over
            self.store.forget_active(str(guild_id), str(user_id))
            return self.start(guild_id, user_id, community_name=community_name)
        return current.copy(existing=True)

    def _write(self, session: WizardSession, change: Callable[[WizardSession], WizardSession],
               submission_id: str | None) -> WizardSession:
        """Apply ``change(session) -> new session`` with compare-and-set; a repeated submission id
        is applied once."""
        for _ in range(5):
            if submission_id and submission_id in session.applied:
                return session
            new = change(session.copy())
            new.revision = session.revision + 1
            new.updated_at = self.clock()
            if submission_id:
                new.applied = (session.applied + [submission_id])[-50:]
            result = self.store.save(new, session.revision)
            if result == 1:
                return new
            if result == -1:
                raise NotFound("this wizard session has expired; start a new one")
            session = self._load(session.id, session.user_id)
            if not (submission_id and submission_id in session.applied):
                raise Conflict("the wizard moved on while this step was being sent; refresh and try again")
        raise Conflict("the wizard session is busy; try again")

    def step(self, session_id: str, user_id: str, data: dict | None = None, *,
             submission_id: str | None = None, expected_state: str | None = None) -> WizardSession:
        """Submit the current step's data and move forward (INIT takes no data; REVIEW is
        confirmed with deploy). ``expected_state`` is the step the caller answered: a click on a
        screen that is out of date gets Conflict instead of being read as the next step's data."""
        session = self._load(session_id, user_id)
        if submission_id and submission_id in session.applied:
            return session
        state = session.state
        if expected_state is not None and expected_state != state:
            raise Conflict(f"the wizard is at {state}, not {expected_state}; refresh and try again")
        if state in TERMINAL or state == "DEPLOY":
            raise TransitionError(f"the wizard is at {state}; nothing to submit", field="state")
        if state == "REVIEW":
            raise TransitionError("review is confirmed with deploy", field="state")
        cleaned = None if state == "INIT" else validate_step(state, data or {}, session.data)

        def change(s: WizardSession) -> WizardSession:
            if s.state != state:
                raise Conflict("the wizard moved on while this step was being sent; refresh and try again")
            s.data = dict(s.data)
            if cleaned is not None:
                s.data[STEP_FIELDS[state]] = cleaned
            s.state = next_state(state)
            if s.state == "REVIEW":
                existing = self._existing(s.guild_id)
                s.existing_community, s.reviewed = existing, True
                s.warnings = review_warnings(s.data, self._subscription(s.guild_id))
                if existing and existing["session"] != s.id:
                    s.warnings.append(
                        f"this server already has the community {existing['name']!r}: deploying updates it, "
                        f"keeps its name (not {s.community_name!r}) and must be confirmed")
            return s

        return self._write(session, change, submission_id)

    def back(self, session_id: str, user_id: str, *, submission_id: str | None = None,
             expected_state: str | None = None) -> WizardSession:
        """One step back. ``expected_state``: the step the caller's Back button was drawn for (a
        click on an old message is refused, as every other button's is)."""
        session = self._load(session_id, user_id)
        if submission_id and submission_id in session.applied:
            return session
        if expected_state is not None and expected_state != session.state:
            raise Conflict(f"the wizard is at {session.state}, not {expected_state}; refresh and try again")
        target = previous_state(session.state)

        def change(s: WizardSession) -> WizardSession:
            if expected_state is not None and s.state != expected_state:
                raise Conflict("the wizard moved on while this step was being sent; refresh and try again")
            s.state = target
            s.error = None
            return s

        return self._write(session, change, submission_id)

    def abandon(self, session_id: str, user_id: str, *, expected_state: str | None = None) -> WizardSession:
        """Give the session up (FAILED). A deployed session (or one deploying) is not abandoned:
        its community exists. ``expected_state``: the step the caller's Cancel was drawn for."""
        session = self._load(session_id, user_id)
        if expected_state is not None and expected_state != session.state:
            raise Conflict(f"the wizard is at {session.state}, not {expected_state}; refresh and try again")
        if session.state in ("COMPLETE", "DEPLOY"):
            raise TransitionError("this session was deployed" if session.state == "COMPLETE" else
                                  "this session is deploying", field="state",
                                  hint="its community exists; change it with a new /onboard or the "
                                       "`arrakis` commands")
        if session.state in TERMINAL:
            return session

        def change(s: WizardSession) -> WizardSession:
            s.state = "FAILED"
            s.error = "abandoned by the user"
            return s

        self.metrics.wizard(session.state, "abandoned")
        return self._write(session, change, None)

    def summary(self, session: WizardSession) -> list[str]:
        """What deploying ``session`` would set up, one plain line per part."""
        return review_summary(session.data, session.existing_community)

    def deploy(self, session_id: str, user_id: str, *, update_existing: bool = False,
               expected_state: str | None = None) -> WizardSession:
        """Create or update the community, store manifest v N+1 and queue the synthesis. The
        session id is the idempotency key: deploying a deployed session changes nothing.

        A server that already has a community (made some other way) is updated only with
        ``update_existing``; without it, :class:`Conflict` says which community it is."""
        session = self._load(session_id, user_id)
        # ``expected_state``: the step the Deploy button was drawn for; the same deploy carried on
        # (DEPLOY) or done (COMPLETE) is this click retried, anything else an old message.
        if expected_state is not None and session.state != expected_state and not (
                expected_state == "REVIEW" and session.state in ("DEPLOY", "COMPLETE")):
            raise Conflict(f"the wizard is at {session.state}, not {expected_state}; refresh and try again")
        if session.state == "COMPLETE":
            return session
        if session.state not in ("REVIEW", "DEPLOY"):
            raise TransitionError(f"deploy needs the wizard at REVIEW, not {session.state}", field="state")
        existing = self._existing(session.guild_id)
        if existing and existing["session"] != session.id and not update_existing:
            raise Conflict(f"this server already has the community {existing['name']!r} ({existing['id']}); "
                           f"deploying would update it and keep its name (not {session.community_name!r})",
                           hint="to go ahead, deploy again with --update-existing (`arrakis wizard deploy "
                                f"{session_id} {user_id} --update-existing`; Update in Discord), or abandon "
                                "this session")
        if session.state == "REVIEW":
            session = self._write(session, lambda s: s.copy(state="DEPLOY"), f"deploy-{session_id}")
        try:
            result = self._deploy(session)
        except ArrakisError as exc:
            message = str(exc)
            self.metrics.wizard("DEPLOY", "failed")
            return self._write(session, lambda s: s.copy(state="FAILED", error=message), None)

        self.metrics.wizard("DEPLOY", "completed")
        return self._write(session, lambda s: s.copy(state="COMPLETE", deploy=result, error=None), None)

    # --- deploy ------------------------------------------------------------------------------

    def _existing(self, guild_id: str) -> dict | None:
        """The community this guild already has (id, name, and the wizard session that last
        deployed it), or None; None too when the wizard runs without a database."""
        if self.db is None:
            return None
        with self.db.platform():
            community = self.repos.communities.by_guild(guild_id)
        if community is None:
            return None
        return {"id": str(community.id), "name": community.name,
                "session": (community.settings.get("wizard") or {}).get("session")}

    def _stored_subscription(self, guild_id: str) -> str:
        with self.db.platform():
            community = self.repos.communities.by_guild(guild_id)
        return community.subscription_tier if community else "free"

    def _deploy(self, session: WizardSession) -> dict[str, Any]:
        data = session.data
        rules = data["rules"]
        theme_id = TEMPLATE_THEME.get(rules["template"], "custom")
        guild, actor = session.guild_id, f"wizard:{session.user_id}"
        with self.db.platform():
            community = self.repos.communities.by_guild(guild)
        updating = community is not None
        if theme_id != "custom":  # a clear error, before anything is written, if the plan does not allow it
            theme_for(theme_id, community.subscription_tier if community else "free")
        if community is None:
            # Created on the basic theme; a custom one is switched to once its tiers are stored.
            community = self.communities.create(name=session.community_name, guild_id=guild,
                                                  theme_id="basic" if theme_id == "custom" else theme_id,
                                                  subscription="free", actor=actor)
        with self.db.tenant(community.id):
            self.repos.communities.update_settings({**community.settings, "wizard": {
                "session": session.id, "chain": data["chain"]["chain"], "assets": data["assets"]["assets"],
                "rules": rules, "roles": data["roles"]["roles"], "channels": data["channels"]}})
        if community.theme_id != theme_id:
            with self.db.platform():
                self.repos.communities.set_theme(community.id, theme_id)
        sync = self.eligibility
        with self.db.tenant(community.id):
            before = {a.key: p for a, p, _ in sync.assets.all()} if updating else {}
        assets = {"added": [], "kept": [], "replaced": []}
        for i, a in enumerate(data["assets"]["assets"]):
            asset = Asset(data["chain"]["chain"], a["kind"], a.get("address"), a.get("token_id"),
                          a.get("decimals", 18), symbol=a.get("symbol", ""))
            # Updating a community that already ranks by another asset: the wizard's first asset
            # replaces it (the deploy was confirmed with update_existing); the same one is kept.
            assets["replaced"] += sync.configure(community.id, asset, purpose="rank" if i == 0 else "gate",
                                                 min_amount=0 if i == 0 else 1, replace_rank=updating)
            assets["kept" if asset.key in before else "added"].append(asset.key)
        if rules.get("rule") and getattr(sync, "gating", None) is not None:
            sync.gating.set_rule(community.id, rules["rule"], actor=actor, require_endpoints=False)  # before the manifest, which carries it
        manifest, _ = self.manifests.publish(community.id, actor=actor)
        mapped = {f"role:{slug(name)}": rid for name, rid in data["roles"]["roles"].items() if rid != "create"}
        if mapped:
            with self.db.tenant(community.id):
                store = SynthesisRepository(self.db)
                store.open_shadow(manifest.version)
                for mid, rid in mapped.items():
                    store.record(manifest.version, mid, rid)  # existing roles are used, not created
        job = self.queue.enqueue("SYNTHESIZE_COMMUNITY", community.id, {"version": manifest.version, "part": 0},
                                 key=keys.synthesis_slice(community.id, manifest.version, 0), first_contact=True)
        with self.db.tenant(community.id):
            self.repos.audit.append(actor, "wizard.deployed", {"session": session.id,
                                                                 "manifest_version": manifest.version,
                                                                 "updated_existing": updating, "assets": assets})
        return {"community_id": str(community.id), "manifest_version": manifest.version, "job_id": job.id,
                "updated_existing": updating, "assets": assets}
