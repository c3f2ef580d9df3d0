"""Announcing approval requests: a Slack message with Approve / Reject buttons (slack-sdk,
Block Kit), and a Discord webhook embed. Both are updated when the request is answered,
expires, or needs a reminder."""

from __future__ import annotations

import httpx

from ...errors import NotificationError
from ...policy.approvals import ApprovalRequest

LEVEL_COLOUR = {"low": 0x2ECC71, "medium": 0xF1C40F, "high": 0xE67E22, "critical": 0xE74C3C}
DONE_WORDS = {"approved": "Approved", "rejected": "Rejected", "expired": "Expired (nobody answered in 24 h)",
              "cancelled": "Cancelled by the requester"}
APPROVE_ACTION = "approval.approve"
REJECT_ACTION = "approval.reject"


def summary_lines(r: ApprovalRequest) -> list[str]:
    report = r.report
    lines = [f"Risk {r.risk_score}/100 ({r.risk_level}); gate: {r.decision}; requested by {r.requested_by}; "
             f"expires {r.expires_at:%Y-%m-%d %H:%M} UTC"]
    if report.get("top_resources"):
        lines.append("Look first at: " + ", ".join(report["top_resources"][:5]))
    warnings = report.get("warnings") or []
    if warnings:
        ids = sorted({w["id"] for w in warnings})
        lines.append(f"Warnings ({len(warnings)}): " + ", ".join(ids))
    if r.high_risk:
        lines.append("High risk: look closely before approving.")
    lines.append("Approving or rejecting asks for your authenticator code.")
    return lines


def outcome_line(r: ApprovalRequest) -> str:
    line = DONE_WORDS.get(r.status, r.status)
    if r.decided_by and r.status in ("approved", "rejected", "cancelled"):
        line += f" by {r.decided_by}"
    if r.decided_at:
        line += f" at {r.decided_at:%Y-%m-%d %H:%M} UTC"
    if r.reason:
        line += f": {r.reason}"
    return line


class SlackClient:
    """The Slack Web API with the bot token through slack-sdk's WebClient (``base_url`` points it
    elsewhere, e.g. a test server; it must end with ``/``)."""

    def __init__(self, token: str, *, base_url: str | None = None, timeout: int = 5) -> None:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        kwargs = {"base_url": base_url if base_url.endswith("/") else base_url + "/"} if base_url else {}
        self.client = WebClient(token=token, timeout=timeout, **kwargs)
        # Slack answers 429 with Retry-After (chat.postMessage: about one message a second per
        # channel); wait as told and try again, twice at most.
        self.client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))

    def _call(self, method: str, **kwargs) -> dict:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return getattr(self.client, method)(**kwargs).data
        except SlackApiError as exc:
            raise NotificationError(f"Slack refused {method}: {exc.response.get('error', 'unknown error')}") from exc
        except (SlackClientError, OSError) as exc:
            raise NotificationError(f"Slack could not be reached for {method} ({type(exc).__name__})") from exc

    def direct_message(self, user_id: str, text: str) -> dict:
        """A direct message from the bot to ``user_id`` (``conversations.open``, then
        ``chat.postMessage`` in that conversation)."""
        opened = self._call("conversations_open", users=str(user_id))
        return self._call("chat_postMessage", channel=opened["channel"]["id"], text=text[:3000])


