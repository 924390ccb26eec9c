"""A webhook receiver on loopback: a real HTTP server in a thread that records what it gets
and answers as told (a status, a redirect, or a hang)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def signature_valid(received: Received, secret: str, *, max_age: float = 300) -> bool:
    """What a receiver does: recompute the HMAC of "<t>.<body>" and refuse an old t."""
    parts = dict(item.split("=", 1) for item in received.headers["Deskpilot-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) <= max_age
    return fresh and hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    status: int = 200
    redirect_to: str = ""
    hang_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("Deskpilot-Event") == event_type]


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append(Received(self.path, dict(self.headers), body))
            if receiver.hang_seconds:
                time.sleep(receiver.hang_seconds)
            if receiver.redirect_to:
                self.send_response(302)
                self.send_header("Location", receiver.redirect_to)
            else:
                self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return receiver, server
