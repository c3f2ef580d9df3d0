"""New-head subscriptions: where an endpoint offers them (``eth_subscribe("newHeads")`` over its
websocket), the watcher is woken the moment a block arrives instead of at its next poll.

For an ``http(s)://host:port`` endpoint the websocket is looked for at ``ws(s)://host:port`` (the
common layout of nodes such as geth, reth and anvil); a ``ws(s)://`` endpoint is used as given.
An endpoint that refuses the subscription, or drops it, leaves the watcher polling; a dropped
subscription is tried again after a pause. The heads are only a wake-up call: what a block holds
is always read with ``eth_getLogs``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


def websocket_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme))


class HeadSubscriber:
    """Sets :attr:`woken` on every new head one of ``endpoints`` announces (a thread per run)."""

    def __init__(self, chain: str, endpoints: Sequence[str], *, retry_after: float = 10.0) -> None:
        self.chain = chain
        self.urls = [websocket_url(e) for e in endpoints]
        self.retry_after = retry_after
        self.woken = threading.Event()
        self.heads = 0
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heads-{chain}", daemon=True)

    def start(self) -> "HeadSubscriber":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float) -> bool:
        """Until a new head or ``timeout``; True when a head woke it."""
        woke = self.woken.wait(timeout)
        self.woken.clear()
        return woke

    def _run(self) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        while not self._stop.is_set():
            for url in self.urls:
                try:
                    with connect(url, open_timeout=5, close_timeout=1) as ws:
                        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                            "params": ["newHeads"]}))
                        answer = json.loads(ws.recv(timeout=5))
                        if "result" not in answer:
                            log.info("%s: %s offers no head subscription; polling", self.chain, url)
                            continue
                        self.subscribed.set()
                        log.info("%s: woken by new heads from %s", self.chain, url)
                        while not self._stop.is_set():
                            try:
                                message = json.loads(ws.recv(timeout=1))
                            except TimeoutError:
                                continue
                            if message.get("method") == "eth_subscription":
                                self.heads += 1
                                self.woken.set()
                except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
                    log.info("%s: head subscription at %s not available (%s); polling", self.chain, url,
                             type(exc).__name__)
                finally:
                    self.subscribed.clear()
                if self._stop.is_set():
                    return
            self._stop.wait(self.retry_after)
