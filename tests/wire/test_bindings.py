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
        "resume": 7, "reset": 8, "heartbeat": 9}
    assert {f.name: f.number for f in pb.RelayData.DESCRIPTOR.fields} == {
        "seq": 1, "segment_index": 2, "segment_count": 3, "payload": 4}
    assert [f.name for f in frame.oneofs_by_name["body"].fields] == [
        "data", "ack_frame", "resume", "reset", "heartbeat"]


def test_accelerated_reports_the_choice():
    import os

    import execrelay

    active = execrelay.accelerated()
    if os.environ.get("EXECRELAY_PURE") == "1":
        assert active["wire"] == "pure"
    assert active["wire"] in ("cython", "pure")
