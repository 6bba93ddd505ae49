"""A fake OpenAI Responses API for driving ``codex exec`` (0.131.0 and 0.171.0) without a network.

First turn: the model asks for one ``exec_command`` tool call running ``command``. When the
request's last input item is a ``function_call_output`` it answers with a final assistant
message, ending the turn. Every request body is recorded so a test can check that the tool's
output (produced on the executor under test) reached the model.
"""
from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from aiohttp import web

from .aiohttp_thread import ThreadedApp


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeModel(ThreadedApp):
    """``FakeModel(command).start()``; ``base_url + "/v1"`` is the provider base URL."""

    def __init__(self, command: str, final_text: str = "done", yield_time_ms: int = 2000,
                 tty: bool | None = None) -> None:
        self.command = command
        self.tty = tty
        self.final_text = final_text
        self.yield_time_ms = yield_time_ms
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # JSON bodies of POST /v1/responses
        self.other_requests: list[str] = []
        super().__init__(self._app)

    @property
    def provider_url(self) -> str:
        return f"{self.base_url}/v1"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_route("*", "/{tail:.*}", self._other)
        return app

    async def _other(self, request: web.Request) -> web.Response:
        with self._lock:
            self.other_requests.append(f"{request.method} {request.path}")
        return web.json_response({"data": [], "models": []})

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
        inputs = body.get("input") or []
        last = inputs[-1] if inputs else {}
        resp_id = f"resp_{uuid.uuid4().hex}"
        if isinstance(last, dict) and last.get("type") == "function_call_output":
            item: dict[str, Any] = {
                "type": "message", "role": "assistant", "id": f"msg_{uuid.uuid4().hex}",
                "status": "completed",
                "content": [{"type": "output_text", "text": self.final_text, "annotations": []}],
            }
        else:
            item = {
                "type": "function_call", "id": f"fc_{uuid.uuid4().hex}", "status": "completed",
                "call_id": f"call_{uuid.uuid4().hex[:16]}", "name": "exec_command",
                "arguments": json.dumps(self._arguments()),
            }
        out = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream",
                                                      "Cache-Control": "no-cache"})
        await out.prepare(request)
        await out.write(_sse("response.created", {"type": "response.created",
                                                  "response": {"id": resp_id}}))
        await out.write(_sse("response.output_item.done", {"type": "response.output_item.done",
                                                           "output_index": 0, "item": item}))
        await out.write(_sse("response.completed", {
            "type": "response.completed",
            "response": {"id": resp_id, "usage": {
                "input_tokens": 10, "input_tokens_details": None, "output_tokens": 5,
                "output_tokens_details": None, "total_tokens": 15}}}))
        await out.write_eof()
        return out

    def _arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {"cmd": self.command, "yield_time_ms": self.yield_time_ms}
        if self.tty is not None:
            args["tty"] = self.tty
        return args

    def tool_outputs(self) -> list[str]:
        """Every ``function_call_output.output`` text the harness sent back to the model."""
        outs: list[str] = []
        with self._lock:
            bodies = list(self.requests)
        for body in bodies:
            for item in body.get("input") or []:
                if isinstance(item, dict) and item.get("type") == "function_call_output":
                    out = item.get("output")
                    outs.append(out if isinstance(out, str) else json.dumps(out))
        return outs
