"""The checked-in protobuf bindings match proto/ (regenerate with python proto/regen.py)."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_checked_in_bindings_are_fresh():
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) is needed to regenerate")
    result = subprocess.run([sys.executable, str(ROOT / "proto" / "regen.py"), "--check"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_proto_matches_upstream_field_numbers():
    from execrelay.wire import relay_pb2 as pb

    frame = pb.RelayMessageFrame.DESCRIPTOR
    assert frame.full_name == "codex.exec_server.relay.v1.RelayMessageFrame"
    assert {f.name: f.number for f in frame.fields} == {
        "version": 1, "stream_id": 2, "ack": 3, "ack_bits": 4, "data": 5, "ack_frame": 6,
        "resume": 7, "reset": 8, "heartbeat": 9, "handshake": 10}
    assert {f.name: f.number for f in pb.RelayData.DESCRIPTOR.fields} == {
        "seq": 1, "segment_index": 2, "segment_count": 3, "payload": 4}
    assert {f.name: f.number for f in pb.RelayHandshake.DESCRIPTOR.fields} == {"payload": 1}
    assert [f.name for f in frame.oneofs_by_name["body"].fields] == [
        "data", "ack_frame", "resume", "reset", "heartbeat", "handshake"]


def test_accelerated_reports_the_choice():
    """Each component reports the build it runs: all pure when forced, all compiled when
    EXECRELAY_REQUIRE_EXT demands it, and otherwise pure only as a reported fallback."""
    import execrelay
    from execrelay import _accel

    active = execrelay.accelerated()
    assert set(active) == {"wire", "stream.window", "stream.sendwin", "stream.reasm", "stream.noiserec",
                           "fsmeta", "reqstats", "picows", "rdvfast"}
    if _accel.FORCE_PURE:
        assert set(active.values()) == {"pure"}
    elif _accel.REQUIRE_EXT:
        assert set(active.values()) == {"cython"}
    else:
        assert {c for c, impl in active.items() if impl == "pure"} == set(_accel.FALLBACKS)


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("", False), ("0", False), ("false", False), ("No", False), ("off", False), (None, False)])
def test_flags_parse_explicitly(value, expected):
    from execrelay._flags import parse_flag

    assert parse_flag("EXECRELAY_PURE", value) is expected


def test_flags_refuse_anything_else():
    from execrelay._flags import parse_flag

    with pytest.raises(ValueError, match="EXECRELAY_PURE='maybe'"):
        parse_flag("EXECRELAY_PURE", "maybe")
