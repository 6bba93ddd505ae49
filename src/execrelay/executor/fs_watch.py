"""``fs/watchMissing`` and its ``fs/missingChanged`` notification (docs/dialects.md §fs/watchMissing).

The 0.171 harness asks "tell me when any of these missing paths appears" (``.git``,
``AGENTS.md``, skills folders) so it can refresh its view.  Rules probed from the real 0.171.0
binary:

* one watch per connection; a request replaces the current watch only if its ``watchId`` is
  higher than every id seen before on the connection, otherwise it answers
  ``{"watching": false}`` and changes nothing (a repeated id, even after its watch fired);
* a replacing request cancels the previous watch first, then watches only if the list is
  non-empty and every path is definitely missing (``ENOENT``); a path that exists or that
  cannot be checked (``ENOTDIR``, ``EACCES``) means ``{"watching": false}``;
* when any watched path appears, ``fs/missingChanged {"watchId"}`` is sent once and the watch
  ends.

0.171 reacts to file-system events (even a path created and removed at once fires); this
implementation polls with ``stat`` every :data:`POLL_INTERVAL` seconds, which is cheap for the
few paths a harness watches and needs no platform API, but can miss a path that exists for
less than one interval.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, Sequence

METHOD = "fs/missingChanged"
POLL_INTERVAL = 0.1
NOT_WATCHING: dict[str, bool] = {"watching": False}
WATCHING: dict[str, bool] = {"watching": True}

Notify = Callable[[str, dict], Any]


def _state(path: str) -> bool | None:
    """True: exists; False: definitely missing; None: cannot tell (not watchable)."""
    try:
        os.stat(path)
        return True
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return None


class MissingWatch:
    """The watch of one connection; ``notify(method, params)`` sends a notification on it."""

    def __init__(self, notify: Notify, interval: float = POLL_INTERVAL) -> None:
        self._notify = notify
        self._interval = interval
        self._highest: int | None = None
        self._task: asyncio.Task | None = None

    @property
    def active_id(self) -> int | None:
        """The id of the live watch, if any (for tests and introspection)."""
        return self._highest if self._task is not None and not self._task.done() else None

    def watch(self, watch_id: int, paths: Sequence[str]) -> dict[str, bool]:
        """``fs/watchMissing`` with native ``paths``; must run on the event loop."""
        if self._highest is not None and watch_id <= self._highest:
            return NOT_WATCHING
        self._highest = watch_id
        self.cancel()
        if not paths or any(_state(p) is not False for p in paths):
            return NOT_WATCHING
        self._task = asyncio.get_running_loop().create_task(self._poll(watch_id, tuple(paths)))
        return WATCHING

    async def _poll(self, watch_id: int, paths: tuple[str, ...]) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if any(_state(p) for p in paths):
                self._task = None
                self._notify(METHOD, {"watchId": watch_id})
                return

    def cancel(self) -> None:
        """Stop the live watch (replacement, or the connection closed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    close = cancel
