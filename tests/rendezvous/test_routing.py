"""Routing between one fake executor socket and several fake harness sockets."""
from __future__ import annotations

from _rdv_helpers import (connect_executor, open_stream, connect_harness, data, expect_silence, metric,
                          metrics_text, recv, recv_raw, reset, resume)
from execrelay.rendezvous import STREAM_IN_USE
from execrelay.wire import RESET, encode_data


async def test_frames_routed_unmodified_between_executor_and_harnesses(make_server, http) -> None:
    server = await make_server()
    ex = await connect_executor(http, server, "exec-1")
    harnesses = [await connect_harness(http, server, "exec-1") for _ in range(3)]
    sent = []
    for i, h in enumerate(harnesses):
        sid = f"stream-{i}"
        frames = [resume(sid), data(sid, 0, f'{{"id":1,"method":"initialize","n":{i}}}')]
        for f in frames:
            await h.send_bytes(f)
        sent.extend(frames)
    got = [await recv_raw(ex) for _ in sent]
    assert sorted(got) == sorted(sent)  # byte-identical; harness order interleaves
    for i in range(3):  # per-harness order is kept
        mine = [g for g in got if f"stream-{i}".encode() in g]
        assert mine == [resume(f"stream-{i}"), data(f"stream-{i}", 0, f'{{"id":1,"method":"initialize","n":{i}}}')]
    # Replies go to the harness that owns each stream, and only there.
    for i in (2, 0, 1):
        for seq in range(3):
            await ex.send_bytes(data(f"stream-{i}", seq, f'{{"id":{seq},"result":{i}}}'))
    for i, h in enumerate(harnesses):
        for seq in range(3):
            assert await recv_raw(h) == data(f"stream-{i}", seq, f'{{"id":{seq},"result":{i}}}')
    for h in harnesses:
        await expect_silence(h, 0.1)
    text = await metrics_text(http, server)
    assert metric(text, "frames_routed_total", '{direction="to_executor"}') == 6
    assert metric(text, "frames_routed_total", '{direction="to_harness"}') == 9
    assert metric(text, "bytes_routed_total", '{direction="to_executor"}') == sum(map(len, sent))
    assert metric(text, "streams") == 3
    assert metric(text, "connections", '{role="harness"}') == 3


async def test_many_streams_on_one_harness_socket(make_server, http) -> None:
    server = await make_server()
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    for i in range(50):
        await h.send_bytes(data(f"s{i}", 0))
    got = {(await recv(ex)).stream_id for _ in range(50)}
    assert got == {f"s{i}" for i in range(50)}
    for i in range(50):
        await ex.send_bytes(data(f"s{i}", 0, b'{"id":1,"result":{}}'))
    assert [(await recv(h)).stream_id for _ in range(50)] == [f"s{i}" for i in range(50)]


async def test_intruder_is_refused_and_owner_unaffected(make_server, http) -> None:
    server = await make_server()
    ex = await connect_executor(http, server, "e")
    owner = await connect_harness(http, server, "e")
    intruder = await connect_harness(http, server, "e")
    await owner.send_bytes(resume("s1"))
    assert await recv_raw(ex) == resume("s1")
    await intruder.send_bytes(data("s1", 0, b'{"id":9,"method":"process/kill"}'))
    f = await recv(intruder)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "s1", STREAM_IN_USE)
    await intruder.send_bytes(resume("s1", 1))  # a Resume does not steal a live stream either
    f = await recv(intruder)
    assert (f.kind, f.reason) == (RESET, STREAM_IN_USE)
    await expect_silence(ex)
    await owner.send_bytes(data("s1", 0))
    assert await recv_raw(ex) == data("s1", 0)
    await ex.send_bytes(data("s1", 0, b'{"id":1,"result":{}}'))
    assert (await recv(owner)).payload == b'{"id":1,"result":{}}'
    await expect_silence(intruder)
    text = await metrics_text(http, server)
    assert metric(text, "resets_total", '{reason="stream_in_use",to="harness"}') == 2


