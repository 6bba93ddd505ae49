"""process/start|read|write|terminate and their notifications."""
from __future__ import annotations

import asyncio
import base64

import pytest

from .conftest import Client, b64, start_params

pytestmark = pytest.mark.timeout(30)


async def test_start_notifications_seq_contiguous(client: Client) -> None:
    argv = ["/bin/sh", "-c", "printf 'out1\\n'; printf 'err1\\n' >&2; exit 3"]
    assert await client.result("process/start", start_params("p1", argv)) == {"processId": "p1"}
    events = await client.wait_closed("p1")
    seqs = sorted(e["params"]["seq"] for e in events)
    assert seqs == [1, 2, 3, 4]
    closed = [e for e in events if e["method"] == "process/closed"][0]
    assert closed["params"]["seq"] == 4
    exited = [e for e in events if e["method"] == "process/exited"][0]
    assert exited["params"]["exitCode"] == 3
    streams = {e["params"]["stream"]: base64.b64decode(e["params"]["chunk"]) for e in events
               if e["method"] == "process/output"}
    assert streams == {"stdout": b"out1\n", "stderr": b"err1\n"}
    assert await client.error("process/start", start_params("p1", argv)) == (-32600, "process p1 already exists")
    res = await client.result("process/read", {"processId": "p1"})
    assert res["exited"] and res["closed"] and res["exitCode"] == 3 and res["failure"] is None
    assert [c["seq"] for c in res["chunks"]] == sorted(c["seq"] for c in res["chunks"])
    assert res["nextSeq"] == res["chunks"][-1]["seq"] + 1
    res = await client.result("process/read", {"processId": "p1", "afterSeq": 10, "waitMs": 500})
    assert res["chunks"] == [] and res["nextSeq"] == 5
    res = await client.result("process/read", {"processId": "p1", "maxBytes": 1})
    assert len(res["chunks"]) == 1


async def test_param_errors(client: Client) -> None:
    base = start_params("e", ["true"])
    for name in ("processId", "argv", "cwd", "env", "tty"):
        p = dict(base)
        del p[name]
        assert await client.error("process/start", p) == (-32602, f"missing field `{name}`")
    assert await client.error("process/start", dict(base, argv=[])) == (-32602, "argv must not be empty")
    assert await client.error("process/start", dict(base, tty="no")) == (
        -32602, 'invalid type: string "no", expected a boolean')
    assert await client.error("process/read", {"processId": "x", "afterSeq": -1}) == (
        -32602, "invalid value: integer `-1`, expected u64")
    assert await client.error("process/read", {"processId": "nope"}) == (-32600, "unknown process id nope")


async def test_bad_program_or_cwd_leaves_id_free(client: Client) -> None:
    assert await client.error("process/start", start_params("b", ["/no/such/prog"])) == (
        -32603, "No such file or directory (os error 2)")
    assert await client.error("process/start", start_params("b", ["true"], cwd="/no/such/dir")) == (
        -32603, "No such file or directory (os error 2)")
    assert await client.result("process/start", start_params("b", ["true"])) == {"processId": "b"}


async def test_env_empty_and_default_search_path(client: Client) -> None:
    await client.result("process/start", start_params("e", ["env"], env={}))
    await client.wait_closed("e")
    assert client.output("e") == b""


async def test_env_policy(client: Client) -> None:
    policy = {"inherit": "none", "ignoreDefaultExcludes": False, "exclude": [], "set": {"FROM_SET": "s"},
              "includeOnly": []}
    await client.result("process/start", start_params("e", ["/usr/bin/env"], env={"OVERLAY": "1"},
                                                       envPolicy=policy))
    await client.wait_closed("e")
    assert sorted(client.output("e").decode().split()) == ["FROM_SET=s", "OVERLAY=1"]
    assert await client.error("process/start", start_params("f", ["true"], envPolicy={"inherit": "all"})) == (
        -32602, "missing field `ignoreDefaultExcludes`")


async def test_env_policy_excludes_secrets(client: Client, monkeypatch) -> None:
    monkeypatch.setenv("MY_API_TOKEN", "x")
    monkeypatch.setenv("EXECRELAY_T_KEEP", "y")
    policy = {"inherit": "all", "ignoreDefaultExcludes": False, "exclude": [], "set": {}, "includeOnly": []}
    await client.result("process/start", start_params("e", ["/usr/bin/env"], env={}, envPolicy=policy))
    await client.wait_closed("e")
    out = client.output("e").decode()
    assert "EXECRELAY_T_KEEP=y" in out and "MY_API_TOKEN" not in out


async def test_arg0(client: Client) -> None:
    await client.result("process/start", start_params("a", ["/bin/sh", "-c", "echo $0"], arg0="custom0"))
    await client.wait_closed("a")
    assert client.output("a") == b"custom0\n"


