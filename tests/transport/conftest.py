"""Transport fixtures: every websocket test runs over picows and over websockets."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

#: "picows-py": picows with the Python twin of the link and listener (``_picows_py``), whatever
#: the build; "picows" is the build's choice (the compiled ``_picows_c`` when it is built)
IMPLS = ["picows", "picows-py", "websockets"]


def _available(impl: str) -> bool:
    if impl == "picows":
        try:
            import picows  # noqa: F401
        except ImportError:
            return False
    return True


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = request.param
    if not _available(name.removesuffix("-py")):
        pytest.skip(f"{name} is not installed")
    if name == "picows-py":
        from execrelay.transport import _picows_py, ws_picows

        monkeypatch.setattr(ws_picows, "_Listener", _picows_py.Listener)  # servers and clients
        return "picows"
    return name


class Recorder:
    """A LinkHandler that records messages; optional ``reply`` callback answers each one."""

    def __init__(self, link: Any, reply: Any = None) -> None:
        self.link = link
        self.reply = reply
        self.messages: list[tuple[bytes | str, bool]] = []
        self.closed = asyncio.get_running_loop().create_future()
        self.event = asyncio.Event()
        self.paused: list[bool] = []

    def on_message(self, data: bytes | str, binary: bool) -> None:
        self.messages.append((data, binary))
        self.event.set()
        if self.reply is not None:
            self.reply(self.link, data, binary)

    def on_close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def on_write_paused(self, paused: bool) -> None:
        self.paused.append(paused)

    async def wait_count(self, n: int, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while len(self.messages) < n:
                self.event.clear()
                await self.event.wait()
        await asyncio.wait_for(loop(), timeout)
