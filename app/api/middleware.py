"""ASGI middleware: request ids, request body size limit, one access-log line and one latency
observation (route template, never the raw path) per request."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import request_id_var
from app.metrics import Metrics, route_of

log = logging.getLogger("clinqa.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class RequestContextMiddleware:
    """Assigns `X-Request-ID` (kept from the client when well-formed), enforces the body limit (413)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        context = request_id_var.set(request_id)  # every log line of this request carries its id
        started = time.perf_counter()
        status_holder = {"status": 0}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*raw, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            body_receive = await self._buffer_body(scope, receive, headers)
            if body_receive is None:
                await self._too_large(send_with_id, request_id)
                return
            await self.app(scope, body_receive, send_with_id)
        finally:
            took = time.perf_counter() - started
            # no response started: the exception reached the server's error middleware, which answers 500
            status = status_holder["status"] or 500
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(took * 1000, 2),
                },
            )
            if self.metrics is not None:
                self.metrics.observe_request(str(scope.get("method")), route_of(scope), status, took)
            request_id_var.reset(context)

    async def _buffer_body(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Receive | None:
        """Read the body up to the limit; None when it is larger. Returns a receive that replays it."""
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return receive
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _too_large(self, send: Send, request_id: str) -> None:
        if self.metrics is not None:
            self.metrics.count_error("payload_too_large")
        body = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"request body larger than {self.max_body_bytes} bytes",
                    "field": None,
                },
                "request_id": request_id,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
