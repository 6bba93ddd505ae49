"""Small pieces: websocket headers, the directory."""
from __future__ import annotations

import struct

import pytest

from execrelay.rendezvous.directory import LocalExecutorDirectory, LocalStreamTable
from execrelay._wsframe import OP_BINARY, OP_TEXT, binary_header, header, header_size
from execrelay.wire import RESET, encode_data


@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 16 * 1024 * 1024])
def test_ws_binary_header(n: int) -> None:
    h = binary_header(n)
    assert h[0] == 0x82
    if n < 126:
        assert h == bytes((0x82, n))
    elif n < 65536:
        assert h == struct.pack("!BBH", 0x82, 126, n)
    else:
        assert h == struct.pack("!BBQ", 0x82, 127, n)
    assert h == header(OP_BINARY, n)
    assert len(h) == header_size(n)
    masked = header(OP_TEXT, n, masked=True)
    assert masked[0] == 0x81 and masked[1] & 0x80 and masked[-4:] == b"\0\0\0\0"
    assert masked[1:-4] == bytes((h[1] | 0x80,)) + h[2:]
    assert len(masked) == header_size(n, masked=True)


def test_directory_claims() -> None:
    d = LocalExecutorDirectory()
    a, b, c = object(), object(), object()
    assert d.claim("e", a, "reg1") == ("new", None)
    assert d.claim("e", b, "reg2") == ("refused", a)
    assert d.claim("e", c, "reg1") == ("takeover", a)
    assert not d.release("e", a)  # a stale socket cannot release the new owner
    assert d.release("e", c)
    assert d.owner("e") is None
    d.remember_registration("fp", "reg1", ttl=60)
    assert d.registration_of("fp") == "reg1"
    d.remember_registration("old", "reg0", ttl=-1)
    assert d.registration_of("old") is None


def test_stream_table() -> None:
    t = LocalStreamTable()
    t.bind("s", 1)
    assert t.get("s") == 1 and len(t) == 1 and t.routes() == [1]
    assert t.unbind("s") == 1 and t.get("s") is None and t.unbind("s") is None


async def test_undecodable_frame_naming_a_stream_resets_only_that_stream() -> None:
    """docs/relay-protocol.md §Frames: a bad frame naming a known stream resets only it."""
    from execrelay.rendezvous.router import Router
    from execrelay.wire import FrameError, decode

    class FakeLink:
        def __init__(self, role: str) -> None:
            self.role, self.executor_id, self.closed, self.streams, self.sent = role, "e", False, {}, []
            self.close_reason = None
            self.credential = ""

        def send(self, frame: bytes) -> None:
            self.sent.append(decode(frame))

    router = Router()
    ex, h = FakeLink("executor"), FakeLink("harness")
    router.executor_attached(ex, "reg")  # type: ignore[arg-type]
    router.harness_attached(h)  # type: ignore[arg-type]
    router.from_harness(h, encode_data("s1", 0, 0, 0, b"{}"))  # type: ignore[arg-type]
    router.from_harness(h, encode_data("s2", 0, 0, 0, b"{}"))  # type: ignore[arg-type]
    assert [f.stream_id for f in ex.sent] == ["s1", "s2"]
    hub = router.hubs["e"]
    router._undecodable(hub, h, FrameError("broken body", 7, "s1"))  # type: ignore[arg-type]
    assert [(f.kind, f.stream_id) for f in ex.sent[2:]] == [(RESET, "s1")]
    assert ex.sent[2].reason.startswith("protocol_error: broken body")
    assert [(f.kind, f.stream_id) for f in h.sent] == [(RESET, "s1")]
    assert hub.table.get("s1") is None and hub.table.get("s2") is not None
    router.close()


async def test_wait_writable_waits_for_the_drain_event_or_the_watched_socket() -> None:
    """Harness reads held for a busy executor resume on the executor's drain event (no
    polling), or at once when the held harness socket is closed meanwhile."""
    import asyncio

    from execrelay.rendezvous.link import Link

    class FakeTransport:
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return False

        def writelines(self, parts: list[bytes]) -> None:
            self.written.extend(parts)

        def abort(self) -> None:
            pass

    loop = asyncio.get_running_loop()
    ex = Link("executor", "e", None, FakeTransport(), 1 << 40)
    gates: list[asyncio.Future[None]] = []

    async def drain() -> None:
        gate = loop.create_future()
        gates.append(gate)
        await gate

    ex.drain = drain
    h = Link("harness", "e", None, FakeTransport(), 1 << 40)
    ex.send(b"queued")
    waiting = asyncio.ensure_future(ex.wait_writable(h, 5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert ex.transport.written == [bytes((0x82, 6)), b"queued"]  # flushed before waiting
    gates[0].set_result(None)
    await asyncio.wait_for(waiting, 1.0)

    waiting = asyncio.ensure_future(ex.wait_writable(h, 5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    h.abort("harness_too_slow")
    await asyncio.wait_for(waiting, 1.0)
    await asyncio.wait_for(ex.wait_writable(h, 5.0), 1.0)  # closed already: no wait
    gates[1].set_result(None)

    started = loop.time()
    await ex.wait_writable(Link("harness", "e", None, FakeTransport(), 1 << 40), 0.1)
    assert 0.05 < loop.time() - started < 1.0  # bounded by the timeout
    gates[2].set_result(None)
