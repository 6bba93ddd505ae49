"""Loss of sockets, grace periods, bad and oversized frames, a harness that stops reading."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from _rdv_helpers import (connect_executor, open_stream, open_streams, connect_harness, data, expect_silence, metric, reset,
                          expect_metrics, metrics_text, recv, recv_raw, resume)
from execrelay.rendezvous import (EXECUTOR_UNAVAILABLE, FRAME_TOO_LARGE, HARNESS_DISCONNECTED,
                                  HARNESS_TOO_SLOW, PROTOCOL_ERROR)
from execrelay.wire import RESET, encode_data


async def test_legacy_stream_reset_at_once_when_harness_goes(make_server, http) -> None:
    server = await make_server(harness_grace=30.0)
    # what a 0.131.0 harness sends
    ex, h = await open_streams(http, server, resume("legacy", 0), data("legacy", 0))
    await h.close()
    f = await recv(ex, 2.0)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "legacy", HARNESS_DISCONNECTED)


async def test_reliable_stream_reset_only_after_grace(make_server, http) -> None:
    server = await make_server(harness_grace=0.6)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(resume("rel", 1))
    await recv_raw(ex)
    t0 = time.monotonic()
    await h.close()
    await expect_silence(ex, 0.4)
    f = await recv(ex, 2.0)
    elapsed = time.monotonic() - t0
    assert (f.kind, f.stream_id, f.reason) == (RESET, "rel", HARNESS_DISCONNECTED)
    assert 0.55 <= elapsed < 3.0


async def test_reliable_stream_resumed_from_new_socket_within_grace(make_server, http) -> None:
    server = await make_server(harness_grace=1.0)
    ex = await connect_executor(http, server, "e")
    url = server.harness_url("e")  # resuming needs the token that opened the stream
    h1 = await http.ws_connect(url, max_msg_size=0)
    await h1.send_bytes(resume("rel", 1))
    await recv_raw(ex)
    await h1.close()
    await asyncio.sleep(0.1)
    # While orphaned, executor frames for the stream are dropped (the endpoints resend).
    await ex.send_bytes(data("rel", 1, b'{"id":1,"result":{}}'))
    h2 = await http.ws_connect(url, max_msg_size=0)
    await h2.send_bytes(data("rel", 1))  # not a Resume: refused
    assert (await recv(h2)).reason == "stream_in_use"
    await h2.send_bytes(resume("rel", 5))
    assert await recv_raw(ex) == resume("rel", 5)
    await ex.send_bytes(data("rel", 2, b'{"id":2,"result":{}}'))
    assert (await recv(h2)).seq == 2
    await expect_silence(ex, 1.3)  # no Reset after the grace period: the stream lives on
    await h2.send_bytes(data("rel", 6))
    assert await recv_raw(ex) == data("rel", 6)


async def test_executor_reconnect_within_grace_keeps_streams(make_server, http) -> None:
    server = await make_server(executor_grace=2.0)
    reg = server.mint_token("executor", "e", ttl=600)
    ex1 = await connect_executor(http, server, "e", token=reg)
    h = await connect_harness(http, server, "e")
    await h.send_bytes(data("s", 0))
    await recv_raw(ex1)
    await ex1.close()
    await asyncio.sleep(0.1)
    await h.send_bytes(data("s", 1, b'{"id":2,"method":"x"}'))  # queued for the absent executor
    await expect_silence(h, 0.2)
    ex2 = await connect_executor(http, server, "e", token=reg)
    assert await recv_raw(ex2) == data("s", 1, b'{"id":2,"method":"x"}')
    await ex2.send_bytes(data("s", 0, b'{"id":2,"result":{}}'))
    assert (await recv(h)).payload == b'{"id":2,"result":{}}'
    await expect_silence(h, 2.2)  # never reset


async def test_executor_unavailable_after_grace(make_server, http) -> None:
    server = await make_server(executor_grace=0.5)
    ex, h = await open_stream(http, server)
    t0 = time.monotonic()
    await ex.close()
    f = await recv(h, 3.0)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "s", EXECUTOR_UNAVAILABLE)
    assert 0.45 <= time.monotonic() - t0 < 4.0
    assert not h.closed  # the harness socket stays open


async def test_harness_for_absent_executor_waits_then_reset(make_server, http) -> None:
    server = await make_server(executor_grace=0.5)
    h = await connect_harness(http, server, "never")
    t0 = time.monotonic()
    await h.send_bytes(resume("s", 0))
    await h.send_bytes(data("s", 0))
    f = await recv(h, 3.0)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "s", EXECUTOR_UNAVAILABLE)
    assert 0.45 <= time.monotonic() - t0 < 4.0
    await expect_metrics(http, server, {("resets_total", '{reason="executor_unavailable",to="harness"}'): 1,
                                        ("pending_frames", ""): 0})


async def test_harness_for_absent_executor_delivered_when_it_arrives(make_server, http) -> None:
    server = await make_server(executor_grace=5.0)
    h = await connect_harness(http, server, "late")
    frames = [resume("s", 1), data("s", 1), data("s", 2, b'{"id":2,"method":"y"}')]
    for f in frames:
        await h.send_bytes(f)
    await asyncio.sleep(0.1)
    ex = await connect_executor(http, server, "late")
    assert [await recv_raw(ex) for _ in frames] == frames


async def test_pending_queue_is_bounded(make_server, http) -> None:
    server = await make_server(executor_grace=5.0, pending_frames=3)
    h = await connect_harness(http, server, "late")
    for seq in range(3):
        await h.send_bytes(data("s", seq))
    await h.send_bytes(data("t", 0))  # over the bound: stream t is refused
    f = await recv(h)
    assert (f.stream_id, f.reason) == ("t", "queue_full")
    ex = await connect_executor(http, server, "late")
    assert [(await recv(ex)).seq for _ in range(3)] == [0, 1, 2]
    await expect_silence(ex)


async def test_oversized_frame_refused_other_streams_unaffected(make_server, http) -> None:
    server = await make_server(max_frame_bytes=4096)
    ex, h = await open_streams(http, server, data("big", 0), data("ok", 0))
    await h.send_bytes(encode_data("big", 1, 0, 0, b"x" * 5000))
    f = await recv(h)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "big", FRAME_TOO_LARGE)
    f = await recv(ex)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "big", FRAME_TOO_LARGE)
    # Same socket, other stream: fine both ways.
    await h.send_bytes(data("ok", 1))
    assert await recv_raw(ex) == data("ok", 1)
    await ex.send_bytes(data("ok", 0, b'{"id":1,"result":{}}'))
    assert (await recv(h)).stream_id == "ok"
    # Oversized from the executor: refused too, never delivered to the harness.
    await ex.send_bytes(encode_data("ok", 1, 0, 0, b"y" * 5000))
    f = await recv(h)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "ok", FRAME_TOO_LARGE)
    await expect_metrics(http, server, {("bad_frames_total", '{reason="too_large"}'): 2,
                                        ("resets_total", '{reason="frame_too_large",to="executor"}'): 2})


async def test_garbage_and_text_dropped_socket_stays_up(make_server, http) -> None:
    server = await make_server()
    ex, h = await open_stream(http, server)
    for junk in (b"\xff\xff\xff", b"", b"\x08\x01", b"\x12\x00\x2a\x00", b"\x12\x03 s "):
        await h.send_bytes(junk)
    await h.send_str('{"id":1,"method":"initialize"}')
    await ex.send_bytes(b"\x0a\x0b\x0c")
    await ex.send_str("text from executor")
    await h.send_bytes(data("s", 1))
    assert await recv_raw(ex) == data("s", 1)  # nothing of the junk got through
    await ex.send_bytes(data("s", 0, b'{"id":1,"result":{}}'))
    assert (await recv(h)).payload == b'{"id":1,"result":{}}'  # and nothing fatal reached h
    await expect_metrics(http, server, {("bad_frames_total", '{reason="undecodable"}'): 6,
                                        ("bad_frames_total", '{reason="text"}'): 2})


async def test_invalid_executor_frame_on_a_stream_is_not_forwarded(make_server, http) -> None:
    """A Reset with an empty reason is fatal to a 0.131.0 harness: never forward it."""
    server = await make_server()
    ex, h = await open_stream(http, server)
    empty_reset = b"\x08\x01\x12\x01s\x42\x00"
    await ex.send_bytes(empty_reset)
    f = await recv(h)
    assert (f.kind, f.stream_id) == (RESET, "s")
    assert f.reason.startswith(PROTOCOL_ERROR)
    f = await recv(ex)
    assert f.kind == RESET and f.reason.startswith(PROTOCOL_ERROR)


async def test_harness_that_stops_reading_is_cut_off_without_delaying_others(make_server, http) -> None:
    server = await make_server(harness_queue_bytes=512 * 1024)
    ex = await connect_executor(http, server, "e")
    slow = await http.ws_connect(server.harness_url("e"), max_msg_size=0)
    fast = await connect_harness(http, server, "e")
    await slow.send_bytes(data("slow", 0))
    await fast.send_bytes(data("fast", 0))
    await recv_raw(ex), await recv_raw(ex)
    chunk = encode_data("slow", 0, 0, 0, b"z" * 65536)
    worst = 0.0
    reset_seen = None
    deadline = time.monotonic() + 20
    sent = 0
    while reset_seen is None and time.monotonic() < deadline:
        for _ in range(16):
            await ex.send_bytes(chunk)  # the slow harness never reads
            sent += 1
        t0 = time.monotonic()
        await ex.send_bytes(data("fast", sent, b'{"id":1,"result":{}}'))
        assert (await recv(fast, 2.0)).seq == sent
        worst = max(worst, time.monotonic() - t0)
        try:
            while True:
                f = await recv(ex, 0.01)
                if f.kind == RESET and f.stream_id == "slow":
                    reset_seen = f
        except asyncio.TimeoutError:
            pass
    assert reset_seen is not None, f"no Reset after {sent} x 64 KiB"
    assert reset_seen.reason == HARNESS_TOO_SLOW
    assert worst < 1.0, worst
    # The fast harness keeps working after the cut-off.
    await fast.send_bytes(data("fast", 1))
    assert await recv_raw(ex) == data("fast", 1)
    await expect_metrics(http, server, {("queue_drops_total", '{queue="harness"}'): 1,
                                        ("resets_total", '{reason="harness_too_slow",to="executor"}'): 1,
                                        ("connections", '{role="harness"}'): 1})


async def test_data_seq_one_first_counts_as_reliable(make_server, http) -> None:
    """P2: an opening Resume may be lost; Data seq >= 1 first also means reliable."""
    server = await make_server(harness_grace=0.6)
    ex, h = await open_streams(http, server, data("rel", 1), data("leg", 0))
    await h.close()
    f = await recv(ex, 2.0)
    assert (f.stream_id, f.reason) == ("leg", HARNESS_DISCONNECTED)
    await expect_silence(ex, 0.3)
    f = await recv(ex, 2.0)
    assert (f.stream_id, f.reason) == ("rel", HARNESS_DISCONNECTED)


async def test_message_over_reader_cap_closes_only_that_socket(make_server, http) -> None:
    server = await make_server(max_frame_bytes=8 * 1024, max_message_bytes=64 * 1024)
    ex = await connect_executor(http, server, "e")
    bad = await connect_harness(http, server, "e")
    good = await connect_harness(http, server, "e")
    await bad.send_bytes(data("b", 0))
    await good.send_bytes(data("g", 0))
    await recv_raw(ex), await recv_raw(ex)
    await bad.send_bytes(encode_data("b", 1, 0, 0, b"q" * (100 * 1024)))
    msg = await asyncio.wait_for(bad.receive(), 3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    f = await recv(ex)
    assert (f.stream_id, f.reason) == ("b", HARNESS_DISCONNECTED)
    await good.send_bytes(data("g", 1))
    assert await recv_raw(ex) == data("g", 1)
    await expect_metrics(http, server, {("bad_frames_total", '{reason="too_large"}'): 1})


async def test_executor_not_reading_pushes_back_on_harness_bounded(make_server, http) -> None:
    high = 256 * 1024
    server = await make_server(executor_high_water=high)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    frames = [encode_data("s", i, 0, 0, bytes([i % 251]) * 65536) for i in range(160)]  # 10 MiB

    async def pump() -> None:
        for f in frames:
            await h.send_bytes(f)

    task = asyncio.ensure_future(pump())
    await asyncio.sleep(1.0)  # the executor reads nothing meanwhile
    backlog = server.router.executor_backlog("e")
    # Bounded by the high-water mark plus one check interval (1 MiB) plus a frame.
    assert backlog <= high + (1 << 20) + 65536 + 1024, backlog
    got = [await recv_raw(ex, 10) for _ in frames]
    await asyncio.wait_for(task, 10)
    assert got == frames


async def test_many_streams_wait_for_absent_executor_without_quadratic_cost(make_server, http) -> None:
    """5,000 streams opened while the executor is away: delivered, or Reset, all at once."""
    server = await make_server(executor_grace=1.5)
    h = await connect_harness(http, server, "late")
    n = 5000
    t0 = time.monotonic()
    for i in range(n):
        await h.send_bytes(data(f"s{i}", 0))
    ex = await connect_executor(http, server, "late")
    got = [(await recv(ex, 10)).stream_id for _ in range(n)]
    assert got == [f"s{i}" for i in range(n)]
    await ex.close()  # now every stream waits again, then all are Reset together
    resets = [await recv(h, 10) for _ in range(n)]
    assert {f.stream_id for f in resets} == {f"s{i}" for i in range(n)}
    assert {f.reason for f in resets} == {EXECUTOR_UNAVAILABLE}
    assert time.monotonic() - t0 < 20
    await expect_metrics(http, server, {("streams", ""): 0})


async def test_slow_but_reading_harness_survives_a_burst(make_server, http) -> None:
    """Above the soft limit only briefly (it reads): not cut off.  Stopped reading: cut off."""
    server = await make_server(harness_queue_bytes=256 * 1024, harness_queue_hard_bytes=256 * 1024 * 1024,
                               harness_slow_after=1.5)
    ex = await connect_executor(http, server, "e")
    reader = await connect_harness(http, server, "e")
    await reader.send_bytes(data("r", 0))
    await recv_raw(ex)
    chunk = encode_data("r", 0, 0, 0, b"r" * 65536)
    for _ in range(128):  # 8 MiB burst, far above the 256 KiB soft limit
        await ex.send_bytes(chunk)
    for _ in range(128):
        assert await recv_raw(reader, 10) == chunk
    await expect_silence(ex, 0.2)  # no Reset: the harness kept reading
    text = await metrics_text(http, server)
    assert 'queue="harness"' not in text
    # Now a harness that never reads, fed continuously: cut off after the allowance.
    stuck = await connect_harness(http, server, "e")
    await stuck.send_bytes(data("s", 0))
    await recv_raw(ex)
    stuck_chunk = encode_data("s", 0, 0, 0, b"s" * 65536)
    t0 = time.monotonic()
    reset_seen = None
    while reset_seen is None and time.monotonic() - t0 < 20:
        for _ in range(8):
            await ex.send_bytes(stuck_chunk)
        try:
            f = await recv(ex, 0.02)
            if f.kind == RESET:
                reset_seen = f
        except asyncio.TimeoutError:
            pass
    assert reset_seen is not None and (reset_seen.stream_id, reset_seen.reason) == ("s", HARNESS_TOO_SLOW)
    assert time.monotonic() - t0 >= 1.5


async def test_stream_closed_while_executor_absent_leaves_nothing_behind(make_server, http) -> None:
    server = await make_server(executor_grace=0.4)
    h = await connect_harness(http, server, "never")
    await h.send_bytes(data("s", 0))
    await h.send_bytes(reset("s", "done"))  # the harness ends its stream before anyone came
    await h.send_bytes(data("t", 0))
    f = await recv(h, 3)
    assert (f.stream_id, f.reason) == ("t", EXECUTOR_UNAVAILABLE)
    await expect_silence(h, 0.3)
    text = await metrics_text(http, server)
    assert metric(text, "pending_frames") == 0 and metric(text, "streams") == 0
    await h.close()
    await asyncio.sleep(0.1)
    assert server.router.hubs == {}
