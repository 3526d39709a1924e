"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions wire format.

Replies come from a script (one ``StubReply`` per request, in order) or from a responder
function. Every request body is recorded so tests can inspect what left the process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from service.llm.fake import FakeMarker
from service.llm.port import ChatMessage, CompletionRequest


@dataclass
class StubReply:
    """One HTTP reply: a completion (status 200) or an error status with headers."""

    content: str | None = None
    finish_reason: str = "stop"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw_body: bytes | None = None
    prompt_tokens: int = 100
    completion_tokens: int = 50
    fault: str | None = None
    """``reset``: close the connection without answering; ``trickle``: send headers, then the body
    one byte every ``delay_s`` seconds (slow-loris)."""


Responder = Callable[[dict[str, Any]], StubReply]


def fake_marker_responder(marker: FakeMarker | None = None) -> Responder:
    """Answer every request like ``FakeMarker`` would (valid, grounded drafts)."""
    fake = marker or FakeMarker()

    def respond(body: dict[str, Any]) -> StubReply:
        response_format = body.get("response_format") or {}
        schema = response_format.get("schema") or response_format.get("json_schema", {}).get("schema")
        request = CompletionRequest(
            messages=tuple(ChatMessage(m["role"], m["content"]) for m in body["messages"]),
            json_schema=schema,
            schema_name="marking_draft",
            temperature=float(body.get("temperature", 0.0)),
            max_output_tokens=int(body.get("max_tokens", 1000)),
        )
        return StubReply(content=fake.answer(request), delay_s=fake.delay_s)

    return respond


class OpenAIStub:
    """Start with ``with OpenAIStub(script=[...]) as stub:``; use ``stub.base_url``."""

    def __init__(self, script: list[StubReply] | None = None, responder: Responder | None = None) -> None:
        if (script is None) == (responder is None):
            raise ValueError("give exactly one of script or responder")
        self._script = list(script or [])
        self._responder = responder
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers.items()))
                    index = len(stub.requests) - 1
                reply = stub._reply(index, body)
                if reply.fault == "reset":
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                if reply.delay_s and reply.fault != "trickle":
                    time.sleep(reply.delay_s)
                payload = reply.raw_body if reply.raw_body is not None else stub._payload(reply, body)
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if reply.fault == "trickle":
                    try:
                        for byte in payload:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.delay_s)
                    except OSError:
                        self.close_connection = True
                    return
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _reply(self, index: int, body: dict[str, Any]) -> StubReply:
        if self._responder is not None:
            return self._responder(body)
        if index >= len(self._script):
            return StubReply(status=500, raw_body=b'{"error": {"message": "stub script exhausted"}}')
        return self._script[index]

    @staticmethod
    def _payload(reply: StubReply, body: dict[str, Any]) -> bytes:
        if reply.status != 200:
            return json.dumps({"error": {"message": f"stub error {reply.status}", "type": "stub"}}).encode()
        return json.dumps(
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                },
            }
        ).encode()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
