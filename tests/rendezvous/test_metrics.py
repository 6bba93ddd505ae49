"""/readyz and /metrics (Prometheus text)."""
from __future__ import annotations

import re

from _rdv_helpers import connect_executor, connect_harness, data, metric, metrics_text, recv, recv_raw, resume


async def test_readyz(make_server, http) -> None:
    server = await make_server()
    async with http.get(f"{server.url}/readyz") as resp:
        assert resp.status == 200


async def test_metrics_exposition_and_counts(make_server, http) -> None:
    server = await make_server()
    text = await metrics_text(http, server)
    # Every sample line is `name{labels} value`; every family has HELP and TYPE; the names are
    # the rendezvous's own and the build-info gauge every component carries.
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) execrelay_(rendezvous_\w+|build_info) .+", line), line
        else:
            assert re.fullmatch(r'execrelay_(rendezvous_\w+|build_info)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? \d+(\.\d+)?', line), line
    assert metric(text, "connections", '{role="executor"}') == 0
    ex = await connect_executor(http, server, "e")
    h1 = await connect_harness(http, server, "e")
    h2 = await connect_harness(http, server, "e")
    frames = [resume("a"), data("a", 0), data("a", 1)]
    for f in frames:
        await h1.send_bytes(f)
    for _ in frames:
        await recv_raw(ex)
    await h2.send_bytes(data("a", 0))  # intruder
    await recv(h2)
    await ex.send_bytes(data("a", 0, b'{"id":1,"result":{}}'))
    await recv(h1)
    text = await metrics_text(http, server)
    assert metric(text, "connections", '{role="executor"}') == 1
    assert metric(text, "connections", '{role="harness"}') == 2
    assert metric(text, "connections_total", '{role="harness"}') == 2
    assert metric(text, "registrations_total") == 1
    assert metric(text, "streams") == 1
    assert metric(text, "streams_opened_total") == 1
    assert metric(text, "frames_routed_total", '{direction="to_executor"}') == 3
    assert metric(text, "bytes_routed_total", '{direction="to_executor"}') == sum(map(len, frames))
    assert metric(text, "frames_routed_total", '{direction="to_harness"}') == 1
    assert metric(text, "resets_total", '{reason="stream_in_use",to="harness"}') == 1
    assert metric(text, "executors_connected") == 1
    await h1.close()
    f = await recv(ex)
    assert f.reason == "harness_disconnected"
    text = await metrics_text(http, server)
    assert metric(text, "connections", '{role="harness"}') == 1
    assert metric(text, "streams") == 0
    assert metric(text, "resets_total", '{reason="harness_disconnected",to="executor"}') == 1
    await h2.close()
    await ex.close()
