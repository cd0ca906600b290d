"""A stand-in for an external OpenAI-compatible model server: a real HTTP server on a loopback socket
(`http.server` in a thread) that records each chat-completions request body and answers with a fixed,
schema-valid answer, whole or streamed as server-sent events. It replaces the external system only;
the client code under test (app.pipeline.llm.OpenAIBackend over httpx) runs for real."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = {
    "answerable": True,
    "sentences": [{"text": "An ACE inhibitor such as ramipril is step 1 for adults under 55.", "citations": [1]}],
}


@dataclass
class OpenAIDouble:
    url: str
    requests: list[dict] = field(default_factory=list)

    def prompts(self) -> list[str]:
        """The text of every message the server was sent, one string per request."""
        return ["\n".join(m["content"] for m in body["messages"]) for body in self.requests]


@contextmanager
def openai_double(answer: dict | None = None) -> Iterator[OpenAIDouble]:
    content = json.dumps(answer or ANSWER)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with lock:
                double.requests.append(body)
            if body.get("stream"):
                delta = {"choices": [{"index": 0, "delta": {"content": content}}]}
                payload = f"data: {json.dumps(delta)}\n\ndata: [DONE]\n\n".encode()
                kind = "text/event-stream"
            else:
                message = {"role": "assistant", "content": content}
                payload = json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()
                kind = "application/json"
            self.send_response(200)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # quiet: pytest shows stderr on failure
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double = OpenAIDouble(url=f"http://127.0.0.1:{server.server_port}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
