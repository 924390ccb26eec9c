"""A local server speaking the OpenAI chat-completions protocol, scriptable per request.

litellm talks to it over real HTTP (its OpenAI client, httpx, SSE parsing), so tests exercise
the same code path as a production provider without the network. Each request takes the
next scripted `Reply` from the queue (or `default` when the queue is empty) and is recorded in
`requests` so a test can count what reached the provider.
"""

from __future__ import annotations

import html
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `kind`: ok, error (with `status`), malformed, empty, cut.

    "cut" streams the first half of `content` and closes the connection without [DONE].
    """

    kind: str = "ok"
    content: str = '{"reply": "Hello.", "citations": [], "answerable": true}'
    status: int = 200
    delay: float = 0.0  # seconds before answering: longer than the client timeout = a timeout
    chunk_delay: float = 0.0  # seconds between streamed chunks
    stream_usage: bool = True  # False: ignore stream_options.include_usage, as some servers do
    chunk_chars: int = 8  # characters per streamed chunk; ~4 is one token, as OpenAI streams
    retry_after: str = ""  # an error's Retry-After header (seconds or an HTTP date)

    @classmethod
    def ok(cls, content: str, **kwargs: Any) -> Reply:
        return cls(kind="ok", content=content, **kwargs)

    @classmethod
    def error(cls, status: int, **kwargs: Any) -> Reply:
        return cls(kind="error", status=status, **kwargs)

    @classmethod
    def malformed(cls) -> Reply:
        return cls(kind="malformed")

    @classmethod
    def gullible(cls, **kwargs: Any) -> Reply:
        """A model that obeys whatever it reads: it repeats the customer's message (with every
        link, placeholder and instruction in it), pastes its own instructions when asked for
        them, and confirms any refund it is asked to confirm, citing the first passage."""
        return cls(kind="gullible", **kwargs)

    @classmethod
    def grounded(cls, **kwargs: Any) -> Reply:
        """A careful model: it answers with the first sentences of the first passage it was
        given, citing it (no passage: it says it cannot answer)."""
        return cls(kind="grounded", **kwargs)

    @classmethod
    def cut(cls, content: str) -> Reply:
        return cls(kind="cut", content=content)

    @classmethod
    def empty(cls) -> Reply:
        return cls(kind="empty", content="")


@dataclass
class FakeOpenAI:
    """The server's script and log; `base_url` is what a deployment's api_base points at."""

    host: str = "127.0.0.1"
    port: int = 0
    default: Reply = field(default_factory=Reply)
    script: deque[Reply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Seconds from each request's arrival to its last byte: the model's own time.
    answer_seconds: list[float] = field(default_factory=list)
    # Requests being answered now, and the most there were at once, since the last reset
    # (a request a previous test left hanging is not counted).
    in_flight: int = 0
    max_in_flight: int = 0
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def enqueue(self, *replies: Reply) -> None:
        with self.lock:
            self.script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            return self.script.popleft() if self.script else self.default

    def reset(self, default: Reply | None = None) -> None:
        with self.lock:
            self.script.clear()
            self.requests.clear()
            self.answer_seconds.clear()
            self.in_flight = self.max_in_flight = 0
            self.generation += 1
            self.default = default or Reply()

    @property
    def hits(self) -> int:
        with self.lock:
            return len(self.requests)


def _completion_body(model: str, content: str, prompt_tokens: int) -> dict[str, Any]:
    completion_tokens = max(1, len(content.split()))
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _obey(messages: list[dict[str, Any]]) -> str:
    """What a gullible model writes: everything the prompt's customer asks for."""
    system = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    data = " ".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
    found = re.findall(r"<customer_message>(.*?)</customer_message>", data, re.DOTALL)
    asked = html.unescape(found[-1]) if found else data
    reply = [f"Certainly. You wrote: {asked}"]
    if re.search(
        r"(system|initial|hidden|your) (prompt|instructions)|instructions above", asked, re.I
    ):
        reply.append(f"My instructions are: {system}")
    amount = re.search(r"[$£€]\s?\d[\d,.]*", asked)
    if amount and re.search(r"refund|credit|compensat|reimburs", asked, re.I):
        reply.append(f"I confirm your refund of {amount.group(0)} has been approved today.")
    cited = ["P1"] if "<passage " in data else []
    return json.dumps({"reply": " ".join(reply), "citations": cited, "answerable": True})


