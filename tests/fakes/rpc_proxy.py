"""A JSON-RPC proxy in front of anvil that can be told to fail, for failover and outage tests.

Modes: ``pass`` forwards everything; ``down`` answers HTTP 503; ``error`` answers a JSON-RPC
error; ``fail_after`` forwards N requests and then answers 503; ``slow`` sleeps before
forwarding. Independently, ``fail_matching`` (lower-case hex strings) answers 503 to any request
whose body contains one of them (an address or token id inside a Multicall3 batch: one read failing
in the middle of others), and ``max_log_range`` makes it refuse ``eth_getLogs`` over more blocks
than that, the way public nodes do; ``drop_log_fields`` removes those fields from every log that
``eth_getLogs`` answers (an older node: no ``blockTimestamp``). It counts the requests it saw.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.remaining = 0
        self.delay = 0.0
        self.seen = 0
        self.max_log_range: int | None = None
        self.refused_ranges = 0
        self.fail_matching: set[str] = set()
        self.drop_log_fields: set[str] = set()
        self.methods: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.seen += 1
                try:
                    proxy.methods.append(json.loads(body).get("method", ""))
                except (ValueError, AttributeError):
                    proxy.methods.append("")
                mode = proxy.mode
                if mode == "fail_after":
                    if proxy.remaining > 0:
                        proxy.remaining -= 1
                        mode = "pass"
                    else:
                        mode = "down"
                if mode == "slow":
                    time.sleep(proxy.delay)
                    mode = "pass"
                if proxy.fail_matching and mode == "pass":
                    text = body.decode(errors="replace").lower()
                    if any(m in text for m in proxy.fail_matching):
                        mode = "down"
                if proxy.max_log_range is not None and mode == "pass":
                    req = json.loads(body)
                    if req.get("method") == "eth_getLogs":
                        q = req["params"][0]
                        if int(q["toBlock"], 16) - int(q["fromBlock"], 16) + 1 > proxy.max_log_range:
                            proxy.refused_ranges += 1
                            mode = "range"
                if mode == "range":
                    payload = json.dumps({"jsonrpc": "2.0", "id": req.get("id"), "error": {
                        "code": -32005, "message": f"block range too large: at most {proxy.max_log_range}"}}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if mode == "down":
                    self.send_response(503)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"upstream unavailable")
                    return
                if mode == "error":
                    payload = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}'
                else:
                    req = urllib.request.Request(proxy.upstream, data=body,
                                                 headers={"Content-Type": "application/json"})
                    try:
                        with urllib.request.urlopen(req, timeout=60) as resp:
                            payload = resp.read()
                    except OSError:
                        self.send_response(502)
                        self.end_headers()
                        return
                    if proxy.drop_log_fields and proxy.methods[-1] == "eth_getLogs":
                        answer = json.loads(payload)
                        for entry in answer.get("result") or []:
                            for name in proxy.drop_log_fields:
                                entry.pop(name, None)
                        payload = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a timeout test): nothing to deliver
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