async def test_tty(client: Client) -> None:
    await client.result("process/start", start_params("t", ["/bin/sh", "-c", "stty size; echo hi"], tty=True))
    events = await client.wait_closed("t")
    assert {e["params"]["stream"] for e in events if e["method"] == "process/output"} == {"pty"}
    assert client.output("t") == b"24 80\r\nhi\r\n"


async def test_tty_write_echo_and_terminate_exit_code(client: Client) -> None:
    await client.result("process/start", start_params("t", ["/bin/cat"], tty=True))
    assert await client.result("process/write", {"processId": "t", "chunk": b64("abc\n")}) == {"status": "accepted"}
    await client.wait_for(lambda m: m.get("method") == "process/output" and client.output("t").count(b"abc") >= 2)
    assert await client.result("process/terminate", {"processId": "t"}) == {"running": True}
    events = await client.wait_closed("t")
    assert [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"] == [1]


async def test_pipe_stdin(client: Client) -> None:
    await client.result("process/start", start_params("c", ["/bin/cat"], pipeStdin=True))
    assert await client.result("process/write", {"processId": "c", "chunk": b64("abc\n")}) == {"status": "accepted"}
    await client.wait_for(lambda m: client.output("c") == b"abc\n")
    assert await client.result("process/terminate", {"processId": "c"}) == {"running": True}
    events = await client.wait_closed("c")
    assert [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"] == [-1]
    assert await client.result("process/terminate", {"processId": "c"}) == {"running": False}


async def test_write_statuses(client: Client) -> None:
    await client.result("process/start", start_params("s", ["/bin/sleep", "10"]))
    assert await client.result("process/write", {"processId": "s", "chunk": b64("x")}) == {"status": "stdinClosed"}
    assert await client.result("process/write", {"processId": "n", "chunk": b64("x")}) == {"status": "unknownProcess"}
    assert await client.error("process/write", {"processId": "s", "chunk": "@"}) == (-32602, "Invalid symbol 64, offset 0.")
    assert await client.result("process/terminate", {"processId": "nope"}) == {"running": False}


async def test_terminate_kills_process_group(client: Client, server) -> None:
    await client.result("process/start", start_params("g", ["/bin/sh", "-c", "sleep 100 & echo $!; wait"]))
    await client.wait_for(lambda m: client.output("g").endswith(b"\n"))
    grandchild = int(client.output("g"))
    assert await client.result("process/terminate", {"processId": "g"}) == {"running": True}
    await client.wait_closed("g")
    from .test_sessions import _alive

    for _ in range(40):
        if not _alive(grandchild):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("grandchild survived terminate")


async def test_long_poll_wakes_on_output(client: Client) -> None:
    await client.result("process/start", start_params("l", ["/bin/sh", "-c", "sleep 0.3; echo late"]))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    res = await client.result("process/read", {"processId": "l", "afterSeq": 0, "waitMs": 4000})
    assert 0.2 < loop.time() - t0 < 2.0
    assert base64.b64decode(res["chunks"][0]["chunk"]) == b"late\n"


async def test_large_output_chunking_and_retention(client: Client) -> None:
    total = 3_000_000
    await client.result("process/start", start_params("big", ["/bin/sh", "-c", f"head -c {total} /dev/zero"]))
    events = await client.wait_closed("big", timeout=20)
    outs = [e for e in events if e["method"] == "process/output"]
    sizes = [len(base64.b64decode(e["params"]["chunk"])) for e in outs]
    assert sum(sizes) == total and max(sizes) <= 8192
    assert sorted(e["params"]["seq"] for e in events) == list(range(1, len(events) + 1))
    res = await client.result("process/read", {"processId": "big", "afterSeq": 0})
    kept = sum(len(base64.b64decode(c["chunk"])) for c in res["chunks"])
    assert 1024 * 1024 - 8192 < kept <= 1024 * 1024


async def test_eviction_after_closed(client: Client) -> None:
    await client.result("process/start", start_params("ev", ["/bin/echo", "one"]))
    await client.wait_closed("ev")
    await asyncio.sleep(0.7)  # retention is 0.5 s in these tests
    assert await client.error("process/read", {"processId": "ev"}) == (-32600, "unknown process id ev")
    assert await client.result("process/start", start_params("ev", ["/bin/echo", "two"])) == {"processId": "ev"}


async def test_exit_codes(client: Client) -> None:
    await client.result("process/start", start_params("x", ["/bin/sh", "-c", "exit 300"]))
    await client.result("process/start", start_params("k", ["/bin/sh", "-c", "kill -9 $$"]))
    ex = [e for e in await client.wait_closed("x") if e["method"] == "process/exited"]
    ek = [e for e in await client.wait_closed("k") if e["method"] == "process/exited"]
    assert ex[0]["params"]["exitCode"] == 44 and ek[0]["params"]["exitCode"] == -1