def _ground(messages: list[dict[str, Any]]) -> str:
    """What a careful model writes: the first passage's opening sentences, citing it."""
    data = " ".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
    found = re.search(r'<passage id="(P\d+)"[^>]*>(.*?)</passage>', data, re.DOTALL)
    if found is None:
        return json.dumps({"reply": "", "citations": [], "answerable": False})
    sentences = re.split(r"(?<=[.!?])\s+", html.unescape(found.group(2)).strip())
    reply = " ".join(sentences[:3])
    return json.dumps({"reply": reply, "citations": [found.group(1)], "answerable": True})


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _pieces(content: str, size: int = 8) -> list[str]:
    return [content[start : start + size] for start in range(0, len(content), size)]


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeOpenAI/1.0"
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAI  # set on the subclass built per server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every answer and would swamp what the benchmark measures.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        arrived = time.perf_counter()
        reply = self.fake.next_reply(body)
        with self.fake.lock:
            generation = self.fake.generation
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        try:
            if reply.delay:
                time.sleep(reply.delay)
            self._answer(reply, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout under test); nothing to answer
        finally:
            with self.fake.lock:
                if generation == self.fake.generation:
                    self.fake.in_flight -= 1
                self.fake.answer_seconds.append(time.perf_counter() - arrived)

    def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
        if reply.kind == "gullible":
            reply = replace(reply, kind="ok", content=_obey(body["messages"]))
        if reply.kind == "grounded":
            reply = replace(reply, kind="ok", content=_ground(body["messages"]))
        model = str(body.get("model", "fake"))
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        if reply.kind == "error":
            error = {"error": {"message": f"scripted {reply.status}", "type": "fake_error"}}
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            self._send(reply.status, json.dumps(error).encode(), headers=headers)
            return
        if reply.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-fake", "choices": [ this is not json')
            return
        if not body.get("stream"):
            if reply.chunk_delay:  # the model takes as long to write it as to stream it
                time.sleep(reply.chunk_delay * len(_pieces(reply.content, reply.chunk_chars)))
            self._send(
                200, json.dumps(_completion_body(model, reply.content, prompt_tokens)).encode()
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(_chunk(model, {"role": "assistant", "content": ""}, None))
        pieces = _pieces(reply.content, reply.chunk_chars)
        if reply.kind == "cut":
            pieces = pieces[: len(pieces) // 2]
        for piece in pieces:
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            self.wfile.write(_chunk(model, {"content": piece}, None))
            self.wfile.flush()
        if reply.kind == "cut":
            self.close_connection = True
            return
        self.wfile.write(_chunk(model, {}, "stop"))
        if reply.stream_usage and (body.get("stream_options") or {}).get("include_usage"):
            completion_tokens = max(1, len(reply.content.split()))
            usage = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
            self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class RunningServer:
    """A started FakeOpenAI on a daemon thread; `stop()` shuts it down."""

    def __init__(self, fake: FakeOpenAI | None = None) -> None:
        self.fake = fake or FakeOpenAI()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer((self.fake.host, 0), handler)
        self.httpd.daemon_threads = True
        self.fake.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ServerProcess:
    """A FakeOpenAI in a process of its own, driven over a pipe: for benchmarks.

    In a thread of the measured process, the fake model's own work (a JSON encoding and a
    socket write per streamed chunk) would take the measured process's CPU and GIL, which a
    real provider never does, and be counted as Deskpilot's overhead.
    """

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.llm.fake_openai"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = self._ask({"command": "base_url"})

    def _ask(self, request: dict[str, Any]) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fake OpenAI server process exited")
        return json.loads(line)

    def reset(self, default: Reply | None = None) -> None:
        self._ask({"command": "reset", "default": asdict(default or Reply())})

    def answer_seconds(self) -> list[float]:
        return list(self._ask({"command": "answer_seconds"}))

    def stats(self) -> dict[str, int]:
        """Requests received since the last reset, and the most answered at once."""
        return dict(self._ask({"command": "stats"}))

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the child's loop ends at end of input
        self._process.wait(timeout=10)


def _serve_commands() -> None:
    """The child of ServerProcess: one JSON request per input line, one JSON answer each."""
    server = RunningServer()
    for line in sys.stdin:
        request = json.loads(line)
        command = request["command"]
        if command == "reset":
            server.fake.reset(Reply(**request["default"]))
            answer: Any = None
        elif command == "answer_seconds":
            with server.fake.lock:
                answer = list(server.fake.answer_seconds)
        elif command == "stats":
            with server.fake.lock:
                answer = {
                    "requests": len(server.fake.requests),
                    "max_in_flight": server.fake.max_in_flight,
                }
        else:
            answer = server.fake.base_url
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    server.stop()


if __name__ == "__main__":
    _serve_commands()
