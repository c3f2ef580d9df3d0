"""How the processes log: plain text for people (the default), or with ``ARRAKIS_LOG_FORMAT=json``
one JSON object per line for log shippers: ``time`` (UTC, ISO 8601), ``level``, ``process``
(worker, scheduler, web, bot, watcher, ...), ``logger``, ``event`` (the message), and
``community_id`` / ``job_id`` where the line is about one (set by :func:`log_context`), plus
``error`` (the exception's kind and message) when one is logged.

In both formats secrets never appear: the values of the secret settings (tokens, keys,
passwords), bot and Slack tokens, webhook tokens in URLs and the one-time links of ``/verify``
are replaced with ``[redacted]`` before a line is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Iterable, Iterator, TextIO

_CONTEXT: contextvars.ContextVar[dict] = contextvars.ContextVar("arrakis_log_context", default={})

REDACTED = "[redacted]"
_PATTERNS = (
    (re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_.-]+"), r"\1" + REDACTED),
    (re.compile(r"(/verify/)[A-Za-z0-9_.~-]+"), r"\1" + REDACTED),
    (re.compile(r"(/interactions/\d+/)[A-Za-z0-9_.-]+"), r"\1" + REDACTED),
    (re.compile(r"\b(Bot|Bearer)\s+[A-Za-z0-9_.\-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"\b(hvs|s|hvb)\.[A-Za-z0-9_-]{20,}"), REDACTED),  # Vault / OpenBao tokens
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),  # passwords in URLs
)


@contextlib.contextmanager
def log_context(**ids) -> Iterator[None]:
    """Lines logged inside carry these ids (``community_id=``, ``job_id=``)."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class Redactor:
    """Removes secrets from a finished line: the given values, and the shapes tokens take."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor, process: str) -> None:
        super().__init__()
        self.redact = redact
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "process": self.process, "logger": record.name,
                 "event": self.redact(record.getMessage())}
        for key, value in _CONTEXT.get().items():
            entry[key] = value
        for key in ("community_id", "job_id"):
            if hasattr(record, key):
                entry[key] = str(getattr(record, key))
        if record.exc_info:
            exc = record.exc_info[1]
            entry["error"] = self.redact(f"{type(exc).__name__}: {exc}")
            if record.levelno <= logging.DEBUG or logging.getLogger().level <= logging.DEBUG:
                entry["traceback"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class JsonLines(io.TextIOBase):
    """Stands in for stderr in JSON mode: a line something prints there itself (a command's
    progress words, an error line) becomes a JSON object too, so a log shipper reads only JSON."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, stream: TextIO, process: str, redact: Redactor) -> None:
        self.stream, self.process, self.redact = stream, process, redact
        self._partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            if line.strip():
                level = "error" if line.lstrip().lower().startswith("error") else "info"
                self.stream.write(json.dumps({"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                                              "level": level, "process": self.process, "logger": "console",
                                              "event": self.redact(line), **_CONTEXT.get()}, ensure_ascii=False)
                                  + "\n")
        self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def configure(*, level: str | int, fmt: str = "text", process: str = "arrakis", secrets: Iterable[str] = (),
              stream=None, force: bool = False) -> logging.Handler | None:
    """Send every log line to ``stream`` (stderr) in ``fmt`` (text or json), secrets removed. In
    JSON mode (on stderr) whatever else is printed to stderr is turned into JSON lines as well.

    Like ``logging.basicConfig``, it leaves logging alone when something else (a test runner
    running the command in-process) set up handlers first, unless ``force``."""
    root = logging.getLogger()
    if not force and any(not getattr(h, "arrakis", False) for h in root.handlers):
        return None
    redact = Redactor(secrets)
    if stream is None and fmt == "json" and not isinstance(sys.stderr, JsonLines):
        stream = sys.stderr
        sys.stderr = JsonLines(stream, process, redact)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact, process) if fmt == "json" else TextFormatter(redact))
    handler.arrakis = True
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def secret_values(settings) -> list[str]:
    """The values of the secret settings (those kept out of the settings' repr: tokens, keys)."""
    from dataclasses import fields

    return [str(getattr(settings, f.name)) for f in fields(settings) if not f.repr and getattr(settings, f.name)]
