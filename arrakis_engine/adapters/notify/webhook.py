"""Telling people: a Slack or Discord incoming webhook (ALERT_WEBHOOK_URL). Without one, the
kill switch writes its alert to the log itself."""

from __future__ import annotations

from typing import Mapping

import httpx

from ...errors import NotificationError

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
