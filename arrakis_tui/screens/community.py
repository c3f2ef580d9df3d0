"""One community: tiers with member counts, badges, recent tier changes, manifest versions and the
last eligibility sync."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Label, Static

from arrakis_engine.use_cases.operations import CommunityDetail

from ..data import ago
from .base import EngineScreen

if TYPE_CHECKING:
    from arrakis_engine.bootstrap import Engine

DIFF_WORDS = (("joined", "joined"), ("promoted", "promoted"), ("demoted", "demoted"), ("left", "left"),
              ("unknown", "unknown"), ("badges_earned", "badges earned"), ("badges_revoked", "badges revoked"))


class CommunityScreen(EngineScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("d", "drift", "Drift"),
                Binding("m", "migrations", "Migrations"), Binding("r", "refresh", "Refresh")]

    def __init__(self, engine: Engine, community_id: str) -> None:
        super().__init__(engine)
        self.community_id = community_id
        self.detail: CommunityDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("loading the community…", id="title")
        with Horizontal(id="community-body"):
            with Vertical(id="community-left"):
                yield Label("Tiers", classes="section")
                yield DataTable(id="tiers", cursor_type="none", zebra_stripes=True)
                yield Label("Badges held", classes="section")
                yield DataTable(id="badges", cursor_type="none", zebra_stripes=True)
            with Vertical(id="community-right"):
                yield Static("", id="approvals")
                yield Label("Last eligibility sync", classes="section")
                yield Static("", id="last-sync")
                yield Label("Recent tier changes", classes="section")
                yield DataTable(id="changes", cursor_type="none", zebra_stripes=True)
                yield Label("Manifest versions", classes="section")
                yield DataTable(id="manifests", cursor_type="none", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#tiers", DataTable).add_columns("Tier", "Members")
        self.query_one("#badges", DataTable).add_columns("Badge", "Holders")
        self.query_one("#changes", DataTable).add_columns("Member", "From", "To", "Rank", "Why", "When")
        self.query_one("#manifests", DataTable).add_columns("Version", "Published", "By", "Synthesized",
                                                           "Archived", "Checksum")
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    def action_drift(self) -> None:
        self.app.open_drift(self.community_id)

    def action_migrations(self) -> None:
        self.app.open_migrations(self.community_id)

    def on_screen_resume(self) -> None:
        if self.detail is not None:
            self._load()

    @work(thread=True, exit_on_error=False, exclusive=True)
    def _load(self) -> None:
        try:
            detail = self.engine.operations.community(self.community_id)
        except Exception as exc:
            self.report_failure(exc, "Could not open the community")
            return
        self.ui(self._show, detail)

    def _show(self, d: CommunityDetail) -> None:
        self.detail = d
        now = self.now()
        self.sub_title = d.name
        self.query_one("#title", Static).update(
            f"[b]{_esc(d.name)}[/]  guild {d.guild_id} · theme {d.theme} · plan {d.subscription} · "
            f"{d.members} members")
        tiers = self.query_one("#tiers", DataTable)
        tiers.clear()
        for t in d.tiers:
            tiers.add_row(t.tier, str(t.members))
        badges = self.query_one("#badges", DataTable)
        badges.clear()
        for badge, n in d.badges.items():
            badges.add_row(badge, str(n))
        if not d.badges:
            badges.add_row("(none yet)", "")
        self.query_one("#last-sync", Static).update(_last_sync(d, now))
        approvals = self.query_one("#approvals", Static)
        approvals.display = bool(d.approvals)
        approvals.update("\n".join(
            f"[$warning]Waiting for an operator:[/] {_esc(a['summary'])} (asked by {_esc(a['requested_by'])}, "
            f"{ago(a['created_at'], now)}). An approver who did not ask: "
            f"`arrakis approvals approve {a['id']} --as NAME` (with their code)."
            for a in d.approvals))
        changes = self.query_one("#changes", DataTable)
        changes.clear()
        for c in d.recent_changes:
            changes.add_row(c.discord_id, c.from_tier or "-", c.to_tier or "-", str(c.rank or "-"), c.reason,
                            ago(c.at, now))
        if not d.recent_changes:
            changes.add_row("(no tier changes yet)", "", "", "", "", "")
        manifests = self.query_one("#manifests", DataTable)
        manifests.clear()
        for m in d.manifests:
            manifests.add_row(f"v{m.version}", ago(m.created_at, now), m.created_by, m.synthesized or "no",
                              "yes" if m.archived else "waiting", m.checksum[:12])
        if not d.manifests:
            manifests.add_row("(no manifest yet)", "", "", "", "", "")


def _last_sync(d: CommunityDetail, now: float) -> str:
    lines = []
    if d.last_diff is None:
        lines.append("No eligibility sync has run for this community yet.")
    else:
        parts = [f"{d.last_diff.get(key, 0)} {words}" for key, words in DIFF_WORDS]
        lines.append(f"{ago(d.last_diff_at, now)} by {_esc(d.last_diff_by or '?')}: "
                     f"{d.last_diff.get('members', 0)} members ({d.last_diff.get('rank_source', 'native')} ranks); "
                     + ", ".join(parts))
    if d.legacy_import:
        imp = d.legacy_import
        counts = ", ".join(f"{v} {k}" for k, v in (imp.get("counts") or {}).items())
        lines.append(f"Legacy import: {_esc(imp['source_name'])} ({counts}), {ago(imp['imported_at'], now)} "
                     f"by {_esc(imp['imported_by'])}.")
    for job in d.running:
        lines.append(f"Running now: {running_words(job)}")
    if d.unknown_members:
        lines.append(f"[$warning]{d.unknown_members} members could not be read: their roles are left as they "
                     f"are until a read succeeds.[/]")
    return "\n".join(lines)


JOB_WORDS = {"SYNTHESIZE_COMMUNITY": "synthesis", "ASSIGN_ROLE": "member role update",
             "REMOVE_ROLE": "member role update"}


def running_words(job: dict) -> str:
    """'synthesis: 12 of 40 steps, about 9 s left' from a running job's recorded progress."""
    what = JOB_WORDS.get(job.get("type"), (job.get("type") or "job").lower().replace("_", " "))
    p = job.get("progress")
    if not p or not p.get("total"):
        return f"{what} (starting)"
    left = f", about {p['eta_seconds']:.0f} s left" if p.get("eta_seconds") is not None else ""
    return f"{what}: {p['done']} of {p['total']} steps{left}"


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