async def test_harness_reset_is_forwarded_and_frees_the_stream_id(make_server, http) -> None:
    server = await make_server()
    ex = await connect_executor(http, server, "e")
    h1 = await connect_harness(http, server, "e")
    h2 = await connect_harness(http, server, "e")
    await h1.send_bytes(data("s", 0))
    assert await recv_raw(ex) == data("s", 0)
    await h1.send_bytes(reset("s", "done"))
    assert await recv_raw(ex) == reset("s", "done")
    await h2.send_bytes(data("s", 0))  # the id is free now
    assert await recv_raw(ex) == data("s", 0)
    await ex.send_bytes(data("s", 0, b'{"id":1,"result":2}'))
    assert (await recv(h2)).payload == b'{"id":1,"result":2}'
    await expect_silence(h1)


async def test_executor_reset_reaches_harness_and_unbinds(make_server, http) -> None:
    server = await make_server()
    ex, h = await open_stream(http, server)
    await ex.send_bytes(reset("s", "stream ended"))
    f = await recv(h)
    assert (f.kind, f.reason) == (RESET, "stream ended")
    text = await metrics_text(http, server)
    assert metric(text, "streams") == 0


async def test_frames_for_unknown_streams_are_dropped(make_server, http) -> None:
    server = await make_server()
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await ex.send_bytes(data("nobody", 0, b'{"id":1,"result":{}}'))
    await h.send_bytes(reset("never-opened"))  # a Reset opens nothing
    await expect_silence(h)
    await expect_silence(ex)
    text = await metrics_text(http, server)
    assert metric(text, "frames_dropped_total", '{reason="no_route"}') == 2
    assert metric(text, "streams") == 0


async def test_large_frames_pass_through(make_server, http) -> None:
    server = await make_server()
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    big = encode_data("s", 0, 0, 0, b"x" * (3 * 1024 * 1024))
    await h.send_bytes(big)
    assert await recv_raw(ex, 10) == big
    await ex.send_bytes(big)
    assert await recv_raw(h, 10) == big


async def test_non_ascii_stream_ids_are_routed_both_ways(make_server, http, monkeypatch) -> None:
    """Stream ids are UTF-8: their length prefix counts bytes, not characters.

    After a stream's first frame, its canonical Data frames (with or without acks) take the
    router's no-decode path in both directions, whatever the id's characters; a Reset is
    still decoded, forwarded and frees the id.
    """
    import execrelay.rendezvous.router as router_mod

    decoded: list[str] = []
    real_decode = router_mod.decode

    def counting_decode(buf: bytes):  # type: ignore[no-untyped-def]
        frame = real_decode(buf)
        decoded.append(frame.stream_id)
        return frame

    monkeypatch.setattr(router_mod, "decode", counting_decode)
    server = await make_server()
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    sids = ["流-0001", "é" * 60, "s-\U0001f600", "ascii"]
    for sid in sids:
        assert len(sid.encode()) != len(sid) or sid == "ascii"
        await h.send_bytes(data(sid, 0))
        assert await recv_raw(ex) == data(sid, 0)
    assert decoded == sids  # the first frame of each stream only
    for sid in sids:
        frames = [data(sid, 1, b'{"id":2}'), encode_data(sid, 2, 7, 3, b'{"id":3}')]
        for f in frames:
            await h.send_bytes(f)
            assert await recv_raw(ex) == f
            await ex.send_bytes(f)
            assert await recv_raw(h) == f
    assert decoded == sids  # no further decodes: canonical frames were recognised
    await ex.send_bytes(reset(sids[0], "done"))
    f = await recv(h)
    assert (f.kind, f.stream_id, f.reason) == (RESET, sids[0], "done")
    await ex.send_bytes(data(sids[0], 3))  # unbound now: dropped
    await ex.send_bytes(data(sids[1], 3))
    assert await recv_raw(h) == data(sids[1], 3)
    text = await metrics_text(http, server)
    assert metric(text, "streams") == len(sids) - 1
