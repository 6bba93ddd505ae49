"""The hostile clients of the soak (issue 13's audit), run in a child process of the driver.

Each client does one thing the hardening must survive, for a bounded time, and returns what it
observed as a dict (the soak report and the e2e test read these outcomes):

* :func:`fifo_reader` -- ``fs/readFile`` of a FIFO nobody writes (docs/exec-server.md §Methods:
  file I/O must not block the executor's loop); released by opening the writer at the end.
* :func:`non_acking_harness` -- a raw reliable stream that starts a process flooding output and
  never acks nor reads it (docs/relay-protocol.md §Limits: the per-stream output bound).
* :func:`stream_flooder` -- Resume{1} + Reset on fresh stream ids as fast as the socket takes
  them, Rapid-Reset style (docs/rendezvous.md §Security model: stream caps and creation rate).
* :func:`slowloris` -- connections that trickle a never-ending request header
  (docs/rendezvous.md §Security model: handshake timeout, cap on unauthenticated connections).
* :func:`cookie_setter` -- ``http/request`` to a URL that sets a cookie; the driver then checks
  that another session's request does not carry it (docs/exec-server.md §Methods).

They run in child processes (``python -m execrelay.bench.hostile CONFIG_JSON``, the flooder in
one of its own) so their CPU does not inflate the latencies the driver measures for the
well-behaved sessions; a child prints ``started`` once its clients run and one
``result <json>`` line at the end.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

from ..harness import HarnessClient
from ..wire import DATA, RESET, RESUME, decode, encode_control, encode_data

#: How often a slowloris connection sends one more header line.
SLOWLORIS_TRICKLE_S = 1.0
#: What the FIFO writer puts in the FIFO when it releases the reader.
FIFO_RELEASE = b"fifo-released"


@dataclass
class HostileConfig:
    """What the child needs: where the system is, how long, how hard."""

    harness_url: str
    rendezvous_host: str
    rendezvous_port: int
    fifo_path: str
    cookie_url: str
    seconds: float
    slowloris: int = 200
    #: niceness of the child (the soak nices the flooder's: on a real deployment the
    #: attacker's CPU is not the server's)
    nice: int = 0
    #: which of :data:`CLIENTS` run (all of them by default)
    clients: tuple[str, ...] = ()
    flood_argv: tuple[str, ...] = ("yes", "soak-flood-output-line-" + "x" * 200)


Outcome = dict[str, Any]


async def _raw_harness(url: str) -> tuple[aiohttp.ClientSession, Any]:
    """A bare harness websocket (no relay endpoint: these clients misbehave on purpose)."""
    http = aiohttp.ClientSession()
    try:
        ws = await http.ws_connect(url, max_msg_size=0, heartbeat=None, autoping=True)
    except BaseException:
        await http.close()
        raise
    return http, ws


# ---------------------------------------------------------------------------------- FIFO reader
async def fifo_reader(cfg: HostileConfig, stop: asyncio.Event, ready: asyncio.Event) -> Outcome:
    """Start ``fs/readFile`` of the FIFO, hold it until ``stop``, then open the writer and see
    whether (and what) the request answers.

    The path is sent native (the 0.131 dialect): 0.171 refuses anything but a regular file
    up front, 0.131 opens it -- the open that must not block the loop, only this request
    (docs/exec-server.md §Differences from upstream)."""
    out: Outcome = {"answered": False, "content_ok": False, "error": None}
    async with HarnessClient(cfg.harness_url, client_name="soak-fifo") as client:
        session = await client.open_session()
        call = asyncio.ensure_future(session.call(
            "fs/readFile", {"path": cfg.fifo_path, "sandbox": None}, timeout=None))
        await asyncio.sleep(0.2)  # on its way; there is no answer to wait for
        ready.set()
        await stop.wait()
        out["answered_before_release"] = call.done()
        try:
            fd = os.open(cfg.fifo_path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: nobody holds the FIFO open for reading
            out["error"] = f"no reader on the FIFO at release: {exc}"
            fd = -1
        if fd >= 0:
            try:
                os.write(fd, FIFO_RELEASE)
            finally:
                os.close(fd)
        try:
            result = await asyncio.wait_for(call, 10.0)
            data = base64.b64decode(result.get("dataBase64", "")) if isinstance(result, dict) else b""
            out["answered"] = True
            out["content_ok"] = data == FIFO_RELEASE
        except asyncio.TimeoutError:
            out["error"] = out["error"] or "fs/readFile of the FIFO not answered 10 s after release"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            out["answered"] = True
            out["error"] = f"{type(exc).__name__}: {exc}"
    return out


# ---------------------------------------------------------------------- non-acking harness
async def non_acking_harness(cfg: HostileConfig, stop: asyncio.Event, ready: asyncio.Event) -> Outcome:
    """One reliable stream: initialize, start a flooding process, then read and drop every
    frame without ever acking; count what the executor sent."""
    sid = "soak-nonack"
    out: Outcome = {"frames": 0, "bytes": 0, "reset": None}
    http, ws = await _raw_harness(cfg.harness_url)
    try:
        msgs = [
            {"id": 1, "method": "initialize", "params": {"clientName": "soak-nonack", "resumeSessionId": None}},
            {"method": "initialized", "params": {}},
            {"id": 2, "method": "process/start", "params": {
                "processId": "flood", "argv": list(cfg.flood_argv), "cwd": "/tmp",
                "env": {"PATH": "/usr/bin:/bin"}, "tty": False, "pipeStdin": False, "arg0": None}},
        ]
        await ws.send_bytes(encode_control(RESUME, sid, next_seq=1))
        for seq, msg in enumerate(msgs, 1):
            await ws.send_bytes(encode_data(sid, seq, 0, 0, orjson.dumps(msg)))

        async def drain() -> None:
            async for m in ws:
                if m.type != aiohttp.WSMsgType.BINARY:
                    continue
                out["frames"] += 1
                out["bytes"] += len(m.data)
                if out["bytes"] > 64 * 1024:  # the flood reached us: the window is filling
                    ready.set()
                frame = decode(m.data)
                if frame.kind == RESET and frame.stream_id == sid:
                    out["reset"] = frame.reason

        reader = asyncio.ensure_future(drain())
        await stop.wait()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.send_bytes(encode_control(RESET, sid, reason="soak over"))
    finally:
        await ws.close()
        await http.close()
    return out


# -------------------------------------------------------------------------- stream flooder
async def stream_flooder(cfg: HostileConfig, stop: asyncio.Event, ready: asyncio.Event) -> Outcome:
    """Open (Resume{1}) and Reset a fresh stream per iteration, as fast as the socket drains;
    count the Resets the rendezvous sends back, by reason."""
    out: Outcome = {"streams_attempted": 0, "resets_by_reason": {}, "socket_closed_by_server": False}
    http, ws = await _raw_harness(cfg.harness_url)
    resets: dict[str, int] = out["resets_by_reason"]

    async def drain() -> None:
        async for m in ws:
            if m.type == aiohttp.WSMsgType.BINARY:
                frame = decode(m.data)
                if frame.kind == RESET:
                    key = frame.reason.split(":", 1)[0]
                    resets[key] = resets.get(key, 0) + 1
        out["socket_closed_by_server"] = not stop.is_set()

    reader = asyncio.ensure_future(drain())
    ready.set()
    t0 = time.monotonic()
    try:
        i = 0
        while not stop.is_set() and not ws.closed:
            sid = f"flood-{i}"
            i += 1
            try:
                await ws.send_bytes(encode_control(RESUME, sid, next_seq=1))
                await ws.send_bytes(encode_control(RESET, sid, reason="rapid reset"))
            except (ConnectionError, RuntimeError):
                break
            out["streams_attempted"] = i
            if i % 64 == 0:
                await asyncio.sleep(0)  # let the reader count the Resets
        out["elapsed_s"] = time.monotonic() - t0
        await asyncio.sleep(0.2)  # Resets still in flight
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await ws.close()
        await http.close()
    return out


# ------------------------------------------------------------------------------- slowloris
async def slowloris(cfg: HostileConfig, stop: asyncio.Event, ready: asyncio.Event) -> Outcome:
    """Keep ``cfg.slowloris`` connections sending an endless request header, one line per
    second; reopen each one the server closes.  Record how long the server let them live."""
    lifetimes: list[float] = []
    out: Outcome = {"connections": cfg.slowloris, "opened": 0, "closed_by_server": 0,
                    "open_at_end": 0, "max_lifetime_s": 0.0, "connect_errors": 0}

    async def one(k: int) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(cfg.rendezvous_host, cfg.rendezvous_port)
            except OSError:
                out["connect_errors"] += 1
                await asyncio.sleep(0.5)
                continue
            out["opened"] += 1
            t0 = time.monotonic()
            writer.write(b"GET /harness?role=harness HTTP/1.1\r\nHost: soak\r\n")
            closed = False
            try:
                n = 0
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(reader.read(1024), SLOWLORIS_TRICKLE_S)
                    except asyncio.TimeoutError:
                        writer.write(b"X-Soak-%d: %d\r\n" % (k, n))
                        n += 1
                        continue
                    if not data:  # the server closed it (any answer is followed by a close)
                        closed = True
                        break
            except (ConnectionError, OSError):
                closed = True
            if closed:
                out["closed_by_server"] += 1
                lifetimes.append(time.monotonic() - t0)
            else:
                out["open_at_end"] += 1
                out["max_lifetime_s"] = max(out["max_lifetime_s"], time.monotonic() - t0)
            writer.close()

    tasks = [asyncio.ensure_future(one(k)) for k in range(cfg.slowloris)]
    ready.set()
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    if lifetimes:
        out["max_lifetime_s"] = max(out["max_lifetime_s"], max(lifetimes))
        out["max_closed_lifetime_s"] = max(lifetimes)
    return out


# ---------------------------------------------------------------------------- cookie setter
async def cookie_setter(cfg: HostileConfig, stop: asyncio.Event, ready: asyncio.Event) -> Outcome:
    """``http/request`` to ``<cookie_url>/set`` (which answers ``Set-Cookie``), from this
    tenant's own session; the driver checks another session's request afterwards."""
    out: Outcome = {"status": None, "set_cookie_seen": False, "error": None}
    async with HarnessClient(cfg.harness_url, client_name="soak-cookie") as client:
        session = await client.open_session()
        try:
            res = await session.http_request("GET", cfg.cookie_url + "/set", "soak-cookie-set",
                                             timeout_ms=10_000)
            out["status"] = res.get("status")
            out["set_cookie_seen"] = any(h.get("name") == "set-cookie" for h in res.get("headers", []))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            out["error"] = f"{type(exc).__name__}: {exc}"
        ready.set()
        await stop.wait()
    return out


#: Started in this order, each once the one before is ready: the FIFO reader comes after the
#: clients whose effect must be seen before it (where it freezes the executor, nothing that
#: starts after it gets an answer); slowloris last, once the others are authenticated.
CLIENTS: dict[str, Callable[[HostileConfig, asyncio.Event, asyncio.Event], Awaitable[Outcome]]] = {
    "cookie_setter": cookie_setter,
    "non_acking_harness": non_acking_harness,
    "stream_flooder": stream_flooder,
    "fifo_reader": fifo_reader,
    "slowloris": slowloris,
}
#: How long run_all waits for a client to be ready before starting the next one anyway.
READY_TIMEOUT_S = 15.0


async def run_all(cfg: HostileConfig, started: Callable[[], None] | None = None) -> dict[str, Outcome]:
    """Run every hostile client for ``cfg.seconds``; a client that fails reports its error."""
    stop = asyncio.Event()
    tasks: dict[str, asyncio.Future[Outcome]] = {}
    for name, fn in CLIENTS.items():
        if cfg.clients and name not in cfg.clients:
            continue
        ready = asyncio.Event()
        task: asyncio.Future[Outcome] = asyncio.ensure_future(fn(cfg, stop, ready))
        tasks[name] = task
        waiter: asyncio.Future[Any] = asyncio.ensure_future(ready.wait())
        pending: list[asyncio.Future[Any]] = [task, waiter]
        await asyncio.wait(pending, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    if started is not None:
        started()
    await asyncio.sleep(cfg.seconds)
    stop.set()
    out: dict[str, Outcome] = {}
    for name, task in tasks.items():
        try:
            out[name] = await asyncio.wait_for(task, 30.0)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            out[name] = {"failed": f"{type(exc).__name__}: {exc}"}
    return out


def main(argv: list[str]) -> int:
    """Child entry point: ``python -m execrelay.bench.hostile '<HostileConfig as JSON>'``."""
    cfg = HostileConfig(**json.loads(argv[0]))
    cfg.flood_argv = tuple(cfg.flood_argv)
    cfg.clients = tuple(cfg.clients)
    if cfg.nice:
        os.nice(cfg.nice)

    def started() -> None:
        print("started", flush=True)

    result = asyncio.run(run_all(cfg, started))
    print("result " + json.dumps(result), flush=True)
    return 0


def config_json(cfg: HostileConfig) -> str:
    """The child's argument for ``cfg``."""
    return json.dumps(asdict(cfg))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
