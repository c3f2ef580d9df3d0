"""A kill-switch drill on one community, against the local Discord sandbox (or a test server on
this machine), never real Discord.

Steps, each timed and reported as it happens:

1. **work**: a probe keeps reading the community's guild through the same Discord gate as every
   worker (a read each 0.2 s), so there is traffic to stop;
2. **activate** the kill switch for the community (the operator's code);
3. **held**: for two seconds, no request of the probe gets through and it waits at the gate;
   the last request that got through ended before activation returned;
4. **release** (a second code: a code is never accepted twice);
5. **resumed**: the probe's requests get through again.

Each report is kept (the last 20) for the console's list of past drills.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlsplit

from ..errors import ArrakisError, ValidationError
from ..ports import Clock, DiscordGuild, DrillReportStore, FreezeSwitch, system_clock

if TYPE_CHECKING:
    from ..storage.database import Database
    from ..storage.repos import Repositories
    from .killswitch import KillSwitch

HOLD_SECONDS = 2.0


@dataclass
class DrillStep:
    step: str
    ok: bool
    detail: str
    ms: float


@dataclass
class DrillReport:
    community_id: str
    by: str
    started_at: float
    steps: list[DrillStep] = field(default_factory=list)
    passed: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def on_this_machine(api_base: str | None) -> bool:
    host = urlsplit(api_base or "").hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


class KillSwitchDrill:
    def __init__(self, killswitch: KillSwitch, discord: DiscordGuild, repos: Repositories, db: Database,
                 reports: DrillReportStore, freeze: FreezeSwitch, *,
                 discord_base: str | None, sandbox: bool, clock: Clock = system_clock) -> None:
        """``sandbox``: Discord is the embedded sandbox; otherwise ``discord_base`` must be a server
        on this machine (a test server), or the drill refuses."""
        self.killswitch, self.discord, self.repos, self.db = killswitch, discord, repos, db
        self.reports, self.freeze, self.clock = reports, freeze, clock
        self.allowed = sandbox or on_this_machine(discord_base)

    def past(self) -> list[dict]:
        """Past drill reports (the last 20), newest first."""
        return self.reports.past()

    def run(self, actor, community_id: str, *, code: str, release_code: Callable[[], str | None],
            progress: Callable[[DrillStep], None] | None = None) -> DrillReport:
        """Run the drill; ``release_code()`` is asked for the second code when it is time to
        release (None: release is not possible, the drill fails and the switch stays on)."""
        if not self.allowed:
            raise ValidationError("a drill runs only against the local Discord sandbox or a test server on this "
                                  "machine, never real Discord", field="discord")
        with self.db.platform():
            community = self.repos.communities.get(community_id)
        report = DrillReport(str(community.id), actor.name, self.clock())

        def record(step: str, ok: bool, detail: str, since: float) -> bool:
            s = DrillStep(step, ok, detail, round((time.perf_counter() - since) * 1000, 1))
            report.steps.append(s)
            if progress:
                progress(s)
            return ok

        probe = _Probe(self.discord, community.guild_id, str(community.id))
        t = time.perf_counter()
        probe.start()
        got = probe.wait_for_calls(3, timeout=10)
        try:
            if not record("work", got, f"{probe.calls} read(s) of the guild got through" if got
                          else "no read of the guild got through in 10 s", t):
                return self._keep(report)
            t = time.perf_counter()
            try:
                kill = self.killswitch.activate(actor, scope="community", community_id=str(community.id),
                                                reason="kill-switch drill", code=code)
            except ArrakisError as exc:
                record("activate", False, f"refused: {exc}", t)
                return self._keep(report)
            parts = ", ".join(f"{p.part} {'ok' if p.ok else 'FAILED'} ({p.ms:.0f} ms)" for p in kill.parts)
            record("activate", all(p.ok for p in kill.parts), f"in {kill.total_ms:.0f} ms: {parts}", t)
            t = time.perf_counter()
            time.sleep(0.3)  # a request already on the wire when the switch went on may still finish
            before = probe.calls
            time.sleep(HOLD_SECONDS)
            waiting = len(self.freeze.waiting())
            record("held", probe.calls == before and waiting > 0,
                   f"{probe.calls - before} request(s) got through in the {HOLD_SECONDS:.0f} s after activation; "
                   f"{waiting} call(s) waiting at the gate", t)
            t = time.perf_counter()
            second = release_code()
            if not second:
                record("release", False, "no code given: the kill switch stays on", t)
                return self._keep(report)
            try:
                self.killswitch.release(actor, scope="community", community_id=str(community.id), code=second)
            except ArrakisError as exc:
                record("release", False, f"refused: {exc}; the kill switch stays on", t)
                return self._keep(report)
            record("release", True, "released", t)
            t = time.perf_counter()
            after = probe.calls
            resumed = probe.wait_for_calls(after + 2, timeout=10)
            record("resumed", resumed, f"{probe.calls - after} read(s) got through again" if resumed
                   else "no read got through in 10 s after release", t)
            report.passed = all(s.ok for s in report.steps)
            return self._keep(report)
        finally:
            probe.stop()

    def _keep(self, report: DrillReport) -> DrillReport:
        self.reports.add(report.as_dict())
        return report


class _Probe:
    """Reads the guild's roles through the Discord port every 0.2 s, on a thread of its own."""

    def __init__(self, discord: DiscordGuild, guild_id: str, community_id: str) -> None:
        self.discord, self.guild_id, self.community_id = discord, guild_id, community_id
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.discord.list_roles(self.guild_id, community_id=self.community_id)
                self.calls += 1
            except ArrakisError:
                pass
            self._stop.wait(0.2)

    def wait_for_calls(self, n: int, *, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.calls < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.calls >= n

    def stop(self) -> None:
        self._stop.set()
