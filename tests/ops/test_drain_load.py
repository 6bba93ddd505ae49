"""SIGTERM under load (issue 17, "Done when"): no acknowledged request is lost, no child is left.

A real ``execrelay exec-server`` (a local websocket, then ``--remote`` through a real
``execrelay rendezvous``) with ``--drain-timeout 5`` is driven by several sessions that send
requests continuously (``fs/getMetadata``, ``process/start`` of a short sleep read until it
exits, ``fs/readFile``); SIGTERM comes mid-load.  Most sessions stop starting new work when the
signal is sent (a harness reacting to the drain) but finish what they started; one keeps going
regardless and holds a process that outlives the timeout, so the drain runs to its timeout and
kills what is left.  Checked
(docs/operations.md §Graceful drain):

* every answer any session saw is complete and correct (metadata of the right file, the file's
  exact bytes, the process's own pid as its output and exit code 0, unless the drain timeout
  killed it);
* every request got an answer or a clear end: a relay stream Reset with ``executor_draining``,
  or (local websocket) the connection dropped after the drain, never silence;
* the executor exits 0 and no process started by it is left: every child carries a marker in
  its environment and /proc is scanned for it after the exit.

Process-level (signals to real commands), so it runs in the compiled pass only.
"""
from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from execrelay.harness import ConnectionLost, HarnessClient, RpcCallError
from execrelay.harness.session import ExecSession

from ._procs import alive, await_exit, execrelay, json_lines, start, start_relay_pair, wait_log

pytestmark = [
    pytest.mark.skipif(os.environ.get("EXECRELAY_PURE") == "1",
                       reason="process-level: the compiled pass covers it (signals, real processes)"),
    pytest.mark.timeout(90),
]

DRAIN_TIMEOUT = 5.0
SESSIONS = 4
#: the local executor drops its websockets when it exits (as 0.131.0 does, no close frame)
LOCAL_END = "websocket closed"
REMOTE_END = "executor_draining"
#: a request with neither answer nor end after this long is silence: the test fails
SILENCE = 15.0


@dataclass
class Record:
    """One request as the harness saw it."""
    method: str
    sent: float
    done: float = 0.0
    outcome: str = ""  # ok | error | lost | silence
    detail: str = ""


@dataclass
class Load:
    """What the sessions saw and did."""
    marker: str
    data: bytes
    path: Path
    records: list[Record] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    bad: list[str] = field(default_factory=list)
    sigterm_at: float = 0.0


async def _call(load: Load, method: str, make: Callable[[], Awaitable[Any]]) -> Any:
    """Run one request; record how it ended.  Raises ConnectionLost to end the session's loop."""
    rec = Record(method, time.monotonic())
    load.records.append(rec)
    try:
        result = await asyncio.wait_for(make(), SILENCE)
    except ConnectionLost as exc:
        rec.done, rec.outcome, rec.detail = time.monotonic(), "lost", str(exc.reason)
        raise
    except RpcCallError as exc:
        rec.done, rec.outcome, rec.detail = time.monotonic(), "error", f"{exc.code} {exc}"
        load.bad.append(f"{method}: unexpected error {exc.code} {exc}")
        raise ConnectionLost(f"error {exc}") from None
    except asyncio.TimeoutError:
        rec.done, rec.outcome = time.monotonic(), "silence"
        load.bad.append(f"{method} sent at +{rec.sent - load.sigterm_at:.2f}s: no answer, no end")
        raise ConnectionLost("silence") from None
    rec.done, rec.outcome = time.monotonic(), "ok"
    return result


async def _iteration(load: Load, session: ExecSession, name: str) -> None:
    """getMetadata, a process read until it exits, readFile; each answer checked."""
    meta = await _call(load, "fs/getMetadata", lambda: session.fs_get_metadata(load.path))
    if meta.get("isFile") is not True or meta.get("isDirectory") is not False:
        load.bad.append(f"fs/getMetadata: wrong answer {meta}")
    started = await _call(load, "process/start", lambda: session.process_start(
        name, ["/bin/sh", "-c", "echo $$; exec sleep 0.5"], "/",
        {"PATH": "/usr/bin:/bin", "EXECRELAY_DRAIN_MARK": load.marker}))
    if started.get("processId") != name:
        load.bad.append(f"process/start: wrong answer {started}")
    out, seq = b"", 0
    while True:
        result = await _call(load, "process/read", lambda: session.process_read(name, after_seq=seq, wait_ms=2000))
        for chunk in result["chunks"]:
            out += base64.b64decode(chunk["chunk"])
        seq = max(seq, result["nextSeq"] - 1)
        if out.endswith(b"\n") and out.split()[0].isdigit():
            load.pids.add(int(out.split()[0]))
        if result["exited"]:
            break
    # a sleep still running when the drain timed out was killed (only the stubborn session's)
    killed_by_drain = bool(load.sigterm_at) and time.monotonic() >= load.sigterm_at + DRAIN_TIMEOUT - 0.1
    if not (out.strip().isdigit() and (result["exitCode"] == 0 or killed_by_drain)):
        load.bad.append(f"process {name}: output {out!r}, exit code {result['exitCode']}")
    data = await _call(load, "fs/readFile", lambda: session.fs_read_file(load.path))
    if data != load.data:
        load.bad.append(f"fs/readFile: {len(data)} bytes, not the file's {len(load.data)}")


