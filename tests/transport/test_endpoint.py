"""RelayEndpoint over a fake link: streams, flush coalescing, timers, close ordering, record seam."""
from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from execrelay import wire
from execrelay.stream import ACCEPTOR, LEGACY, OPENER, RELIABLE, MessageTooLarge, StreamClosed
from execrelay.transport.endpoint import FLUSH_EVERY, RelayEndpoint, StreamPort

pytestmark = pytest.mark.timeout(10)


class FakeLink:
    """Records every write (one ``send_many`` + ``flush`` is one socket write)."""

    peer = "fake"

    def __init__(self) -> None:
        self.write_paused = False
        self.writes: list[list[bytes]] = []
        self.sent: list[bytes] = []  # every frame ever written
        self.flushes = 0

    def send(self, data: bytes, binary: bool = False) -> None:
        raise AssertionError("the endpoint writes frames with send_many only")

    def send_many(self, messages: list[bytes], binary: bool = False) -> None:
        assert binary
        self.writes.append(list(messages))
        self.sent.extend(messages)

    def flush(self) -> None:
        self.flushes += 1

    def frames(self) -> list:
        """Every frame written, decoded, without the Resume{0} a legacy opener starts with."""
        frames = [wire.decode(f) for batch in self.writes for f in batch]
        return [f for f in frames if not (f.kind == wire.RESUME and f.next_seq == 0)]


class Handler:
    def __init__(self, on_close: Callable[[str | None, bool], None] | None = None) -> None:
        self.messages: list[bytes] = []
        self.closes: list[tuple[str | None, bool]] = []
        self._extra = on_close

    def on_message(self, payload: bytes) -> None:
        self.messages.append(payload)

    def on_close(self, reason: str | None, by_peer: bool) -> None:
        self.closes.append((reason, by_peer))
        if self._extra is not None:
            self._extra(reason, by_peer)


