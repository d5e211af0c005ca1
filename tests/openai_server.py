"""A small local server that speaks the OpenAI HTTP protocol, standing in for the paid remote API."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def text_vector(text: str, dimension: int) -> list[float]:
    """A deterministic unit vector for a text: equal texts get equal vectors."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dimension)
    return (vector / np.linalg.norm(vector)).tolist()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        if self.path.endswith("/embeddings"):
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [
                {
                    "object": "embedding",
                    "index": n,
                    "embedding": text_vector(str(text), self.server.dimension),
                }
                for n, text in enumerate(inputs)
            ]
            self._json({"object": "list", "data": data, "model": body["model"], "usage": _usage()})
        elif self.path.endswith("/chat/completions") and body.get("stream"):
            self._stream(body["model"], self.server.reply)
        elif self.path.endswith("/chat/completions"):
            message = {"role": "assistant", "content": self.server.rewrite}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self._json(
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [choice],
                    "usage": _usage(),
                }
            )
        else:
            self.send_error(404, f"no such endpoint {self.path}")

    def _json(self, payload: dict[str, object]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _stream(self, model: str, reply: str) -> None:
        """Send the reply as server-sent events, a few characters at a time, as OpenAI streams."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        pieces = [reply[i : i + 4] for i in range(0, len(reply), 4)]
        for n, piece in enumerate(pieces + [None]):
            delta = {"content": piece} if piece is not None else {}
            choice = {"index": 0, "delta": delta, "finish_reason": None if piece is not None else "stop"}
            event = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": n,
                "model": model,
                "choices": [choice],
            }
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


def _usage() -> dict[str, int]:
    return {"prompt_tokens": 0, "total_tokens": 0}


class _Server(ThreadingHTTPServer):
    requests: list[tuple[str, dict[str, object]]]
    dimension: int
    reply: str  # what the chat model streams
    rewrite: str  # what the chat model answers without streaming (question rewriting)


@contextmanager
def openai_server(*, dimension: int = 1536) -> Iterator[_Server]:
    """Serve the OpenAI protocol on a free loopback port; `server.url` is the base URL for clients."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.requests, server.dimension = [], dimension
    server.reply, server.rewrite = "The sources don't say.", ""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