async def _start_long(load: Load, session: ExecSession) -> None:
    """A process that outlives the drain timeout, so the drain cannot end early in the instant
    between two of the stubborn session's requests: it must time out and kill this one."""
    await _call(load, "process/start", lambda: session.process_start(
        "long", ["/bin/sh", "-c", "echo $$; exec sleep 60"], "/",
        {"PATH": "/usr/bin:/bin", "EXECRELAY_DRAIN_MARK": load.marker}))
    out, seq = b"", 0
    while not out.endswith(b"\n"):
        result = await _call(load, "process/read", lambda: session.process_read("long", after_seq=seq, wait_ms=2000))
        out += b"".join(base64.b64decode(c["chunk"]) for c in result["chunks"])
        seq = max(seq, result["nextSeq"] - 1)
    load.pids.add(int(out))


async def _drive(load: Load, session: ExecSession, index: int, stop: asyncio.Event, stubborn: bool) -> str:
    """Iterate until ``stop`` (or, ``stubborn``, until the session ends, with a process that
    outlives the drain timeout); then wait for the session's end.  Returns its end reason."""
    n = 0
    try:
        if stubborn:
            await _start_long(load, session)
        while stubborn or not stop.is_set():
            n += 1
            await _iteration(load, session, f"s{index}-{n}")
    except ConnectionLost:
        pass
    deadline = time.monotonic() + DRAIN_TIMEOUT + SILENCE
    while not session.closed and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return str(session.closed_reason)


def _marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (children of the executor
    and anything they started, whatever their parent or process group is now)."""
    needle = f"EXECRELAY_DRAIN_MARK={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(") ", 1)[1][0]
        except OSError:
            continue
        if needle in env and state != "Z":
            found.append(int(entry))
    return found


async def _load_and_sigterm(proc: Any, client: HarnessClient, load: Load, end: str) -> None:
    sessions = [await client.open_session() for _ in range(SESSIONS)]
    stop = asyncio.Event()
    drivers = [asyncio.ensure_future(_drive(load, s, i, stop, stubborn=(i == 0))) for i, s in enumerate(sessions)]
    await asyncio.sleep(1.2)  # every session is mid-iteration by now
    assert not load.bad, load.bad
    assert _marked_processes(load.marker), "the /proc scan sees no running child: it could not catch a leak"
    load.sigterm_at = time.monotonic()
    os.kill(proc.proc.pid, signal.SIGTERM)
    stop.set()
    await wait_log(proc, "drain started")
    # no new session while draining: a relay stream is Reset, a local initialize refused
    with pytest.raises((ConnectionLost, RpcCallError)) as refused:
        await client.open_session(timeout=10)
    assert (REMOTE_END if end == REMOTE_END else "executor is draining") in str(refused.value)
    rc = await await_exit(proc.proc, DRAIN_TIMEOUT + 15)
    reasons = await asyncio.wait_for(asyncio.gather(*drivers), SILENCE + DRAIN_TIMEOUT + 5)
    exited = time.monotonic()

    assert rc == 0
    assert not load.bad, load.bad
    assert reasons == [end] * SESSIONS, reasons
    before = [r for r in load.records if r.sent < load.sigterm_at]
    assert all(r.outcome in ("ok", "lost") for r in load.records)
    assert all(r.detail == end for r in load.records if r.outcome == "lost")
    # requests in flight when the signal came were answered, not dropped
    spanning = [r for r in before if r.done > load.sigterm_at]
    assert spanning and all(r.outcome == "ok" for r in spanning), [(r.method, r.outcome) for r in spanning]
    # the stubborn session kept the drain busy until its timeout; the others ended cleanly
    assert exited - load.sigterm_at >= DRAIN_TIMEOUT - 0.5
    done = [e for e in json_lines(proc.stderr_text()) if e["msg"] == "drain finished"]
    assert done and done[0]["outcome"] == "timeout" and done[0]["killed_processes"] >= 1, done
    await asyncio.sleep(0.2)
    assert _marked_processes(load.marker) == []
    assert not [pid for pid in load.pids if alive(pid)]
    assert len(load.pids) >= SESSIONS


def _kill_leftovers(load: Load) -> None:
    """After a failure: end what a broken drain left behind (only our marked processes)."""
    for pid in _marked_processes(load.marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _load(tmp_path: Path) -> Load:
    path = tmp_path / "payload.bin"
    data = os.urandom(20000)
    path.write_bytes(data)
    return Load(marker=os.urandom(8).hex(), data=data, path=path)


async def test_sigterm_under_load_local_websocket(tmp_path: Path) -> None:
    p = start(execrelay("exec-server", "--listen", "ws://127.0.0.1:0", "--drain-timeout", str(DRAIN_TIMEOUT),
                        "--log-format", "json", "--log-level", "info"), tmp_path, "exec")
    load = _load(tmp_path)
    try:
        async with HarnessClient(p.url) as client:
            await _load_and_sigterm(p, client, load, LOCAL_END)
    finally:
        p.stop()
        _kill_leftovers(load)


async def test_sigterm_under_load_remote(tmp_path: Path) -> None:
    rdv, p, url = start_relay_pair(tmp_path, "load-1", "--drain-timeout", str(DRAIN_TIMEOUT))
    load = _load(tmp_path)
    try:
        await wait_log(p, "relay connected")
        async with HarnessClient(url) as client:
            await _load_and_sigterm(p, client, load, REMOTE_END)
    finally:
        p.stop()
        _kill_leftovers(load)
        rdv.stop()