async def turn() -> None:
    """Let the loop run the callbacks queued so far (the endpoint's flush)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def linked_opener() -> tuple[RelayEndpoint, FakeLink]:
    """An opener endpoint already serving a fresh FakeLink."""
    ep = RelayEndpoint(OPENER)
    link = FakeLink()
    ep.handler_for(link)
    return ep, link


def legacy_data(sid: str, seq: int, payload: bytes) -> bytes:
    return wire.encode_data(sid, seq, 0, 0, payload)


async def test_open_and_sends_in_one_turn_are_one_write() -> None:
    ep, link = linked_opener()
    ep.open_stream("s1", Handler(), LEGACY)
    ep.open_stream("s2", Handler(), LEGACY)
    for i in range(5):
        ep.send("s1", b"a%d" % i)
        ep.send("s2", b"b%d" % i)
    assert link.writes == []  # nothing is written synchronously
    await turn()
    assert len(link.writes) == 1 and link.flushes == 1
    frames = link.frames()
    assert [f.payload for f in frames if f.stream_id == "s1"] == [b"a%d" % i for i in range(5)]
    assert [f.payload for f in frames if f.stream_id == "s2"] == [b"b%d" % i for i in range(5)]
    assert [f.seq for f in frames if f.stream_id == "s1"] == list(range(5))
    await turn()
    assert len(link.writes) == 1  # no empty writes afterwards


async def test_accept_deliver_and_answer() -> None:
    accepted: list[tuple[str, str]] = []
    handlers: dict[str, Handler] = {}
    ep: RelayEndpoint

    def on_accept(sid: str, mode: str) -> Handler:
        accepted.append((sid, mode))
        h = handlers[sid] = Handler()
        h.on_message = lambda payload: ep.send(sid, b"re:" + payload)  # type: ignore[method-assign]
        return h

    ep = RelayEndpoint(ACCEPTOR, on_accept=on_accept)
    link = FakeLink()
    ep.handler_for(link)
    ep.on_message(legacy_data("x", 0, b"one"), True)
    ep.on_message(legacy_data("x", 1, b"two"), True)
    ep.on_message(b"text is not relay", False)
    assert accepted == [("x", "legacy")] and ep.text_dropped == 1
    await turn()
    assert len(link.writes) == 1
    assert [f.payload for f in link.frames()] == [b"re:one", b"re:two"]
    assert ep.handler("x") is handlers["x"] and ep.stream_mode("x") == "legacy"


async def test_long_read_batch_writes_every_flush_every_frames() -> None:
    ep = RelayEndpoint(ACCEPTOR, on_accept=lambda sid, mode: Echo(ep, sid))
    link = FakeLink()
    ep.handler_for(link)
    n = 2 * FLUSH_EVERY + 8
    for i in range(n):  # one read batch: all in the same loop iteration
        ep.on_message(legacy_data("x", i, b"%d" % i), True)
    assert len(link.writes) == 2
    await turn()
    assert len(link.writes) == 3
    assert [f.payload for f in link.frames()] == [b"%d" % i for i in range(n)]


class Echo(Handler):
    def __init__(self, ep: RelayEndpoint, sid: str) -> None:
        super().__init__()
        self.ep, self.sid = ep, sid

    def on_message(self, payload: bytes) -> None:
        self.ep.send(self.sid, payload)


async def test_local_reset_sends_reset_and_does_not_call_the_handler() -> None:
    ep, link = linked_opener()
    h = Handler()
    ep.open_stream("s", h, LEGACY)
    ep.send("s", b"m")
    await turn()
    ep.reset("s", "done with it")
    ep.reset("s", "again")  # no-op
    await turn()
    kinds = [(f.kind, f.reason if f.kind == wire.RESET else f.payload) for f in link.frames()]
    assert kinds == [(wire.DATA, b"m"), (wire.RESET, "done with it")]
    assert h.closes == [] and ep.handler("s") is None
    with pytest.raises(StreamClosed):
        ep.send("s", b"late")


async def test_peer_reset_calls_the_handler_once() -> None:
    ep = RelayEndpoint(ACCEPTOR, on_accept=lambda sid, mode: handlers.setdefault(sid, Handler()))
    handlers: dict[str, Handler] = {}
    ep.handler_for(FakeLink())
    ep.on_message(legacy_data("x", 0, b"hi"), True)
    ep.on_message(wire.encode_control(wire.RESET, "x", reason="bye"), True)
    assert handlers["x"].messages == [b"hi"]
    assert handlers["x"].closes == [("bye", True)]
    assert ep.streams == {}


async def test_handler_resetting_its_own_stream_on_close_is_harmless() -> None:
    """The executor's connection answers "the stream ended" with "reset my stream": the
    endpoint dropped the stream first, so that reset is a no-op and no second Reset goes out."""
    ep = RelayEndpoint(ACCEPTOR, on_accept=lambda sid, mode: handlers.setdefault(
        sid, Handler(on_close=lambda reason, by_peer: ep.reset(sid, "session closed"))))
    handlers: dict[str, Handler] = {}
    link = FakeLink()
    ep.handler_for(link)
    ep.on_message(legacy_data("x", 0, b"hi"), True)
    ep.on_message(wire.encode_control(wire.RESET, "x", reason="bye"), True)
    await turn()
    assert handlers["x"].closes == [("bye", True)]
    assert [f.kind for f in link.frames()] == []


async def test_close_ends_every_stream_once_and_writes_the_resets_at_once() -> None:
    ep, link = linked_opener()
    a = Handler(on_close=lambda reason, by_peer: ep.reset("b", "from a's handler"))
    b, c = Handler(), Handler()
    ep.open_stream("a", a, LEGACY)
    ep.open_stream("b", b, LEGACY)
    ep.open_stream("c", c, LEGACY)
    await turn()
    assert len(link.writes) == 1
    ep.close("shutting down")
    assert len(link.writes) == 2  # synchronously: the caller closes the socket next
    frames = link.frames()
    resets = {f.stream_id: f.reason for f in frames if f.kind == wire.RESET}
    assert resets == {"a": "shutting down", "b": "from a's handler", "c": "shutting down"}
    assert len(resets) == len(frames) == 3
    assert a.closes == [("shutting down", False)] and b.closes == [] and c.closes == [("shutting down", False)]
    ep.close("again")  # idempotent
    assert a.closes == [("shutting down", False)]
    await turn()
    assert len(link.writes) == 2


async def test_refused_stream_is_reset() -> None:
    ep = RelayEndpoint(ACCEPTOR, on_accept=lambda sid, mode: None)
    link = FakeLink()
    ep.handler_for(link)
    ep.on_message(legacy_data("x", 0, b"hi"), True)
    await turn()
    assert [(f.kind, f.reason) for f in link.frames()] == [(wire.RESET, "stream refused")]
    assert ep.streams == {}


async def test_send_errors_propagate() -> None:
    ep = RelayEndpoint(OPENER)
    ep.handler_for(FakeLink())
    with pytest.raises(StreamClosed):
        ep.send("nope", b"x")
    ep.open_stream("s", Handler(), LEGACY)
    with pytest.raises(MessageTooLarge):
        ep.send("s", b"x" * (wire.LEGACY_MAX_FRAME_BYTES + 1))


async def test_stream_port_sends_and_routes_errors_to_failed() -> None:
    failures: list[tuple[bytes, type]] = []

    class Quiet(StreamPort):
        __slots__ = ()

        def failed(self, payload: bytes, exc: Exception) -> None:
            failures.append((payload[:4], type(exc)))

    ep, link = linked_opener()
    ep.open_stream("s", Handler(), LEGACY)
    port = Quiet(ep, "s")
    port(b"one")
    port(b"two")
    port(b"x" * (wire.LEGACY_MAX_FRAME_BYTES + 1))
    await turn()
    assert len(link.writes) == 1 and [f.payload for f in link.frames()] == [b"one", b"two"]
    ep.reset("s", "bye")
    port(b"late")
    assert failures == [(b"xxxx", MessageTooLarge), (b"late", StreamClosed)]
    with pytest.raises(StreamClosed):
        StreamPort(ep, "s")(b"late")  # the default policy raises


async def test_no_link_queues_and_attach_writes() -> None:
    ep = RelayEndpoint(OPENER)
    ep.open_stream("s", Handler(), LEGACY)
    ep.send("s", b"queued")
    await turn()
    link = FakeLink()
    ep.handler_for(link)
    await turn()
    assert [f.payload for f in link.frames()] == [b"queued"]


async def test_write_pause_holds_output_until_drained() -> None:
    ep = RelayEndpoint(OPENER)
    link = FakeLink()
    handler = ep.handler_for(link)
    ep.open_stream("s", Handler(), LEGACY)
    link.write_paused = True
    ep.send("s", b"held")
    await turn()
    assert link.writes == []
    link.write_paused = False
    handler.on_write_paused(False)
    await turn()
    assert [f.payload for f in link.frames()] == [b"held"]


async def test_link_loss_ends_legacy_streams_and_reports() -> None:
    lost: list[int] = []
    ep = RelayEndpoint(OPENER, on_link_lost=lambda: lost.append(1))
    link = FakeLink()
    handler = ep.handler_for(link)
    legacy, reliable = Handler(), Handler()
    ep.open_stream("l", legacy, LEGACY)
    ep.open_stream("r", reliable, RELIABLE)
    handler.on_close()
    assert lost == [1] and ep.link is None
    assert legacy.closes == [("disconnected", True)] and reliable.closes == []
    assert set(ep.streams) == {"r"}
    stale = handler  # an old link's handler no longer detaches the new link
    new = FakeLink()
    ep.handler_for(new)
    stale.on_close()
    assert ep.link is new and lost == [1]
    await turn()
    assert [f.kind for f in new.frames() if f.stream_id == "r"][:1] == [wire.RESUME]


async def test_timer_repeats_an_unanswered_resume() -> None:
    """Reliable-mode timers run on the endpoint's own loop timer, with no read or send: an
    unanswered ``Resume{1}`` is sent again after the retransmission timeout."""
    ep, link = linked_opener()
    ep.open_stream("r", Handler(), RELIABLE)
    await turn()
    assert [(f.kind, f.next_seq) for f in link.frames()] == [(wire.RESUME, 1)]

    async def repeated() -> None:
        while len(link.frames()) < 2:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(repeated(), 5.0)
    assert [(f.kind, f.next_seq) for f in link.frames()] == [(wire.RESUME, 1)] * 2
    assert len(link.writes) == 2
    ep.close()


class XorRecord:
    """A toy record layer: a one-message handshake, then payloads XORed with a key."""

    def __init__(self, key: int, initiator: bool) -> None:
        self.key = key
        self.initiator = initiator
        self.ready = False
        self.held: list[bytes] = []
        self.transmit: Callable[[bytes], None] | None = None

    def bind(self, transmit: Callable[[bytes], None]) -> None:
        self.transmit = transmit
        if self.initiator:
            transmit(b"HELLO")

    def seal(self, payload: bytes) -> bytes | None:
        if not self.ready:
            self.held.append(payload)
            return None
        return bytes(b ^ self.key for b in payload)

    def open(self, payload: bytes) -> bytes | None:
        if not self.ready and payload == b"HELLO":
            self.ready = True
            assert self.transmit is not None
            if not self.initiator:
                self.transmit(b"HELLO")
            for p in self.held:
                self.transmit(bytes(b ^ self.key for b in p))
            self.held = []
            return None
        return bytes(b ^ self.key for b in payload)


async def shuttle(a: RelayEndpoint, a_link: FakeLink, b: RelayEndpoint, b_link: FakeLink,
                  turns: int = 6) -> None:
    """Carry every write of each endpoint to the other one, for a few loop turns."""
    for _ in range(turns):
        await turn()
        for src, dst in ((a_link, b), (b_link, a)):
            batch, src.writes = src.writes, []
            for data in (f for w in batch for f in w):
                dst.on_message(data, True)


async def test_record_layer_seals_opens_and_sends_its_handshake() -> None:
    got: list[bytes] = []
    acceptor: RelayEndpoint

    class Answer(Handler):
        def on_message(self, payload: bytes) -> None:
            got.append(payload)
            acceptor.send("s", b"pong:" + payload)

    acceptor = RelayEndpoint(ACCEPTOR, on_accept=lambda sid, mode: Answer(),
                             record_layer=lambda sid, mode: XorRecord(0x5A, initiator=False))
    opener = RelayEndpoint(OPENER)
    a_link, b_link = FakeLink(), FakeLink()
    opener.handler_for(a_link)
    acceptor.handler_for(b_link)
    h = Handler()
    opener.open_stream("s", h, LEGACY, record=XorRecord(0x5A, initiator=True))
    opener.send("s", b"ping")  # held back by the layer until the handshake is done
    await shuttle(opener, a_link, acceptor, b_link)
    assert got == [b"ping"]
    assert h.messages == [b"pong:ping"]
    crossed = [f.payload for f in map(wire.decode, a_link.sent + b_link.sent) if f.kind == wire.DATA]
    assert crossed[0] == b"HELLO" and b"HELLO" in crossed[1:]  # the handshake, as is
    assert b"ping" not in crossed and b"pong:ping" not in crossed  # only sealed payloads


async def test_record_layer_on_a_live_stream() -> None:
    ep, link = linked_opener()
    h = Handler()
    ep.open_stream("s", h, LEGACY)
    layer = XorRecord(0x01, initiator=False)
    layer.ready = True
    ep.set_record_layer("s", layer)
    ep.send("s", b"ab")
    await turn()
    assert [f.payload for f in link.frames()] == [bytes([ord("a") ^ 1, ord("b") ^ 1])]
    ep.on_message(legacy_data("s", 0, bytes([ord("z") ^ 1])), True)
    assert h.messages == [b"z"]
    with pytest.raises(KeyError):
        ep.set_record_layer("nope", layer)
