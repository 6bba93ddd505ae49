"""A rendezvous without sockets: the per-frame path driven in process (twin tests, callgrind).

:class:`Rig` builds a :class:`~execrelay.rendezvous.server.RendezvousServer` (never started),
attaches one executor socket and harness sockets over :class:`FakeTransport`s, and gives each
socket the real listener of :mod:`execrelay.rendezvous.ws_fast` on the chosen per-frame base
(the compiled ``_rdvfast_c`` or the pure ``_rdvfast_py``).  Frames go in through the
listener's ``feed`` (what picows's ``on_ws_frame`` does) and come out as bytes written to the
fake transports, so two rigs, one per twin, fed the same sequence must write the same bytes,
count the same metrics and pause/abort the same sockets.  Must run inside an asyncio loop (the
router's timers and the links' flushes use it).
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

from picows import WSMsgType

from ..rendezvous import ws_fast
from ..rendezvous.link import Link
from ..rendezvous.server import RendezvousServer

SECRET = b"rig-secret-0123456789abcdef"


class FakeTransport:
    """An asyncio transport that records what is written; ``stalled`` keeps it buffered."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.stalled = False
        self.buffered = 0
        self.closing = False
        self.log: list[str] = []
        self.high = 0

    def writelines(self, chunks: list[bytes]) -> None:
        data = b"".join(chunks)
        self.written.append(data)
        if self.stalled:
            self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int = 0, low: int = 0) -> None:
        self.high = high

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True
        self.log.append("abort")

    def pause_reading(self) -> None:
        self.log.append("pause")

    def resume_reading(self) -> None:
        self.log.append("resume")

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


class FakeWS:
    """picows's transport as the listener sees it (``underlying_transport``, close frames)."""

    def __init__(self) -> None:
        self.underlying_transport = FakeTransport()
        self.closes: list[Any] = []

    def send_close(self, code: Any = None, message: bytes = b"") -> None:
        self.closes.append(int(code) if code is not None else None)

    def disconnect(self, graceful: bool = True) -> None:
        self.underlying_transport.closing = True

    async def wait_disconnected(self) -> None:
        return None


class FakeFrame:
    """A picows frame as ``feed`` reads it."""

    __slots__ = ("msg_type", "fin", "_data")

    def __init__(self, data: bytes, msg_type: Any = WSMsgType.BINARY, fin: bool = True) -> None:
        self.msg_type = msg_type
        self.fin = fin
        self._data = data

    def get_payload_as_bytes(self) -> bytes:
        return self._data


def listener_class(base: ModuleType) -> type:
    """ws_fast's listener on ``base``'s per-frame entry (``_rdvfast_c`` or ``_rdvfast_py``)."""
    return type(f"RigListener_{base.__name__.rsplit('.', 1)[-1]}",
                (ws_fast._Listener, base.RdvListenerBase), {})  # noqa: SLF001


class Rig:
    """One server, one executor socket, ``harnesses`` harness sockets, all fake."""

    def __init__(self, base: ModuleType, harnesses: int = 2, **config: Any) -> None:
        self.server = server = RendezvousServer(SECRET, **config)
        self.router = server.router
        self.metrics = server.metrics
        cls = listener_class(base)
        self.eid = "rig"
        reg = "registration"
        plog = ws_fast._ParserLog()  # noqa: SLF001
        self.executor = cls(server, self.eid, "executor", reg, plog)
        self.executor_ws = FakeWS()
        self.executor.on_ws_connected(self.executor_ws)
        self.harnesses = []
        self.harness_ws = []
        for i in range(harnesses):
            sig = server.mint_token("harness", self.eid)
            h = cls(server, self.eid, "harness", sig, ws_fast._ParserLog())  # noqa: SLF001
            ws = FakeWS()
            h.on_ws_connected(ws)
            self.harnesses.append(h)
            self.harness_ws.append(ws)

    def from_executor(self, frame: FakeFrame) -> None:
        self.executor.feed(self.executor_ws, frame)

    def from_harness(self, i: int, frame: FakeFrame) -> None:
        self.harnesses[i].feed(self.harness_ws[i], frame)

    def link(self, i: int | None) -> Link | None:
        return self.executor.link if i is None else self.harnesses[i].link

    def outcome(self) -> dict[str, Any]:
        """Everything observable: bytes written per socket, transport events, close frames,
        the metrics exposition, the number of routed streams."""
        socks = [self.executor_ws, *self.harness_ws]
        return {
            "written": [b"".join(ws.underlying_transport.written) for ws in socks],
            "log": [list(ws.underlying_transport.log) for ws in socks],
            "closes": [list(ws.closes) for ws in socks],
            "metrics": self.metrics.render(),
            "streams": self.router.stream_count(),
        }