class SlackApprovals(SlackClient):
    """Posts approval requests to ``channel`` (see :class:`SlackClient`)."""

    def __init__(self, token: str, channel: str, *, base_url: str | None = None, timeout: int = 5) -> None:
        super().__init__(token, base_url=base_url, timeout=timeout)
        self.channel = channel

    def blocks(self, r: ApprovalRequest) -> list[dict]:
        blocks: list[dict] = [
            {"type": "header", "text": {"type": "plain_text", "text": f"Approval needed: {r.title}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(summary_lines(r))[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Request `{r.id}`"}]},
        ]
        if r.status == "pending":
            blocks.append({"type": "actions", "block_id": "approval", "elements": [
                {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": r.id,
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": r.id,
                 "text": {"type": "plain_text", "text": "Reject"}}]})
        else:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{outcome_line(r)}*"[:3000]}})
        return blocks

    def announce(self, r: ApprovalRequest) -> dict:
        data = self._call("chat_postMessage", channel=self.channel, text=f"Approval needed: {r.title}",
                          blocks=self.blocks(r))
        return {"slack": {"channel": data["channel"], "ts": data["ts"]}}

    def update(self, r: ApprovalRequest, *, reminder: bool = False) -> None:
        posted = r.notified.get("slack")
        if not posted:
            return
        if reminder:
            self._call("chat_postMessage", channel=posted["channel"], thread_ts=posted["ts"],
                       text=f"Reminder: this request is still waiting for an approver; it expires at "
                            f"{r.expires_at:%Y-%m-%d %H:%M} UTC.")
            return
        self._call("chat_update", channel=posted["channel"], ts=posted["ts"],
                   text=f"{outcome_line(r)}: {r.title}", blocks=self.blocks(r))

    def open_code_dialog(self, trigger_id: str, r: ApprovalRequest, *, decision: str = "approve") -> None:
        """A modal asking for the answerer's authenticator code (every approval and rejection).
        ``private_metadata`` is the request id, after ``reject:`` for a rejection."""
        verb = "Reject" if decision == "reject" else "Approve"
        self._call("views_open", trigger_id=trigger_id, view={
            "type": "modal", "callback_id": "approval.code",
            "private_metadata": f"reject:{r.id}" if decision == "reject" else r.id,
            "title": {"type": "plain_text", "text": f"{verb}: your code"},
            "submit": {"type": "plain_text", "text": verb},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(summary_lines(r))[:3000]}},
                {"type": "input", "block_id": "code", "label": {"type": "plain_text", "text": "Authenticator code"},
                 "element": {"type": "plain_text_input", "action_id": "value", "min_length": 6, "max_length": 20}},
                {"type": "input", "block_id": "reason", "optional": True,
                 "label": {"type": "plain_text", "text": "Reason"},
                 "element": {"type": "plain_text_input", "action_id": "value", "max_length": 500}}]})

    def tell_user(self, channel: str, user: str, text: str) -> None:
        """A message only ``user`` sees (why their button press was refused)."""
        self._call("chat_postEphemeral", channel=channel, user=user, text=text[:3000])


class DiscordWebhookApprovals:
    """Posts an embed through a Discord webhook (``?wait=true`` returns the message, whose id is
    kept to edit it later)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def embed(self, r: ApprovalRequest) -> dict:
        done = r.status != "pending"
        return {"title": (f"{DONE_WORDS.get(r.status, r.status)}: " if done else "Approval needed: ")
                + r.title[:200],
                "description": "\n".join(summary_lines(r))[:4000],
                "color": 0x95A5A6 if done else LEVEL_COLOUR.get(r.risk_level, 0x95A5A6),
                "fields": [{"name": "Request", "value": r.id, "inline": False},
                           {"name": "Answer with", "value": f"`arrakis approvals approve {r.id} --as NAME`"
                            if not done else outcome_line(r)[:1000], "inline": False}]}

    def _send(self, method: str, url: str, body: dict) -> dict:
        try:
            resp = httpx.request(method, url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise NotificationError(f"the Discord webhook could not be reached ({type(exc).__name__})") from exc
        if resp.status_code >= 300:
            raise NotificationError(f"the Discord webhook answered {resp.status_code}")
        return resp.json() if resp.content else {}

    def announce(self, r: ApprovalRequest) -> dict:
        message = self._send("POST", f"{self.url}?wait=true",
                             {"embeds": [self.embed(r)], "allowed_mentions": {"parse": []}})
        return {"discord": {"message_id": message.get("id")}} if message.get("id") else {}

    def update(self, r: ApprovalRequest, *, reminder: bool = False) -> None:
        posted = r.notified.get("discord")
        if not posted:
            return
        if reminder:
            self._send("POST", self.url, {"content": f"Reminder: approval request {r.id} is still waiting; it "
                                                     f"expires at {r.expires_at:%Y-%m-%d %H:%M} UTC.",
                                          "allowed_mentions": {"parse": []}})
            return
        self._send("PATCH", f"{self.url}/messages/{posted['message_id']}", {"embeds": [self.embed(r)]})
