"""codex 0.131.0 in relay mode, through a minimal test relay (tests/interop/mini_relay.py).

These pin down the two recipes the remote-mode tests build on, independently of our
rendezvous: the real harness with ``CODEX_EXEC_SERVER_URL=ws://.../harness?role=harness&...``
and the real executor with ``codex exec-server --remote URL --executor-id ID``.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from execrelay.wire import DATA, RESUME

from .harness import run_tool_call
from .mini_relay import MiniRelay
from .procs import REMOTE_TOKEN_ENV, real_remote_executor_argv

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


def _check_harness_opening(relay: MiniRelay) -> None:
    """0.131.0 harness: Resume{next_seq 0}, then Data seq 0 initialize, seq 1 initialized."""
    frames = relay.harness_frames
    first = frames[0]
    assert first.kind == RESUME and first.next_seq == 0, first
    data = [f for f in frames if f.kind == DATA and f.stream_id == first.stream_id]
    assert [f.seq for f in data[:2]] == [0, 1]
    assert json.loads(data[0].payload) == {"id": 1, "method": "initialize",
                                           "params": {"clientName": "codex-environment", "resumeSessionId": None}}
    assert json.loads(data[1].payload) == {"method": "initialized", "params": {}}
    assert all(f.ack == 0 and f.ack_bits == 0 and f.segment_count == 1 for f in data)


@pytest.mark.parametrize("impl", ["ours", "real"])
async def test_relay_harness_to_plain_executor(impl: str, codex_bin: Path, tmp_path: Path,
                                               exec_server_factory) -> None:
    """Real harness (relay framing) -> MiniRelay bridge -> plain exec-server (ours / real)."""
    tag = f"executor-{uuid.uuid4().hex}"
    server = exec_server_factory(impl, {"EXECRELAY_TEST_EXECUTOR_TAG": tag})
    with MiniRelay(bridge_to=server.url) as relay:
        token, diag, model = await run_tool_call(codex_bin, tmp_path, relay.harness_url())
        outputs = model.tool_outputs()
        assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
        _check_harness_opening(relay)


async def test_real_harness_to_real_remote_executor(codex_bin: Path, tmp_path: Path, process_factory) -> None:
    """Real executor in --remote mode registers, then serves the real harness through MiniRelay."""
    tag = f"executor-{uuid.uuid4().hex}"
    with MiniRelay() as relay:
        executor = process_factory(
            real_remote_executor_argv(relay.base_url, "exec-1", codex_bin, name="probe"),
            {REMOTE_TOKEN_ENV: "  secret-token  ", "EXECRELAY_TEST_EXECUTOR_TAG": tag},
            wait_url=False, name="real-remote-executor")
        assert await asyncio.to_thread(relay.executor_connected.wait, 20), executor.stderr_text()[-3000:]
        assert relay.registrations == [{"executor_id": "exec-1", "authorization": "Bearer secret-token",
                                         "body": b""}]
        token, diag, model = await run_tool_call(codex_bin, tmp_path, relay.harness_url("exec-1"))
        outputs = model.tool_outputs()
        assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
        _check_harness_opening(relay)
        # Executor replies are legacy frames: seq 0,1,2... per stream, no acks, no segments.
        stream = relay.harness_frames[0].stream_id
        replies = [f for f in relay.executor_frames if f.stream_id == stream and f.kind == DATA]
        assert [f.seq for f in replies] == list(range(len(replies)))
        assert all(f.ack == 0 and f.ack_bits == 0 and f.segment_count == 1 for f in replies)
        assert executor.proc is not None and executor.proc.poll() is None

