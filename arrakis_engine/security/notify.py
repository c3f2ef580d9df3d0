"""Telling people: a Slack or Discord incoming webhook (ALERT_WEBHOOK_URL), or the log."""

from __future__ import annotations

import logging
from typing import Mapping

import httpx

from ..errors import NotificationError

log = logging.getLogger(__name__)


class WebhookNotifier:
    """Posts ``{"text": ..., "content": ...}``: Slack reads ``text``, Discord reads ``content``."""

    def __init__(self, url: str, *, timeout: float = 3.0) -> None:
        self.url = url
        self.timeout = timeout

    def notify(self, subject: str, body: str, *, fields: Mapping[str, str] | None = None) -> None:
        lines = [f"*{subject}*", body] + [f"{k}: {v}" for k, v in (fields or {}).items()]
        text = "\n".join(lines)[:1900]
        try:
            resp = httpx.post(self.url, json={"text": text, "content": text}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise NotificationError(f"the alert webhook could not be reached ({type(exc).__name__})") from exc
        if resp.status_code >= 300:
            raise NotificationError(f"the alert webhook answered {resp.status_code}")


class LogNotifier:
    def notify(self, subject: str, body: str, *, fields: Mapping[str, str] | None = None) -> None:
        log.warning("%s: %s %s", subject, body, dict(fields or {}))
