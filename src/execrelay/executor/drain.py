"""Graceful drain of an exec-server (docs/operations.md §Graceful drain).

On the first SIGTERM the executor stops taking new sessions (``ExecServer.draining``: a new
``initialize`` is refused, a relay stream opened now is Reset with :data:`DRAINING_REASON`),
lets the requests already running finish and the processes already started end, for at most
``--drain-timeout`` seconds, then kills the process groups that are left.  The transport then
ends what remains (relay streams with a Reset carrying :data:`DRAINING_REASON`, so a harness
knows to open its next session on another executor).
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .server import ExecServer

log = logging.getLogger("execrelay.executor.drain")

#: the Reset reason of relay streams refused or ended by a draining executor
DRAINING_REASON = "executor_draining"
#: how often the drain looks at the running requests and processes
POLL_SECONDS = 0.05


async def drain(server: "ExecServer", timeout: float, abort: "asyncio.Future[None] | None" = None) -> str:
    """Wait for in-flight requests and running processes, at most ``timeout`` seconds or until
    ``abort`` is done; then kill what still runs.  Returns ``drained``, ``timeout`` or
    ``aborted`` (what happened, for the log and the tests)."""
    server.draining = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, timeout)
    log.info("drain started", extra={"fields": {
        "in_flight": server.in_flight(), "processes": server.running_processes(), "timeout_s": timeout}})
    outcome = "drained"
    while server.in_flight() or server.running_processes():
        left = deadline - loop.time()
        if left <= 0:
            outcome = "timeout"
            break
        if abort is not None:
            await asyncio.wait([abort], timeout=min(POLL_SECONDS, left))
            if abort.done():
                outcome = "aborted"
                break
        else:
            await asyncio.sleep(min(POLL_SECONDS, left))
    killed = server.running_processes()
    if killed:
        server.kill_all()
    log.info("drain finished", extra={"fields": {"outcome": outcome, "killed_processes": killed}})
    return outcome
