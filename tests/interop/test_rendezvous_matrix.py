"""The interop matrix through OUR rendezvous (issue 5), with the real codex 0.131.0:

* our harness client   -> our rendezvous -> real ``codex exec-server --remote`` (legacy streams)
* real ``codex exec``  -> our rendezvous -> our remote executor
* real ``codex exec``  -> our rendezvous -> real remote executor
(ours -> ours in reliable mode is tests/e2e.)
"""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from execrelay.harness import HarnessClient, RpcCallError
from execrelay.rendezvous import RendezvousServer

from .harness import run_tool_call
from .our_executor import remote_executor
from .procs import REMOTE_TOKEN_ENV, real_remote_executor_argv

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]


@pytest.fixture
async def rendezvous():
    server = RendezvousServer(executor_grace=20.0, harness_grace=5.0)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.aclose()


def start_real_executor(process_factory, rendezvous: RendezvousServer, executor_id: str, tag: str):
    return process_factory(real_remote_executor_argv(rendezvous.url, executor_id),
                           {REMOTE_TOKEN_ENV: rendezvous.mint_token("executor", executor_id),
                            "EXECRELAY_TEST_EXECUTOR_TAG": tag},
                           wait_url=False, name=f"real-executor-{executor_id}")


async def test_our_harness_to_real_remote_executor(codex_bin, rendezvous, process_factory, tmp_path):
    tag = uuid.uuid4().hex
    start_real_executor(process_factory, rendezvous, "exec-real", tag)
    async with HarnessClient(rendezvous.harness_url("exec-real")) as client:
        a, b = await asyncio.gather(client.open_session(timeout=30), client.open_session(timeout=30))
        assert a.session_id != b.session_id
        # the 0.131.0 executor never answers Resume{1}: the client fell back to legacy
        # (docs/relay-protocol.md §Stream modes)
        assert client.stream_mode(a) == "legacy"
        assert (await a.fs_get_metadata("/"))["isDirectory"] is True
        code, out, _ = await b.run(["/bin/sh", "-c", 'echo "tag=$EXECRELAY_TEST_EXECUTOR_TAG"'], str(tmp_path),
                                   env={"PATH": "/usr/bin:/bin", "EXECRELAY_TEST_EXECUTOR_TAG": tag})
        assert (code, out) == (0, f"tag={tag}\n".encode())
        with pytest.raises(RpcCallError) as info:
            await a.call("test/unknown", {})
        assert info.value.code == -32601 and "test/unknown" in info.value.message


async def test_real_harness_to_our_remote_executor(codex_bin, rendezvous, tmp_path, monkeypatch):
    tag = uuid.uuid4().hex
    monkeypatch.setenv("EXECRELAY_TEST_EXECUTOR_TAG", tag)
    async with remote_executor(rendezvous, "exec-ours"):
        token, diag, model = await run_tool_call(codex_bin, tmp_path, rendezvous.harness_url("exec-ours"))
        outputs = model.tool_outputs()
        assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)


async def test_real_harness_to_real_executor_via_our_rendezvous(codex_bin, rendezvous, process_factory, tmp_path):
    tag = uuid.uuid4().hex
    start_real_executor(process_factory, rendezvous, "exec-real", tag)
    token, diag, model = await run_tool_call(codex_bin, tmp_path, rendezvous.harness_url("exec-real"))
    outputs = model.tool_outputs()
    assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
