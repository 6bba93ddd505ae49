"""Issue 13's soak, briefly: the hostile clients against one rendezvous + executor (child
processes) while well-behaved sessions run; the functional outcomes, asserted exactly.

Speed (p99 within +1 ms of the quiet run) is judged by ``benchmarks/soak_hostile.py``, never
here: the 2 s below is a liveness bound (a frozen executor misses it by seconds), not a target.
The rendezvous runs with short guard settings so their effect shows within the test's time:
docs/rendezvous.md §Security model describes the guards, the values are ours.
"""
from __future__ import annotations

import asyncio

import pytest

from execrelay.bench.soak import SoakConfig, run_soak

pytestmark = pytest.mark.timeout(120)

LIVENESS_S = 2.0
HANDSHAKE_TIMEOUT_S = 2.0
SLOWLORIS = 30            # under the cap: each one must meet the handshake timeout
STREAM_RATE = 100.0
STREAM_BURST = 200
#: RSS bounds (MiB).  Idle: executor ~45, rendezvous ~42.  Under the attack the executor's
#: growth is bounded by the non-acked stream's output bound and the reassembly budget (peaks
#: seen: 60-75); the rendezvous's by its stream caps, the unauthenticated-connection cap and
#: the per-harness outbound queue (24 MiB soft, 48 MiB hard, counted in frame bytes: the
#: flooder's queue of tiny Resets costs a few times that; peaks seen 47-83 here, 151 with the
#: default rate and burst in benchmarks/soak_hostile.py).
EXECUTOR_RSS_MIB = 128
RENDEZVOUS_RSS_MIB = 192

CFG = SoakConfig(seconds=6.0, warmup=0.5, sessions=3, interval=0.02, request_timeout=LIVENESS_S,
                 slowloris=SLOWLORIS, handshake_timeout=HANDSHAKE_TIMEOUT_S,
                 stream_rate=STREAM_RATE,
                 stream_burst=STREAM_BURST)


@pytest.fixture(scope="module")
def soak() -> dict:
    """One soak run shared by the assertions below (it takes ~20 s)."""
    return asyncio.run(asyncio.wait_for(run_soak(CFG), 100))


def _phase_ok(result: dict, phase: str) -> None:
    s = result[phase]
    assert s["sent"] > 0, result
    assert (s["lost"], s["wrong"], s["duplicates"]) == (0, 0, 0), s["failures"]
    assert s["answered"] == s["sent"]
    assert s["max_ms"] < LIVENESS_S * 1000


def test_quiet_sessions_answered_exactly_once(soak: dict) -> None:
    _phase_ok(soak, "quiet")


def test_hostile_sessions_answered_exactly_once_within_liveness_bound(soak: dict) -> None:
    """Every well-behaved request, with the FIFO read pending the whole phase: answered once,
    correctly, within 2 s -- the FIFO must block only its own request."""
    _phase_ok(soak, "hostile")


def test_fifo_read_waits_for_its_writer_then_answers(soak: dict) -> None:
    fifo = soak["hostile_clients"]["fifo_reader"]
    assert fifo["answered_before_release"] is False, fifo
    assert fifo["error"] is None, fifo
    assert fifo["answered"] and fifo["content_ok"], fifo


def test_cookie_not_leaked_to_another_session(soak: dict) -> None:
    setter = soak["hostile_clients"]["cookie_setter"]
    assert setter["status"] == 200 and setter["set_cookie_seen"], setter
    cookie = soak["cookie"]
    assert cookie["setter_requests_seen"] == 1 and cookie["error"] is None, cookie
    assert not cookie["leaked"], cookie


def test_rss_bounded(soak: dict) -> None:
    for phase, peaks in soak["rss_peak_kib"].items():
        assert peaks["executor"] < EXECUTOR_RSS_MIB * 1024, (phase, peaks)
        assert peaks["rendezvous"] < RENDEZVOUS_RSS_MIB * 1024, (phase, peaks)
    assert soak["alive_at_end"] == {"executor": True, "rendezvous": True}


def test_non_acking_harness_gets_a_bounded_window(soak: dict) -> None:
    """The flood started (frames arrived) and the executor survived it within its RSS bound;
    without acks it may send no more than its send window plus retransmissions of it."""
    nonack = soak["hostile_clients"]["non_acking_harness"]
    assert nonack["frames"] > 0, nonack
    assert nonack["bytes"] < 16 * 1024 * 1024, nonack


def test_stream_flooder_refused_at_the_creation_rate(soak: dict) -> None:
    flood = soak["hostile_clients"]["stream_flooder"]
    refused = soak["rendezvous_metrics"].get('streams_refused_total{reason="stream_rate_limited"}', 0)
    assert flood["resets_by_reason"].get("stream_rate_limited", 0) > 0, flood
    assert refused > 0
    # every stream the rendezvous let through, the well-behaved and other hostile ones included
    opened = soak["rendezvous_metrics"]["streams_opened_total"]
    assert opened <= STREAM_BURST + STREAM_RATE * soak["hostile_wall_s"] + 20, (flood, opened)


def test_slowloris_connections_closed_by_the_guard(soak: dict) -> None:
    loris = soak["hostile_clients"]["slowloris"]
    metrics = soak["rendezvous_metrics"]
    assert loris["closed_by_server"] > 0, loris
    # without the guard they would live the whole phase (~9 s); the slack is for a loaded machine
    assert loris["max_lifetime_s"] <= HANDSHAKE_TIMEOUT_S + 3.0, loris
    assert metrics.get('connections_dropped_total{reason="handshake_timeout"}', 0) > 0, metrics
